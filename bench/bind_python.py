#!/usr/bin/env python3
"""Python side of bench section 10 (run by bench/run.py with the interpreter
`make python` built for and PYTHONPATH=BUILD/python).

    bind_python.py emit N                      ns per Engine.emit (bytes, dict)
    bind_python.py lib URL N INFLIGHT MODE BODYFILE
        libwebhook on asyncio (attach, no polling task): N signed events,
        MODE single (max_in_flight INFLIGHT) or batch (1000 per request,
        max_in_flight INFLIGHT); from the first emit to aflush() returning
    bind_python.py aiohttp URL N INFLIGHT MODE BODYFILE
        the sender a Python developer writes by hand: one aiohttp
        ClientSession (connector limit INFLIGHT), INFLIGHT worker tasks, each
        request signed like Standard Webhooks with hmac + base64 (id,
        timestamp, signature headers), status checked; MODE batch sends JSON
        arrays of 1000 events, one signature per request
Prints "RESULT name key=value ..." lines."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BATCH = 1000


def cpu():
    return time.process_time()


def bench_emit(n):
    import libwebhook
    payload = b'{"room":"room-1","user":"u-1","text":"hello, world"}'
    obj = json.loads(payload)
    for kind, data in (("bytes", payload), ("dict", obj)):
        e = libwebhook.Engine(keep_outcomes=False, max_queued_events=2 * n)
        e.add_endpoint("http://127.0.0.1:9/never")
        emit = e.emit
        for _ in range(1000):
            emit("message.sent", data, channel="room-1")
        t = time.perf_counter()
        for _ in range(n):
            emit("message.sent", data, channel="room-1")
        ns = (time.perf_counter() - t) / n * 1e9
        print(f"RESULT py_emit kind={kind} ns={ns:.1f}")
        e.close()


async def bench_lib(url, n, inflight, mode, body):
    import libwebhook
    done = [0, 0]

    def on_outcome(o):
        done[0 if o.kind == "delivered" else 1] += 1
    e = libwebhook.Engine(on_outcome=on_outcome)
    opts = {"secret": SECRET, "max_in_flight": inflight}
    if mode == "batch":
        opts["batch"] = {"max_events": BATCH}
    e.add_endpoint(url, **opts)
    await e.attach()
    c0, t0 = cpu(), time.perf_counter()
    chunk = 1000
    for i in range(0, n, chunk):
        for _ in range(min(chunk, n - i)):
            e.emit("message.sent", body, channel="room-1")
        await asyncio.sleep(0)          # let the loop run between chunks
    ok = await e.aflush(600000)
    dt, dc = time.perf_counter() - t0, cpu() - c0
    e.close()
    if not ok or done[0] != n:
        raise SystemExit(f"lib: drained={ok} delivered={done[0]} other={done[1]} of {n}")
    print(f"RESULT py_lib mode={mode} inflight={inflight} n={n} eps={n / dt:.0f} "
          f"cpu_ns_per_event={dc / n * 1e9:.0f}")


async def bench_aiohttp(url, n, inflight, mode, body):
    import aiohttp
    key = base64.b64decode(SECRET[len("whsec_"):])
    per = BATCH if mode == "batch" else 1
    requests = (n + per - 1) // per
    next_req = [0]
    delivered = [0]

    async def worker(session):
        while next_req[0] < requests:
            r = next_req[0]
            next_req[0] += 1
            k = min(per, n - r * per)
            if mode == "batch":
                data = ("[" + ",".join([body.decode()] * k) + "]").encode()
            else:
                data = body
            mid = str(uuid.uuid4())
            ts = str(int(time.time()))
            sig = base64.b64encode(hmac.new(key, f"{mid}.{ts}.".encode() + data, hashlib.sha256).digest()).decode()
            headers = {"content-type": "application/json", "webhook-id": mid,
                       "webhook-timestamp": ts, "webhook-signature": "v1," + sig}
            async with session.post(url, data=data, headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    delivered[0] += k
    c0, t0 = cpu(), time.perf_counter()
    conn = aiohttp.TCPConnector(limit=inflight)
    async with aiohttp.ClientSession(connector=conn) as session:
        await asyncio.gather(*(worker(session) for _ in range(inflight)))
    dt, dc = time.perf_counter() - t0, cpu() - c0
    if delivered[0] != n:
        raise SystemExit(f"aiohttp: delivered {delivered[0]} of {n}")
    print(f"RESULT py_aiohttp mode={mode} inflight={inflight} n={n} eps={n / dt:.0f} "
          f"cpu_ns_per_event={dc / n * 1e9:.0f}")


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    if argv[1] == "emit":
        bench_emit(int(argv[2]))
        return 0
    url, n, inflight, mode = argv[2], int(argv[3]), int(argv[4]), argv[5]
    with open(argv[6], "rb") as f:
        body = f.read().strip()
    fn = {"lib": bench_lib, "aiohttp": bench_aiohttp}[argv[1]]
    asyncio.run(fn(url, n, inflight, mode, body))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
