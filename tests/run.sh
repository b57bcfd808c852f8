#!/usr/bin/env bash
# Runs every test of poststelle, set-up included. This is the test command README.md names.
# Later stages add the servers the integration tests talk to (Dovecot, OpenSMTPD, PostgreSQL),
# installed from Debian packages and started on loopback high ports by this script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust (https://rustup.rs) or Debian's cargo package" >&2
    exit 1
fi

cargo test --all-targets --locked "$@"
