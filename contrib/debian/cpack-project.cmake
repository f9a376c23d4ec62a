# cpack-project.cmake - CPACK_PROJECT_CONFIG_FILE of floodgate: read by
# cpack for each generator it runs (see the CPack block of CMakeLists.txt).
#
# The Debian package must be built from a tree configured with
# -DCMAKE_INSTALL_PREFIX=/usr: the binaries carry their default
# configuration path from that prefix, and conffiles, the maintainer
# scripts and the unit all say /etc/floodgate and /usr/sbin.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_FG_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR
    "floodgate: the Debian package needs a build tree configured with "
    "-DCMAKE_INSTALL_PREFIX=/usr (this one has ${CPACK_FG_INSTALL_PREFIX}, "
    "so floodgate would look for its configuration elsewhere than "
    "/etc/floodgate/floodgate.conf)")
endif()
