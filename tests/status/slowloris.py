"""Slow clients against the status page, bounded in time: N connections that send a request's
header a line at a time and never finish it (and N/10 that connect and send nothing), while a
normal client asks for / every half second. Prints one JSON object; exits 1 when a normal
request failed or took longer than LIMIT seconds.

    python3 slowloris.py HOST PORT [N] [SECONDS]
"""
import asyncio, json, sys, time

HOST, PORT = sys.argv[1], int(sys.argv[2])
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 20.0
LIMIT = 5.0

closed_by_server = 0
opened = 0


async def slow(idle: bool, stop: float):
    global closed_by_server, opened
    try:
        r, w = await asyncio.open_connection(HOST, PORT)
    except OSError:
        return
    opened += 1
    try:
        if not idle:
            w.write(b"GET / HTTP/1.1\r\nHost: status\r\n")
            await w.drain()
        while time.monotonic() < stop:
            if not idle:
                w.write(b"X-Slow: a\r\n")
                await w.drain()
            try:
                data = await asyncio.wait_for(r.read(1), timeout=2.0)
                if data == b"" or data:
                    closed_by_server += 1
                    return
            except asyncio.TimeoutError:
                pass
    except (ConnectionError, OSError):
        closed_by_server += 1
    finally:
        w.close()


async def normal(stop: float, out: list):
    while time.monotonic() < stop:
        t0 = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), LIMIT)
            w.write(b"GET / HTTP/1.1\r\nHost: status\r\nConnection: close\r\n\r\n")
            await w.drain()
            data = await asyncio.wait_for(r.read(), LIMIT)
            w.close()
            ok = data.startswith(b"HTTP/1.1 200")
        except (asyncio.TimeoutError, OSError):
            ok = False
        out.append((ok, time.monotonic() - t0))
        await asyncio.sleep(0.5)


async def main():
    stop = time.monotonic() + SECONDS
    tasks = [asyncio.create_task(slow(i % 10 == 9, stop)) for i in range(N + N // 10)]
    await asyncio.sleep(1.0)
    results = []
    await normal(stop, results)
    await asyncio.gather(*tasks)
    lat = sorted(l for _, l in results)
    served = sum(1 for ok, _ in results if ok)
    report = {
        "slow_connections": N + N // 10,
        "opened": opened,
        "closed_by_server": closed_by_server,
        "normal_requests": len(results),
        "normal_served": served,
        "normal_max_ms": round(1000 * lat[-1], 1) if lat else None,
        "normal_median_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
    }
    print(json.dumps(report))
    ok = served == len(results) and results and lat[-1] < LIMIT
    sys.exit(0 if ok else 1)


asyncio.run(main())
