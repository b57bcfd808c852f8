#!/usr/bin/env bash
# The daemon benchmark (issue 22): starts Dovecot and OpenSMTPD as the tests do
# (tests/servers.sh), a second Postfix smtp-sink that keeps nothing as the local relay,
# installs imapfilter (Debian's package) where missing, then `cargo bench --bench daemon`:
# a realistic desk mailbox filed by `poststelle run` beside Dovecot's raw fetch and imapfilter
# in the same run. PROFILE=1 also records the first file-transport run with perf and prints
# where its CPU went, by phase and by function.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/servers.sh
source tests/servers.sh
# The test servers' ports are fixed: one run (of this or tests/run.sh) per machine at a time.
servers_lock tests/bench-daemon.sh "$@"
RELAY_PID=""
PERF_DIR=""
stop_all() {
    [ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null
    [ -n "$PERF_DIR" ] && rm -rf "$PERF_DIR"
    servers_stop
}
trap stop_all EXIT
servers_start
if ! command -v imapfilter >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing imapfilter from Debian's packages, for the comparison" >&2
        servers_apt_install imapfilter
    else
        echo "imapfilter is missing and this is not root: the bench runs without it" >&2
    fi
fi
# The relay: smtp-sink as unpacked by servers.sh, taking mail and keeping none (12628).
pf=$PWD/target/test-tools/postfix
as=()
[ "$(id -u)" -eq 0 ] && as=(-u nobody)
LD_LIBRARY_PATH="$pf/usr/lib/postfix" "$pf/usr/sbin/smtp-sink" "${as[@]}" 127.0.0.1:12628 256 &
RELAY_PID=$!
wait_port 127.0.0.1 12628 "Postfix's smtp-sink as the bench's relay"
export POSTSTELLE_BENCH_RELAY=127.0.0.1:12628
if [ "${PROFILE:-}" = 1 ]; then
    command -v perf >/dev/null || servers_apt_install linux-perf
    PERF_DIR=$(mktemp -d /tmp/poststelle-perf.XXXXXX)
    export POSTSTELLE_BENCH_PERF=$PERF_DIR
fi
cargo bench --locked --bench daemon "$@"
if [ -n "$PERF_DIR" ] && [ -f "$PERF_DIR/perf.data" ]; then
    perf script -i "$PERF_DIR/perf.data" 2>/dev/null | python3 tests/perf-phases.py
fi
