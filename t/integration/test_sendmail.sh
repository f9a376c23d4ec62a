#!/bin/bash
# floodgate end to end with a real sendmail 8.17 on loopback: the
# scenarios of mta_scenarios.sh (dictionary attack, connection flood,
# concurrency, recipients per message, bad-recipient throttle, exemption,
# monitor mode, reload, restart, floodgate down), asserted as the SMTP
# client sees them and in the database.  Needs root, m4, cc and Debian's
# sendmail packages (fetched into the build tree by t/mta/fetch-sendmail.sh).
. "$(dirname "$0")/lib.sh"
. "$FG_SOURCE_DIR/t/mta/mta.sh"
. "$FG_SOURCE_DIR/t/integration/mta_scenarios.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "# SKIP: a private sendmail needs root"
	done_testing
fi

MTA=sendmail
# contrib/sendmail/floodgate.mc.snippet as it is: F=T
mta_main_start() { sendmail_start "$1" "$2" "$3"; }
# F= (empty): carry on without the filter
mta_failopen_start() { sendmail_start "$1" "$2" "$3" F=; }

mta_scenarios_run
done_testing
