#!/usr/bin/env bash
# Runs every test of poststelle, set-up included. This is the test command README.md names.
# It leaves the host's own services and data alone:
#
# - One run per machine at a time: the test servers listen on fixed ports, so a second run
#   waits for the first (lock /tmp/poststelle-tests.lock) and says so.
# - PostgreSQL: the server named in $POSTSTELLE_TEST_PG when set (an admin URL whose user may
#   create databases, e.g. postgres://root@127.0.0.1:5432/postgres for the server the
#   project's machines run). Without it, a throw-away server of this script on
#   127.0.0.1:15432 (trust authentication, data in a temporary directory, stopped and removed
#   at exit; Debian's postgresql package installed if need be, as root). A server the machine
#   already runs, on 5432 or anywhere, is used only when named in $POSTSTELLE_TEST_PG. On that
#   server each test creates a database of its own (poststelle_t<pid>_<n>_<ms>; the ingest
#   bench's smoke run poststelle_bench_<pid>_<n>) and drops it when done; a test that panics
#   leaves its database behind. Nothing else on the server is read, changed or dropped.
# - Dovecot and OpenSMTPD for the delivery tests: tests/servers.sh installs Debian's packages
#   if need be (no system service is started) and runs both as processes of this script on
#   loopback high ports, OpenSMTPD with a spool of its own; the host's mail queue is never
#   read or changed (see tests/servers.sh). Postfix's smtp-sink (for the pipelining test) is
#   unpacked from Debian's package into target/test-tools/postfix, never installed, and runs
#   as a process of this script on a loopback port.
# - Python's icalendar package (python3-icalendar) for the calendar tests, and feedparser
#   (python3-feedparser) for the status page's feed, installed if need be.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=tests/servers.sh
source tests/servers.sh
servers_lock tests/run.sh "$@"

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install a Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi

# The port of the throw-away PostgreSQL: not 5432, which belongs to the machine's own server.
PG_OWN_PORT=15432
PG_DIR=""
PG_BIN=""
PG_AS=()

# Runs a PostgreSQL program as the owner of the throw-away server's data.
pg_as() { (cd "$PG_DIR" && "${PG_AS[@]}" "$@"); }

pg_start_own() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "PostgreSQL is not installed and this is not root: install Debian's postgresql package," >&2
            echo "or name a server the tests may use in POSTSTELLE_TEST_PG (README.md, on the test command)" >&2
            exit 1
        fi
        echo "installing PostgreSQL from Debian's packages, for a throw-away test server" >&2
        servers_apt_install postgresql
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PG_OWN_PORT") 2>/dev/null; then
        echo "127.0.0.1:$PG_OWN_PORT, the port of the tests' throw-away PostgreSQL, is taken. A run that" >&2
        echo "was killed may have left its server behind (ls -d /tmp/poststelle-pg.*; stop it with" >&2
        echo "pg_ctl -D <that directory>/data stop), or name a server in POSTSTELLE_TEST_PG" >&2
        exit 1
    fi
    local bins=(/usr/lib/postgresql/*/bin)
    PG_BIN=$(printf '%s\n' "${bins[@]}" | sort -V | tail -n 1)
    PG_DIR=$(mktemp -d /tmp/poststelle-pg.XXXXXX)
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$PG_DIR"
        PG_AS=(runuser -u postgres --)
    fi
    pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
    if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $PG_OWN_PORT -k $PG_DIR" start >/dev/null; then
        echo "the throw-away PostgreSQL did not start; its log:" >&2
        cat "$PG_DIR/log" >&2
        exit 1
    fi
    export POSTSTELLE_TEST_PG="postgres://postgres@127.0.0.1:$PG_OWN_PORT/postgres"
}

pg_stop() {
    if [ -n "$PG_DIR" ]; then
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}

cleanup() {
    servers_stop
    pg_stop
}
trap cleanup EXIT

if [ -n "${POSTSTELLE_TEST_PG:-}" ]; then
    pg_what="named in POSTSTELLE_TEST_PG"
else
    pg_start_own
    pg_what="a throw-away server of this script, data in $PG_DIR, removed at exit; set POSTSTELLE_TEST_PG to use another"
fi
echo "PostgreSQL for the tests: $POSTSTELLE_TEST_PG ($pg_what)." >&2
echo "  Each test creates a database of its own there (poststelle_t…, poststelle_bench_…) and drops it; nothing else is touched." >&2

# Dovecot and OpenSMTPD for the delivery tests.
servers_start

# Python's icalendar package: the independent parser of the calendar entries
# (tests/integration/ical.rs).
if ! /usr/bin/python3 -c 'import icalendar' 2>/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "Python's icalendar package is missing and this is not root: install python3 and python3-icalendar" >&2
        exit 1
    fi
    echo "installing Python's icalendar from Debian's packages, for the calendar tests" >&2
    servers_apt_install python3 python3-icalendar
fi
# Python's feedparser: the independent reader of the status page's Atom feed
# (tests/integration/status_page.rs).
if ! /usr/bin/python3 -c 'import feedparser' 2>/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "Python's feedparser package is missing and this is not root: install python3-feedparser" >&2
        exit 1
    fi
    echo "installing Python's feedparser from Debian's packages, for the status page tests" >&2
    servers_apt_install python3-feedparser
fi

cargo test --all-targets --locked "$@"
# The 10,000-member fan-out through OpenSMTPD (tests/integration/fanout.rs) floods the one test
# OpenSMTPD, so it runs alone, after the others, in a full run.
if [ "$#" -eq 0 ]; then
    cargo test --locked --test integration -- --ignored fanout_smtp
    # The status page in headless Chromium with axe-core (screenshots in target/status-a11y).
    bash tests/status-a11y.sh
fi
