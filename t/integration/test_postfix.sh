#!/bin/bash
# floodgate end to end with a real Postfix 3.7 on loopback: the scenarios
# of mta_scenarios.sh (dictionary attack, connection flood, concurrency,
# recipients per message, bad-recipient throttle, exemption, monitor mode,
# reload, restart, floodgate down), asserted as the SMTP client sees them
# and in the database.  Needs root and postfix (contrib/dev/deps.sh).
. "$(dirname "$0")/lib.sh"
. "$FG_SOURCE_DIR/t/mta/mta.sh"
. "$FG_SOURCE_DIR/t/integration/mta_scenarios.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "# SKIP: a private Postfix needs root"
	done_testing
fi

MTA=postfix
# contrib/postfix/main.cf.snippet as it is: milter_default_action = tempfail
mta_main_start() { postfix_start "$1" "$2" "$3"; }
# the fail-open variant the README recommends
mta_failopen_start() { postfix_start "$1" "$2" "$3" "milter_default_action = accept"; }

mta_scenarios_run
done_testing
