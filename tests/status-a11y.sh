#!/usr/bin/env bash
# The status page in headless Chromium (issue 18): for four states — no incidents, a running
# class-1 incident, an upcoming maintenance, a cancelled one — the overview, a platform's page
# (German and English) and the unsubscribe form are loaded at a desktop and a phone width; a
# full-page screenshot of each is kept in $OUT, and axe-core checks each against WCAG 2.0/2.1
# A and AA (any violation, or sideways scrolling at phone width, fails the run).
#
# Debian's chromium is installed if need be (as root); puppeteer-core and axe-core come from
# npm into target/test-tools/a11y (puppeteer-core downloads no browser). poststelle runs as a
# process of this script on a loopback port with a data directory under $OUT, SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/status-a11y}
TOOLS=$(mkdir -p "$TARGET/test-tools/a11y" && cd "$TARGET/test-tools/a11y" && pwd)
CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "Debian's chromium is missing and this is not root: apt-get install chromium" >&2
        exit 1
    fi
    # shellcheck source=tests/servers.sh
    source tests/servers.sh
    echo "installing Debian's chromium, for the accessibility check" >&2
    servers_apt_install chromium fonts-dejavu-core
fi
if ! command -v npm >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "npm is missing and this is not root: apt-get install nodejs npm" >&2
        exit 1
    fi
    # shellcheck source=tests/servers.sh
    source tests/servers.sh
    echo "installing Debian's nodejs and npm, for the accessibility check" >&2
    servers_apt_install nodejs npm
fi
if [ ! -d "$TOOLS/node_modules/puppeteer-core" ] || [ ! -d "$TOOLS/node_modules/axe-core" ]; then
    mkdir -p "$TOOLS"
    echo "installing puppeteer-core and axe-core from npm into $TOOLS" >&2
    (cd "$TOOLS" && [ -f package.json ] || echo '{"private":true}' > package.json)
    PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$TOOLS" --no-audit --no-fund --silent \
        puppeteer-core@25.16.0 axe-core@4.14.1 >&2
fi

cargo build --locked --quiet
BIN=$TARGET/debug/poststelle

rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
REPO=$(pwd)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
{
    echo "data_dir = \"$OUT/data\""
    sed -e "s|templates_dir = \"templates\"|templates_dir = \"$REPO/templates\"|" \
        -e "s|contacts = \"contacts/hessen.toml\"|contacts = \"$REPO/contacts/hessen.toml\"|" \
        -e "s|rules_dir = \"rules\"|rules_dir = \"$REPO/rules\"|" \
        -e "s|transport = \"file\"|transport = \"file\"\nunsubscribe_url = \"https://status.example.test/unsubscribe\"|" \
        poststelle.toml
    cat <<TOML

[[platform]]
name = "portal"
description = "Bürgerportal"
calendar = "hessen"
lists = ["alle"]

[[platform]]
name = "zidkor"
description = "Zentrales Dokumentenregister"
calendar = "rlp"
lists = ["alle"]
availability_target = 98.0

[status]
listen = "$ADDR"
imprint_url = "https://www.example.test/impressum"
privacy_url = "https://www.example.test/datenschutz"
refresh_seconds = 1
TOML
} > "$OUT/poststelle.toml"

ps() { "$BIN" --config "$OUT/poststelle.toml" "$@"; }
"$BIN" --config "$OUT/poststelle.toml" run 2>"$OUT/daemon.log" &
DAEMON=$!
trap 'kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null || true' EXIT

# Waits until /status.json satisfies the Python expression on `s`.
wait_for() {
    for _ in $(seq 1 150); do
        if curl -fsS "http://$ADDR/status.json" 2>/dev/null |
            python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($1) else 1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "the status page did not reach: $1" >&2
    tail -20 "$OUT/daemon.log" >&2
    exit 1
}

check() {
    local state=$1
    shift
    A11Y_TOOLS=$TOOLS node tests/status/a11y.mjs "$CHROMIUM" "$OUT" "$state" "$@"
}

pages() {
    echo "http://$ADDR/" "http://$ADDR/?lang=en" "http://$ADDR/platform/portal" "http://$ADDR/platform/zidkor?lang=en"
}

wait_for 'len(s["platforms"]) == 2'
ps lists create alle --description "Alle Nutzer" --unsubscribe >/dev/null
printf 'E-Mail;Name\nanna@kommune.example;Anna\n' > "$OUT/alle.csv"
ps lists import alle "$OUT/alle.csv" >/dev/null

fail=0
# shellcheck disable=SC2046
check no-incidents $(pages) || fail=1

ps incident open --platform portal --title "Anmeldung gestört" \
    --impact "Keine Anmeldung am Bürgerportal möglich" --class 1 >/dev/null
ps incident update 1 --text "Ursache gefunden, der Dienst wird neu gestartet" >/dev/null
wait_for 's["platforms"][0]["state"] == "disruption" and len(s["platforms"][0]["incidents"][0]["updates"]) == 2'
# shellcheck disable=SC2046
check incident-class-1 $(pages) || fail=1

ps incident resolve 1 --text "Behoben nach Neustart" >/dev/null
START=$(date -d "+20 days" +%F)
ps maintenance schedule --platform zidkor --start "$START 19:00" --end "$START 23:00" \
    --reason "Einspielen von Sicherheitsupdates" --impact "Das Register ist nicht erreichbar." >/dev/null
wait_for 'len(s["platforms"][1]["maintenance"]) == 1 and s["platforms"][0]["state"] == "operational"'
ps outbox send >/dev/null
LINK=$(python3 - "$OUT/data/sent" <<'PY'
import email, glob, re, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    m = email.message_from_binary_file(open(f, "rb"))
    h = str(m.get("List-Unsubscribe", ""))
    found = re.search(r"<https://status\.example\.test(/unsubscribe/[^>]+)>", h)
    if found:
        print(found.group(1)); break
PY
)
[ -n "$LINK" ] || { echo "no one-click link in the sent notice" >&2; exit 1; }
# shellcheck disable=SC2046
check maintenance-upcoming $(pages) "http://$ADDR$LINK" "http://$ADDR$LINK?lang=en" || fail=1

ps maintenance cancel 1 >/dev/null
wait_for 's["platforms"][1]["maintenance"][0]["state"] == "cancelled"'
# shellcheck disable=SC2046
check maintenance-cancelled $(pages) || fail=1

echo "screenshots and reports: $OUT" >&2
exit "$fail"
