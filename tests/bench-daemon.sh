#!/usr/bin/env bash
# The daemon benchmark: starts Dovecot and OpenSMTPD as the tests do (tests/servers.sh), then
# `cargo bench --bench daemon`, which compares Dovecot's raw fetch rate with poststelle's
# end-to-end rate on the same 10,000 mails in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/servers.sh
source tests/servers.sh
# The test servers' ports are fixed: one run (of this or tests/run.sh) per machine at a time.
servers_lock tests/bench-daemon.sh "$@"
trap servers_stop EXIT
servers_start
cargo bench --locked --bench daemon "$@"
