"""Fixtures: the example receiver (build/bin/receiver) and an aiohttp
receiver, both on 127.0.0.1 with a port the OS picks."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import threading

import pytest

BIN = os.environ.get("WH_BIN") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "build", "bin")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def standard_signature_ok(secret, headers, body):
    """Independent Standard Webhooks check (hmac + base64 of the stdlib)."""
    key = base64.b64decode(secret[len("whsec_"):])
    msg = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    want = base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    return any(p == "v1," + want for p in headers["webhook-signature"].split(" "))


class Receiver:
    """build/bin/receiver --port 0 --secret S --expect N: prints its port,
    then one JSON summary line when N distinct ids arrived."""

    def __init__(self, expect, secret=SECRET, extra=()):
        path = os.path.join(BIN, "receiver")
        if not os.path.exists(path):
            pytest.skip("build/bin/receiver not built (libmicrohttpd missing)")
        self.proc = subprocess.Popen([path, "--port", "0", "--secret", secret, "--expect", str(expect),
                                      "--quiet", *extra], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening 127.0.0.1:"), line
        self.port = int(line.rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def summary(self, timeout=30):
        out, _ = self.proc.communicate(timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def receiver_factory():
    made = []

    def make(expect, **kw):
        r = Receiver(expect, **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


class AioReceiver:
    """An aiohttp server that records each request (headers, body) and
    answers 204, or `status` for paths starting with /fail."""

    def __init__(self):
        self.requests = []
        self.event = None
        self.expect = 0

    async def start(self):
        from aiohttp import web
        self.event = asyncio.Event()

        async def hook(request):
            body = await request.read()
            self.requests.append((request.path, {k.lower(): v for k, v in request.headers.items()}, body))
            if len(self.requests) >= self.expect:
                self.event.set()
            if request.path.startswith("/fail"):
                return web.Response(status=503)
            return web.Response(status=204)
        app = web.Application()
        app.router.add_post("/{tail:.*}", hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"

    async def stop(self):
        await self.runner.cleanup()


@pytest.fixture
def aio_receiver_thread():
    """An AioReceiver on its own loop in a thread (for tests whose engine
    is driven by explicit poll/flush calls on the main thread)."""
    pytest.importorskip("aiohttp")
    loop = asyncio.new_event_loop()
    rec = AioReceiver()
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(rec.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(rec.stop())
        loop.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(10)
    yield rec
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
