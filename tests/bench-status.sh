#!/usr/bin/env bash
# The status page benchmark (issue 18), loopback only, bounded in time. Not a test: it prints
# figures.
#
# 1. wrk against poststelle's `/` and against the same bytes served by nginx as a static
#    file, in the same run, with the same connections and threads: requests per second and
#    p99 latency of both, and poststelle's share of nginx's rate (the issue asks >= 50 %).
# 2. Slowloris: 1,000 connections that send a header a line every 2 s and never finish it, and
#    100 that send nothing, for $SLOW_SECONDS, while a normal client asks for / every half
#    second: every normal request must be served (tests/status/slowloris.py).
#
#   tests/bench-status.sh               # 3 rounds of 10 s per server, 50 connections, 2 threads
#   DURATION=30s CONNECTIONS=100 tests/bench-status.sh
#
# poststelle is the release build, `run` with a status listener and SQLite in a temporary
# directory. nginx is Debian's package, only unpacked (apt-get download + dpkg -x) into
# target/test-tools/nginx, never installed; it runs as a process of this script (its own
# config, pid, logs and temp paths in the temporary directory; access log off; as many
# workers as the machine has cores). wrk is Debian's (installed if need be, as root). Both
# servers listen on 127.0.0.1 high ports. Everything is stopped and removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
SLOW=${SLOW:-1000}
SLOW_SECONDS=${SLOW_SECONDS:-20}
TARGET=${CARGO_TARGET_DIR:-target}

if ! command -v wrk >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
    apt-get install -y -qq wrk >/dev/null
fi
NGINX_DIR=$TARGET/test-tools/nginx
if [ ! -x "$NGINX_DIR/root/usr/sbin/nginx" ]; then
    mkdir -p "$NGINX_DIR"
    (cd "$NGINX_DIR" && apt-get download nginx >/dev/null 2>&1 && dpkg -x nginx_*.deb root)
fi
NGINX=$(cd "$NGINX_DIR" && pwd)/root/usr/sbin/nginx

cargo build --release --locked --quiet
BIN=$TARGET/release/poststelle

work=$(mktemp -d /tmp/poststelle-status-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 8192 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_PORT=$(free_port)
N_PORT=$(free_port)
REPO=$(pwd)
{
    echo "data_dir = \"$work/data\""
    sed -e "s|templates_dir = \"templates\"|templates_dir = \"$REPO/templates\"|" \
        -e "s|contacts = \"contacts/hessen.toml\"|contacts = \"$REPO/contacts/hessen.toml\"|" \
        -e "s|rules_dir = \"rules\"|rules_dir = \"$REPO/rules\"|" poststelle.toml
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

[status]
listen = "127.0.0.1:$P_PORT"
imprint_url = "https://www.example.test/impressum"
privacy_url = "https://www.example.test/datenschutz"
TOML
} > "$work/poststelle.toml"
ps() { "$BIN" --config "$work/poststelle.toml" "$@" >/dev/null; }
RUST_LOG=warn "$BIN" --config "$work/poststelle.toml" run 2>"$work/daemon.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$P_PORT/" -o /dev/null 2>/dev/null && break; sleep 0.1; done
# A page with something on it: an incident with an update, an announced maintenance.
ps lists create alle
ps incident open --platform portal --title "Anmeldung gestört" --impact "Keine Anmeldung möglich" --class 1
ps incident update 1 --text "Ursache gefunden, Neustart läuft"
START=$(date -d "+20 days" +%F)
ps maintenance schedule --platform zidkor --start "$START 19:00" --end "$START 23:00" \
    --reason "Sicherheitsupdates" --impact "Nicht erreichbar"
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$P_PORT/" | grep -q "Sicherheitsupdates" && break
    sleep 0.2
done

mkdir -p "$work/www" "$work/nginx-tmp"
curl -fsS "http://127.0.0.1:$P_PORT/" -H 'Accept-Language: de' -o "$work/www/index.html"
chmod -R a+rX "$work/www"
cat > "$work/nginx.conf" <<NGINX
worker_processes $(nproc);
pid $work/nginx.pid;
error_log $work/nginx-error.log;
daemon off;
user nobody nogroup;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx-tmp/body;
    proxy_temp_path $work/nginx-tmp/proxy;
    fastcgi_temp_path $work/nginx-tmp/fastcgi;
    uwsgi_temp_path $work/nginx-tmp/uwsgi;
    scgi_temp_path $work/nginx-tmp/scgi;
    types { text/html html; }
    server {
        listen 127.0.0.1:$N_PORT;
        root $work/www;
        location = / { try_files /index.html =404; }
    }
}
NGINX
"$NGINX" -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$N_PORT/" -o /dev/null 2>/dev/null && break; sleep 0.1; done
cmp <(curl -fsS "http://127.0.0.1:$N_PORT/") "$work/www/index.html"
BYTES=$(wc -c < "$work/www/index.html")

bench() { # name url
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H 'Accept-Language: de' "$2")
    local rps p99 p50 errors
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" || true)
    printf '%-12s %10s req/s   p50 %8s   p99 %8s   %s\n' "$1" "$rps" "$p50" "$p99" "$errors" >&2
    echo "$rps"
}
echo "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION each; / of $BYTES bytes; $(nproc) cores" >&2
# Warm-up, then each in turn (same run, same machine).
wrk -t1 -c4 -d2s "http://127.0.0.1:$P_PORT/" >/dev/null
wrk -t1 -c4 -d2s "http://127.0.0.1:$N_PORT/" >/dev/null
# Alternating rounds, the median ratio: a machine shared with other work (compilers) moves
# single runs by a factor of two.
ratios=()
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round" >&2
    p=$(bench poststelle "http://127.0.0.1:$P_PORT/")
    n=$(bench nginx "http://127.0.0.1:$N_PORT/")
    ratios+=("$(python3 -c "print(f'{100*$p/$n:.0f}')")")
done
python3 -c "import statistics,sys; r=sorted(map(int,sys.argv[1:])); print(f'poststelle / nginx: {statistics.median(r):.0f} % of nginx\'s rate, median of {len(r)} rounds {r} (issue 18 asks >= 50 %)')" "${ratios[@]}" >&2

echo "slowloris: $SLOW slow + $((SLOW / 10)) idle connections for ${SLOW_SECONDS}s, a normal GET / every 0.5 s" >&2
if python3 tests/status/slowloris.py 127.0.0.1 "$P_PORT" "$SLOW" "$SLOW_SECONDS" >&2; then
    echo "slowloris: every normal request was served" >&2
else
    echo "slowloris: a normal request failed or was slow" >&2
    exit 1
fi
