#!/usr/bin/env bash
# Runs every test of poststelle, set-up included. This is the test command README.md names.
#
# The delivery tests need Dovecot and OpenSMTPD: tests/servers.sh installs Debian's packages if
# need be and starts both as processes of this script on loopback high ports.
#
# The store tests need PostgreSQL. They use $POSTSTELLE_TEST_PG when set; else a server on
# 127.0.0.1:5432 that lets the current user in (as on the project's machines); else this script
# installs Debian's postgresql package if need be and starts a throw-away server of its own on
# 127.0.0.1:15432 (trust authentication, data in a temporary directory), stopped at exit.
# POSTSTELLE_TEST_OWN_PG=1 skips straight to the server of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install a Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi

pg_ok() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }
cleanup() {
    if declare -F servers_stop >/dev/null; then servers_stop; fi
    if declare -F pg_stop >/dev/null; then pg_stop; fi
}
trap cleanup EXIT

if [ -z "${POSTSTELLE_TEST_PG:-}" ]; then
    if [ -z "${POSTSTELLE_TEST_OWN_PG:-}" ] && command -v psql >/dev/null 2>&1 && pg_ok "postgres://$(id -un)@127.0.0.1:5432/postgres"; then
        export POSTSTELLE_TEST_PG="postgres://$(id -un)@127.0.0.1:5432/postgres"
    else
        if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
            echo "installing PostgreSQL from Debian's packages" >&2
            if [ "$(id -u)" -ne 0 ]; then
                echo "PostgreSQL is not installed and this is not root: install postgresql first" >&2
                exit 1
            fi
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        fi
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
        pgdir=$(mktemp -d /tmp/poststelle-pg.XXXXXX)
        run_as=()
        if [ "$(id -u)" -eq 0 ]; then
            chown postgres: "$pgdir"
            run_as=(runuser -u postgres --)
        fi
        pg_stop() { "${run_as[@]}" "$bin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
        "${run_as[@]}" "$bin/initdb" -D "$pgdir/data" -A trust -U postgres >/dev/null
        "${run_as[@]}" "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
            -o "-c listen_addresses=127.0.0.1 -p 15432 -k $pgdir" start >/dev/null
        export POSTSTELLE_TEST_PG="postgres://postgres@127.0.0.1:15432/postgres"
    fi
fi
echo "PostgreSQL for the tests: $POSTSTELLE_TEST_PG" >&2

# Dovecot and OpenSMTPD for the delivery tests.
# shellcheck source=tests/servers.sh
source tests/servers.sh
servers_start

cargo test --all-targets --locked "$@"
