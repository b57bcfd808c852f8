#!/usr/bin/env bash
# The fan-out benchmark (issue 16): how fast `poststelle outbox send` delivers a distribution
# list's notices to a local SMTP sink, against Postfix's `smtp-source` sending the same number
# of messages of the same size to the same sink with the same number of parallel sessions, in
# the same run; and how long `maintenance schedule` takes to write a 10,000-member
# announcement (every outbox row). Not a test: it prints figures.
#
#   tests/bench-fanout.sh            # 10,000 members, 4 sessions (outbox.smtp.pool_size)
#   MEMBERS=2000 SESSIONS=8 tests/bench-fanout.sh
#
# Postfix conflicts with OpenSMTPD as a Debian package, so its package is only unpacked
# (apt-get download + dpkg -x) into a scratch folder; smtp-sink and smtp-source run from there
# (POSTFIX_DIR names an unpacked one to reuse). The sink listens on 127.0.0.1:$PORT (12625).
# Everything lives under a temporary directory, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMBERS=${MEMBERS:-10000}
SESSIONS=${SESSIONS:-4}
PORT=${PORT:-12625}
work=$(mktemp -d /tmp/poststelle-fanout.XXXXXX)
sink_pid=""
cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

pf=${POSTFIX_DIR:-}
if [ -z "$pf" ]; then
    pf=$work/postfix
    (cd "$work" && apt-get download postfix >/dev/null 2>&1) || {
        echo "apt-get download postfix failed: set POSTFIX_DIR to an unpacked postfix package" >&2
        exit 1
    }
    dpkg -x "$work"/postfix_*.deb "$pf"
fi

# The bench profile (release with debug info) shares target/release with `cargo bench`: one
# optimised build of the dependencies, not two.
cargo build --profile bench --locked --bin poststelle >&2
bin=${CARGO_TARGET_DIR:-target}/release/poststelle

# The configuration: the shipped one on SQLite under $work, a platform with the list "alle".
cfg() { # transport data_dir extra
    echo "data_dir = \"$2\""
    sed -e "s|^transport = \"file\"|transport = \"$1\"|" \
        -e "s|templates_dir = \"templates\"|templates_dir = \"$PWD/templates\"|" \
        -e "s|contacts = \"contacts/hessen.toml\"|contacts = \"$PWD/contacts/hessen.toml\"|" \
        -e "s|rules_dir = \"rules\"|rules_dir = \"$PWD/rules\"|" \
        poststelle.toml
    printf '\n%s\n[[platform]]\nname = "zidkor"\ncalendar = "rlp"\nlists = ["alle"]\n' "${3:-}"
}
members() { # count
    echo "E-Mail;Name"
    awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++) printf "m%05d@example.test;Mitglied %d\n", i, i }'
}
schedule() { # config
    local day
    day=$(date -d '+2 days' +%F)
    "$bin" --config "$1" maintenance schedule --platform zidkor --start "$day 08:00" \
        --end "$day 10:00" --reason Sicherheitsupdates --impact "keine Anmeldung" --emergency >/dev/null
}

# 1. One notice through the file transport: its size, for smtp-source's -l.
mkdir -p "$work/probe"
cfg file "$work/probe" > "$work/probe/poststelle.toml"
members 1 > "$work/one.csv"
"$bin" --config "$work/probe/poststelle.toml" lists import alle "$work/one.csv" >/dev/null
schedule "$work/probe/poststelle.toml"
"$bin" --config "$work/probe/poststelle.toml" outbox send >/dev/null
size=$(stat -c %s "$work"/probe/sent/*.eml | head -n 1)

# 2. The sink.
# Started directly (not through a function), so that $! is the sink's own PID for cleanup.
LD_LIBRARY_PATH="$pf/usr/lib/postfix" "$pf/usr/sbin/smtp-sink" -u nobody "127.0.0.1:$PORT" 256 &
sink_pid=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

# 3. poststelle: schedule (all rows written), then send.
mkdir -p "$work/run"
cfg smtp "$work/run" "[outbox.smtp]
host = \"127.0.0.1\"
port = $PORT
tls = \"none\"
pool_size = $SESSIONS" > "$work/run/poststelle.toml"
members "$MEMBERS" > "$work/members.csv"
"$bin" --config "$work/run/poststelle.toml" lists import alle "$work/members.csv" >/dev/null
t0=$(date +%s.%N)
schedule "$work/run/poststelle.toml"
t1=$(date +%s.%N)
# PROFILE=1: the send under `perf record` (flat profile printed at the end; slower).
prof=()
[ "${PROFILE:-}" = 1 ] && prof=(perf record -q -F 999 --call-graph dwarf,16384 -o "$work/perf.data" --)
/usr/bin/time -f "%e %U %S %M" -o "$work/send.time" \
    "${prof[@]}" "$bin" --config "$work/run/poststelle.toml" outbox send > "$work/send.out"
read -r p_wall p_user p_sys p_rss < "$work/send.time"

# 4. smtp-source: the same count, size and sessions, connections kept (-d) as poststelle's pool.
/usr/bin/time -f "%e %U %S %M" -o "$work/source.time" \
    env LD_LIBRARY_PATH="$pf/usr/lib/postfix" "$pf/usr/sbin/smtp-source" -d -s "$SESSIONS" \
    -m "$MEMBERS" -l "$size" -f support@example.test -t m00001@example.test "127.0.0.1:$PORT"
read -r s_wall s_user s_sys s_rss < "$work/source.time"

awk -v n="$MEMBERS" -v s="$SESSIONS" -v size="$size" -v sched="$(echo "$t1 - $t0" | bc)" \
    -v pw="$p_wall" -v pu="$p_user" -v ps="$p_sys" -v pr="$p_rss" \
    -v sw="$s_wall" -v su="$s_user" -v ss="$s_sys" -v sr="$s_rss" 'BEGIN {
    printf "fan-out of %d notices of %d bytes, %d parallel sessions, to smtp-sink\n", n, size, s
    printf "  scheduling (maintenance schedule, all rows written): %.3f s (goal < 1 s)\n", sched
    printf "  poststelle outbox send: %7.2f s  %8.0f msgs/s  CPU %.2f s user + %.2f s sys  peak RSS %d KiB\n", pw, n / pw, pu, ps, pr
    printf "  smtp-source:            %7.2f s  %8.0f msgs/s  CPU %.2f s user + %.2f s sys  peak RSS %d KiB\n", sw, n / sw, su, ss, sr
    printf "  ratio: %.0f %% of smtp-source (goal >= 70 %%)\n", 100 * sw / pw
}'
tail -n 1 "$work/send.out" >&2
if [ "${PROFILE:-}" = 1 ]; then
    perf report -i "$work/perf.data" --children --sort sym --stdio -g none --percent-limit 2 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -n 60
fi
