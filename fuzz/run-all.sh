#!/usr/bin/env bash
# Runs every fuzz target (or those named) one after another for SECONDS each and prints, per
# target, what libFuzzer's final statistics say: executions, executions per second, coverage
# (cov: edges, ft: features), corpus size, peak memory, and the crashes, timeouts and
# out-of-memory inputs found (their files in fuzz/artifacts/<target>/).
#
#   fuzz/run-all.sh 600                  # every target, ten minutes each
#   fuzz/run-all.sh 60 lists contacts    # two targets, a minute each
#
# One at a time: a fuzzer takes a core. Builds with optimisations and debug assertions
# (-O -a: overflow checks and debug_assert! stay on, see fuzz/README.md). Memory: -rss_limit_mb
# and -malloc_limit_mb=1024 (more than 1 GiB is a finding); an input taking longer than
# $TIMEOUT seconds (default 10) is a hang. Working corpus: fuzz/corpus/<target> (seeded from
# fuzz/seeds/<target>); logs: fuzz/logs/<target>.log; a summary: fuzz/logs/summary.tsv.
set -euo pipefail

SECONDS_EACH=${1:?usage: fuzz/run-all.sh SECONDS [TARGET...]}
shift
TIMEOUT=${TIMEOUT:-10}
FUZZ=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$FUZZ")
cd "$ROOT"

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -O -a >&2

mkdir -p "$FUZZ/logs"
# SUMMARY names another summary file, for two runs side by side (one per core).
summary=${SUMMARY:-$FUZZ/logs/summary.tsv}
printf 'target\tseconds\texecs\texec_per_s\tcov\tft\tcorpus\tpeak_rss_mb\tfindings\n' >"$summary"

for t in "${targets[@]}"; do
    case "$t" in
        subject | nutzerkonto | single_line | escaped) max_len=4096 ;;
        *) max_len=65536 ;;
    esac
    mkdir -p "$FUZZ/corpus/$t" "$FUZZ/artifacts/$t"
    marker=$(mktemp)
    log="$FUZZ/logs/$t.log"
    echo "== $t: ${SECONDS_EACH}s" >&2
    start=$(date +%s)
    status=0
    cargo +nightly fuzz run -O -a "$t" "$FUZZ/corpus/$t" "$FUZZ/seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" \
        -rss_limit_mb=1024 -malloc_limit_mb=1024 -max_len="$max_len" \
        -print_final_stats=1 </dev/null >"$log" 2>&1 || status=$?
    # libFuzzer's own time ("Done N runs in S second(s)"), else the wall time with the start.
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    took=${took:-$(($(date +%s) - start))}
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    execs=$(stat number_of_executed_units)
    rate=$(stat average_exec_per_sec)
    rss=$(stat peak_rss_mb)
    # The last status line: "#N  DONE  cov: X ft: Y corp: A/B ..." (or pulse, on a crash).
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corpus=$(find "$FUZZ/corpus/$t" -type f | wc -l)
    findings=$(find "$FUZZ/artifacts/$t" -type f -newer "$marker" -printf '%f ' | sed 's/ $//')
    rm -f "$marker"
    if [ "$status" -ne 0 ] && [ -z "$findings" ]; then
        findings="exit status $status, see $log"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$corpus" "${rss:-?}" "${findings:-none}" >>"$summary"
done

column -t -s $'\t' "$summary"
