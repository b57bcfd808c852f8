#!/usr/bin/env python3
"""Folds `perf script` output of a poststelle run (stdin) into phases and top functions.

Each sample is given to the phase of the first frame, from the leaf up, that names one: so
SQLite's work under the sender counts as store, base64 in lettre as send. Used by
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
    ("allocator", re.compile(r"^(malloc|free|realloc|_int_malloc|_int_free|cfree|__libc_)")),
    ("runtime", re.compile(r"tokio|mio|futures")),
]

def samples(lines):
    cur = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if cur:
                yield cur
            cur = []
            continue
        if line.startswith((" ", "\t")):
            m = re.match(r"\s+[0-9a-f]+\s+(.*?)(\+0x[0-9a-f]+)?\s+\((.*)\)$", line)
            if m:
                cur.append(m.group(1))
        else:
            cur = []
    if cur:
        yield cur

def main():
    phases = collections.Counter()
    leaf = collections.Counter()
    total = 0
    for frames in samples(sys.stdin):
        total += 1
        leaf[frames[0][:100]] += 1
        for f in frames:
            hit = next((name for name, rx in PHASES if rx.search(f)), None)
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
    print("hottest functions (self):")
    for name, n in leaf.most_common(25):
        print(f"  {100 * n / total:5.1f} %  {name}")

main()
