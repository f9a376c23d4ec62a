#!/bin/bash
# test_manpages.sh - the manual pages are well-formed and keep up with the code.
#
#  1. Every man/*.[0-9] passes "mandoc -T lint -W warning" without a word.
#  2. Every setting named in the declarative tables of lib/config.c (and
#     of the lib/config_*.c files it is split into: the rows that read
#     {"name", F_...) appears in bold in man/floodgate.conf.5, so a new
#     setting cannot ship undocumented.
#
# Needs mandoc (contrib/dev/deps.sh installs it).  Run by CTest with
# FG_SOURCE_DIR set; by hand: FG_SOURCE_DIR=. bash t/integration/test_manpages.sh
set -euo pipefail

src=${FG_SOURCE_DIR:?FG_SOURCE_DIR must point at the source tree}
man_dir=$src/man
conf_page=$man_dir/floodgate.conf.5
fail=0

if ! command -v mandoc >/dev/null 2>&1; then
	echo "test_manpages.sh: mandoc is not installed (contrib/dev/deps.sh)" >&2
	exit 1
fi

# ---- 1. lint ------------------------------------------------------------
shopt -s nullglob
pages=("$man_dir"/*.[0-9])
shopt -u nullglob
if [ ${#pages[@]} -eq 0 ]; then
	echo "test_manpages.sh: no manual pages in $man_dir" >&2
	exit 1
fi
for page in "${pages[@]}"; do
	# mandoc exits non-zero on some findings; its output is what counts.
	out=$(mandoc -T lint -W warning "$page" 2>&1 || true)
	if [ -n "$out" ]; then
		echo "FAIL lint: ${page#"$src"/}" >&2
		printf '%s\n' "$out" >&2
		fail=1
	else
		echo "ok   lint: ${page#"$src"/}"
	fi
done

# ---- 2. every setting of lib/config.c is in floodgate.conf(5) -----------
[ -f "$conf_page" ] || { echo "FAIL: $conf_page is missing" >&2; exit 1; }
shopt -s nullglob
config_c=("$src"/lib/config.c "$src"/lib/config_*.c)
shopt -u nullglob
mapfile -t settings < <(
	grep -hE '^[[:space:]]*\{"[a-z0-9_]+",[[:space:]]*F_[A-Z]+' "${config_c[@]}" |
	sed -E 's/^[[:space:]]*\{"([a-z0-9_]+)".*/\1/' | sort -u)
# A guard against a change of the table layout silently matching nothing.
if [ ${#settings[@]} -lt 40 ]; then
	echo "FAIL: found only ${#settings[@]} settings in lib/config*.c;" \
	     "has the table layout changed?" >&2
	exit 1
fi
missing=()
for name in "${settings[@]}"; do
	# In bold: a ".B name" / ".BR name ..." line or an inline \fBname\fR.
	if ! grep -qE "^\.B[IR]?[[:space:]]+\"?${name}([^a-z0-9_]|\$)|\\\\fB${name}\\\\f" \
	     "$conf_page"; then
		missing+=("$name")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "FAIL: settings of lib/config*.c not described in" \
	     "man/floodgate.conf.5: ${missing[*]}" >&2
	fail=1
else
	echo "ok   all ${#settings[@]} settings of lib/config*.c are in floodgate.conf.5"
fi

exit $fail
