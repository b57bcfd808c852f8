#!/usr/bin/env python3
"""Folds `perf script` output of a poststelle run (stdin) into phases and top functions.

Each sample is given to the phase of the first frame, from the leaf up, that names one of
poststelle's phases: so SQLite's work under the sender counts as store, base64 in lettre as
send, and malloc under the parser as parse+classify. Only samples with no such frame count
as allocator, runtime or other. A second table splits the samples by thread. Used by
tests/bench-daemon.sh with PROFILE=1.
"""
import collections
import re
import sys

PHASES = [
    ("store", re.compile(r"sqlite3|sqlx|poststelle::store")),
    ("render", re.compile(r"minijinja|poststelle::notify|poststelle::templates")),
    ("send", re.compile(r"lettre|poststelle::outbox")),
    ("parse+classify", re.compile(r"mail_parser|poststelle::classify|poststelle::message|"
                                  r"poststelle::ticket::prepare|regex|encoding_rs")),
    ("IMAP fetch/move", re.compile(r"async_imap|imap_proto|poststelle::source")),
    ("filing (ticket)", re.compile(r"poststelle::ticket")),
]
# Only where no phase above names the sample.
FALLBACK = [
    ("allocator", re.compile(r"^(malloc|free|realloc|_int_malloc|_int_free|cfree|__libc_)")),
    ("runtime", re.compile(r"tokio|mio|futures")),
]

def samples(lines):
    """(thread name, frames from the leaf up) of each sample."""
    cur, comm = [], "?"
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if cur:
                yield comm, cur
            cur = []
            continue
        if line.startswith((" ", "\t")):
            m = re.match(r"\s+[0-9a-f]+\s+(.*?)(\+0x[0-9a-f]+)?\s+\((.*)\)$", line)
            if m:
                cur.append(m.group(1))
        else:
            cur = []
            # "tokio-runtime-w 1234/1240 ..." or "sqlx-sqlite-wor ...": digits of pools cut.
            comm = re.sub(r"[-_ ]?[0-9]+$", "", line.split(" ")[0].strip()) or "?"
    if cur:
        yield comm, cur

def main():
    phases = collections.Counter()
    threads = collections.Counter()
    leaf = collections.Counter()
    total = 0
    for comm, frames in samples(sys.stdin):
        total += 1
        threads[comm] += 1
        leaf[frames[0][:100]] += 1
        for table in (PHASES, FALLBACK):
            hit = next((name for f in frames for name, rx in table if rx.search(f)), None)
            if hit:
                phases[hit] += 1
                break
        else:
            phases["other (kernel, libc)"] += 1
    if not total:
        print("no samples")
        return
    print(f"CPU by phase ({total} samples of the first file-transport run):")
    for name, n in phases.most_common():
        print(f"  {name:<22} {100 * n / total:5.1f} %")
    print("CPU by thread:")
    for name, n in threads.most_common(8):
        print(f"  {name:<22} {100 * n / total:5.1f} %")
    print("hottest functions (self):")
    for name, n in leaf.most_common(25):
        print(f"  {100 * n / total:5.1f} %  {name}")

main()
