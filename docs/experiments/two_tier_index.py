# Issue 20, SQLite on a store of a million tickets: what an index with random keys costs per
# insert, and what a two-tier Message-ID index (a small table of recent keys, merged into a big
# WITHOUT ROWID table in sorted key ranges) would cost instead. Measured 2026-12-05 on a copy
# of the scale bench's cached store (benches/scale.rs, target/scale-cache), batches of 256 as
# the daemon commits, WAL, synchronous NORMAL, 8 MiB page cache:
#
#   full  full index rows/s 9922 9716 10121
#   full  two-tier   rows/s 88269 63414 63300; merge of 32000 recent keys in 16 chunks 0.37 s (12 µs per key)
#   empty full index rows/s 59799 50127 43414
#   empty two-tier   rows/s 51010 43849 40156; merge of 32000 recent keys in 16 chunks 0.11 s (4 µs per key)
#
# Usage: python3 docs/experiments/two_tier_index.py target/scale-cache/sqlite-1000000-*.sqlite
# (copies the store into $OUT, default target/two-tier-experiment: needs its size free there).
# Two-tier Message-ID index experiment: articles insert rate with random Message-IDs, on the
# million-ticket store and on an empty one, with the full index vs a small recent tier + merge.
import sqlite3, os, random, time, shutil, sys
SRC = sys.argv[1]
OUT = os.environ.get("OUT", "target/two-tier-experiment")
os.makedirs(OUT, exist_ok=True)
BATCH = 256
N = 10_000

def conn(path):
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=NORMAL")
    c.execute("PRAGMA cache_size=-8192"); c.execute("PRAGMA wal_autocheckpoint=1280")
    return c

def mids(n, seed):
    r = random.Random(seed)
    return ["%016x.%d@gemeinde.example" % (r.getrandbits(64), i) for i in range(n)]

def insert(c, ids, tier):
    body = "x" * 3000
    t = time.perf_counter()
    for b in range(0, len(ids), BATCH):
        c.execute("BEGIN")
        for m in ids[b:b+BATCH]:
            cur = c.execute("INSERT INTO articles (ticket_id, kind, message_id, sender, subject, body, created_at) VALUES (1, 'inbound', ?, 'a@b', 's', ?, 0)", (m, body))
            if tier:
                c.execute("INSERT INTO message_ids_recent (message_id, article_id) VALUES (?, ?)", (m, cur.lastrowid))
        c.execute("COMMIT")
    return len(ids) / (time.perf_counter() - t)

def make_tier(c):
    c.execute("DROP INDEX articles_message_id")
    t = time.perf_counter()
    c.execute("CREATE TABLE message_ids (message_id TEXT NOT NULL, article_id INTEGER NOT NULL, PRIMARY KEY (message_id, article_id)) WITHOUT ROWID")
    c.execute("INSERT INTO message_ids SELECT message_id, id FROM articles WHERE message_id IS NOT NULL ORDER BY message_id, id")
    c.execute("CREATE TABLE message_ids_recent (message_id TEXT NOT NULL, article_id INTEGER NOT NULL)")
    c.execute("CREATE INDEX message_ids_recent_key ON message_ids_recent (message_id)")
    return time.perf_counter() - t

def merge(c, chunks):
    t = time.perf_counter()
    n = c.execute("SELECT count(*) FROM message_ids_recent").fetchone()[0]
    bounds = [r[0] for r in c.execute("SELECT message_id FROM message_ids_recent ORDER BY message_id")][:: max(1, n // chunks)] + [None]
    for lo, hi in zip(bounds, bounds[1:]):
        c.execute("BEGIN")
        if hi is None:
            w, a = "message_id >= ?", (lo,)
        else:
            w, a = "message_id >= ? AND message_id < ?", (lo, hi)
        c.execute(f"INSERT INTO message_ids SELECT message_id, article_id FROM message_ids_recent WHERE {w} ORDER BY message_id, article_id", a)
        c.execute(f"DELETE FROM message_ids_recent WHERE {w}", a)
        c.execute("COMMIT")
    return n, time.perf_counter() - t

for label, make_empty in (("full", False), ("empty", True)):
    for tier in (False, True):
        path = f"{OUT}/{label}-{tier}.sqlite"
        for ext in ("", "-wal", "-shm"):
            if os.path.exists(path + ext): os.remove(path + ext)
        if make_empty:
            c = conn(path)
            src = sqlite3.connect(SRC)
            c.execute("PRAGMA page_size=32768"); c.execute("VACUUM")
            for (sql,) in src.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC"):
                c.execute(sql)
        else:
            shutil.copy(SRC, path)
            c = conn(path)
        extra = make_tier(c) if tier else 0.0
        c.execute("PRAGMA foreign_keys=OFF")
        insert(c, mids(2000, 7), tier)  # warm
        rates = [insert(c, mids(N, 100 + r), tier) for r in range(3)]
        line = f"{label:5} {'two-tier' if tier else 'full index':10} rows/s {' '.join('%.0f' % x for x in rates)}"
        if tier:
            n, s = merge(c, 16)
            line += f"; merge of {n} recent keys in 16 chunks {s:.2f} s ({s / n * 1e6:.0f} µs per key); tier made in {extra:.0f} s"
        print(line, flush=True)
        c.close()
        for ext in ("", "-wal", "-shm"):
            if os.path.exists(path + ext): os.remove(path + ext)
