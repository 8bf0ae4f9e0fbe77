"""libwebhook's Python binding against real HTTP receivers on 127.0.0.1."""
import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest

import libwebhook
from libwebhook import _native
from conftest import SECRET, AioReceiver, standard_signature_ok

needs_loop = pytest.mark.skipif(not _native.HAVE_LOOP_API,
                                reason="libwebhook built without the host-loop API (wh_fd)")


# ---- delivery with explicit poll / flush -------------------------------------

def test_delivers_to_example_receiver_signed(receiver_factory):
    n = 50
    rec = receiver_factory(n)
    e = libwebhook.Engine()
    ep = e.add_endpoint(rec.url, secret=SECRET, max_in_flight=8)
    ids = set()
    for i in range(n):
        assert e.emit("message.sent", {"i": i, "text": "hé"}, channel="room-1") == 1
    assert e.flush(20000) is True
    outs = list(e.outcomes())
    assert len(outs) == n
    assert all(o.kind == "delivered" and o.http_status == 204 and o.error is None for o in outs)
    assert all(o.endpoint == ep.handle and o.endpoint_id == ep.id for o in outs)
    ids = {o.id for o in outs}
    assert len(ids) == n
    assert sorted(json.loads(o.data)["i"] for o in outs) == list(range(n))
    s = rec.summary()
    assert s["verified"] == n and s["distinct_ids"] == n and s["bad_signature"] == 0
    st = e.stats()
    assert st["emitted"] == n and st["delivered"] == n and st["queued"] == 0
    e.close()


def test_wrong_secret_is_rejected_by_receiver(receiver_factory):
    rec = receiver_factory(1)
    with libwebhook.Engine() as e:
        e.add_endpoint(rec.url, secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", max_attempts=1)
        e.emit("t", b"{}")
        e.flush(10000)
        outs = list(e.outcomes())
    assert [o.kind for o in outs] == ["dead"] and outs[0].http_status == 401
    assert outs[0].error == "WH_E_HTTP_STATUS"
    assert rec.summary()["bad_signature"] == 1


def test_aiohttp_receiver_sees_signed_bytes_exactly(aio_receiver_thread):
    rec = aio_receiver_thread
    rec.expect = 3
    e = libwebhook.Engine(on_outcome=None)
    e.add_endpoint(rec.url, secret=[SECRET, "whsec_QkJCQkJCQkJCQkJCQkJCQkJCQkJC"],
                   headers={"X-Api-Key": "k-1"})
    payloads = [b'{"a":1}', '{"b":"\u00e9"}', {"c": [1, 2]}]
    for i, p in enumerate(payloads):
        e.emit("thing.done", p, id=f"evt-{i}")
    assert e.flush(10000)
    assert len(rec.requests) == 3
    got = {h["webhook-id"]: (h, b) for _, h, b in rec.requests}
    assert got["evt-0"][1] == b'{"a":1}'
    assert got["evt-1"][1] == '{"b":"\u00e9"}'.encode()
    assert json.loads(got["evt-2"][1]) == {"c": [1, 2]}
    for h, b in got.values():
        assert h["x-api-key"] == "k-1"
        assert len(h["webhook-signature"].split(" ")) == 2
        assert standard_signature_ok(SECRET, h, b)
        libwebhook.verify_standard(SECRET, h, b)            # the binding agrees
        libwebhook.verify_standard(["whsec_QkJCQkJCQkJCQkJCQkJCQkJCQkJC"], h, b)
        with pytest.raises(libwebhook.SignatureError):
            libwebhook.verify_standard("whsec_Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0ND", h, b)
    e.close()


def test_retry_then_dead_outcomes_fields(aio_receiver_thread):
    rec = aio_receiver_thread
    rec.expect = 2
    e = libwebhook.Engine()
    e.add_endpoint(rec.url.replace("/hook", "/fail"), id="failing", max_attempts=2,
                   retry={"initial_ms": 10, "max_ms": 10})
    e.emit("x", "{}")
    assert e.flush(10000)
    outs = list(e.outcomes())
    assert [(o.kind, o.attempt, o.http_status, o.error) for o in outs] == [
        ("retry", 1, 503, "WH_E_HTTP_STATUS"), ("dead", 2, 503, "WH_E_HTTP_STATUS")]
    assert outs[0].retry_in_ms >= 0 and outs[0].endpoint_id == "failing"
    assert len({o.id for o in outs}) == 1


def test_context_manager_flushes(receiver_factory):
    rec = receiver_factory(5)
    with libwebhook.Engine({"endpoints": [{"id": "r", "url": rec.url, "secret": SECRET}]}) as e:
        for i in range(5):
            e.emit("t", [i])
        assert e.endpoint("r").url == rec.url
    assert e.closed
    assert rec.summary()["verified"] == 5


def test_config_as_json_string_and_path(tmp_path, receiver_factory):
    rec = receiver_factory(2)
    doc = json.dumps({"endpoints": [{"id": "a", "url": rec.url, "secret": SECRET}]})
    p = tmp_path / "cfg.json"
    p.write_text(doc.replace('"a"', '"b"'))
    e1 = libwebhook.Engine(doc)
    e2 = libwebhook.Engine(str(p))
    assert e1.endpoint("a").handle > 0 and e2.endpoint("b").handle > 0
    e1.emit("t", "{}")
    e2.emit("t", "{}")
    assert e1.flush(10000) and e2.flush(10000)
    assert rec.summary()["verified"] == 2


def test_remove_endpoint_cancels():
    e = libwebhook.Engine()
    ep = e.add_endpoint("http://127.0.0.1:9/never", retry={"initial_ms": 60000, "max_ms": 60000})
    e.emit("t", "{}")
    e.remove_endpoint(ep)
    outs = list(e.outcomes())
    assert [(o.kind, o.error) for o in outs] == [("dead", "WH_E_CANCELLED")]
    with pytest.raises(libwebhook.NotFound):
        e.remove_endpoint(ep)


# ---- callbacks --------------------------------------------------------------

def test_on_outcome_exception_is_raised_from_flush_and_nothing_lost(receiver_factory):
    rec = receiver_factory(3)
    seen = []

    def cb(o):
        seen.append(o.id)
        if len(seen) == 1:
            raise RuntimeError("boom from on_outcome")
    e = libwebhook.Engine(on_outcome=cb)
    e.add_endpoint(rec.url, secret=SECRET, max_in_flight=1)
    for i in range(3):
        e.emit("t", {"i": i})
    with pytest.raises(RuntimeError, match="boom from on_outcome"):
        e.flush(10000)
    e.flush(10000)             # the rest are reported by the next call
    assert len(seen) == 3 and len(set(seen)) == 3
    e.on_outcome = None        # settable attribute
    e.close()
    assert rec.summary()["verified"] == 3


# ---- errors -------------------------------------------------------------------

def test_bad_arguments_raise_named_exceptions():
    e = libwebhook.Engine()
    # add_endpoint goes through the JSON configuration: a bad URL is a
    # ConfigError naming the key
    with pytest.raises(libwebhook.ConfigError, match="url") as ei:
        e.add_endpoint("ftp://127.0.0.1/x")
    assert ei.value.name == "WH_E_CONFIG" and ei.value.status == _native.WH_E_CONFIG
    assert isinstance(ei.value, libwebhook.Error) and isinstance(ei.value, ValueError)
    with pytest.raises(libwebhook.ConfigError, match="timeout_ms"):
        e.add_endpoint("http://127.0.0.1:1/", timeout_ms=-5)
    with pytest.raises(libwebhook.ConfigError, match="bogus_key"):
        e.add_endpoint("http://127.0.0.1:1/", bogus_key=1)
    with pytest.raises(libwebhook.ConfigError, match="secret"):
        e.add_endpoint("http://127.0.0.1:1/", secret="whsec_!!!notbase64")
    e.add_endpoint("http://127.0.0.1:1/", id="dup")
    with pytest.raises(libwebhook.AlreadyExists):
        e.add_endpoint("http://127.0.0.1:1/", id="dup")
    with pytest.raises(libwebhook.JSONError):
        e.emit("t", "{not json")
    with pytest.raises(libwebhook.InvalidArgument):
        e.emit("", "{}")
    with pytest.raises(TypeError):
        e.emit(1, "{}")
    with pytest.raises(TypeError):
        e.emit("t", "{}", chanel="x")
    with pytest.raises(TypeError):
        e.emit("t", {1, 2})           # not JSON-serialisable
    with pytest.raises(TypeError):
        libwebhook.Engine(no_such_option=1)
    with pytest.raises(libwebhook.ConfigError, match="endpoints"):
        libwebhook.Engine('{"endpoints": 3}')
    with pytest.raises(libwebhook.JSONError):
        libwebhook.Engine(b'{"endpoints": [')
    with pytest.raises(libwebhook.IOError_):
        libwebhook.Engine("/nonexistent/libwebhook.json")
    with pytest.raises(libwebhook.ConfigError, match="queue"):
        libwebhook.Engine({"queue": {"type": "memory", "max_events": 0}})
    small = libwebhook.Engine(max_payload_bytes=16)
    small.add_endpoint("http://127.0.0.1:1/")
    with pytest.raises(libwebhook.TooLarge):
        small.emit("t", {"x": "y" * 100})
    full = libwebhook.Engine(max_queued_events=1)
    full.add_endpoint("http://127.0.0.1:1/")
    full.emit("t", "{}")
    with pytest.raises(libwebhook.QueueFull):
        full.emit("t", "{}")
    assert full.stats()["rejected"] == 1
    e.close()
    with pytest.raises(ValueError, match="closed"):
        e.emit("t", "{}")


# ---- receiver-side helpers ----------------------------------------------------

def test_verify_helpers_without_engine(tmp_path):
    body = b'{"x":1}'
    ts = int(time.time())
    sig = libwebhook.sign_standard(SECRET, "msg_1", ts, body)
    h = {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(ts), "Webhook-Signature": sig}
    libwebhook.verify_standard(SECRET, h, body)
    assert standard_signature_ok(SECRET, {k.lower(): v for k, v in h.items()}, body)
    with pytest.raises(libwebhook.SignatureError):
        libwebhook.verify_standard(SECRET, h, b'{"x":2}')
    old = dict(h, **{"Webhook-Timestamp": str(ts - 1000)})
    old["Webhook-Signature"] = libwebhook.sign_standard(SECRET, "msg_1", ts - 1000, body)
    with pytest.raises(libwebhook.TimestampError):
        libwebhook.verify_standard(SECRET, old, body, tolerance=300)
    libwebhook.verify_standard(SECRET, old, body, tolerance=2000)
    with pytest.raises(libwebhook.InvalidArgument):
        libwebhook.verify_standard(SECRET, {}, body)

    hexsig = hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    libwebhook.verify_hmac_hex("app-secret", body, hexsig)
    libwebhook.verify_hmac_hex("app-secret", body, hexsig.upper())
    with pytest.raises(libwebhook.SignatureError):
        libwebhook.verify_hmac_hex("other", body, hexsig)

    key = tmp_path / "k.pem"
    pub = tmp_path / "p.pem"
    data = tmp_path / "d"
    data.write_bytes(body)
    try:
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                       capture_output=True)
        raw = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key), str(data)], check=True,
                             capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("openssl command not available")
    import base64
    b64 = base64.b64encode(raw).decode()
    libwebhook.verify_rsa_sha256(pub.read_text(), body, b64)
    with pytest.raises(libwebhook.SignatureError):
        libwebhook.verify_rsa_sha256(pub.read_text(), b"other", b64)
    with pytest.raises(libwebhook.SecretError):
        libwebhook.verify_rsa_sha256("not a key", body, b64)


# ---- asyncio ---------------------------------------------------------------------

@needs_loop
def test_asyncio_lone_event_arrives_without_polling():
    async def main():
        rec = AioReceiver()
        rec.expect = 1
        await rec.start()
        try:
            e = libwebhook.Engine()
            e.add_endpoint(rec.url, secret=SECRET)
            await e.attach()
            e.emit("lonely", {"only": True})
            # no poll, flush or aflush: the loop alone drives the delivery
            await asyncio.wait_for(rec.event.wait(), 10)
            _, h, b = rec.requests[0]
            assert standard_signature_ok(SECRET, h, b)
            # the outcome also arrives by itself
            async for o in e.aoutcomes():
                assert o.kind == "delivered" and o.type == "lonely"
                break
            e.close()
        finally:
            await rec.stop()
    asyncio.run(main())


@needs_loop
def test_asyncio_many_events_aflush_and_callback_exception():
    async def main():
        rec = AioReceiver()
        n = 200
        rec.expect = n
        await rec.start()
        try:
            delivered = []

            def cb(o):
                delivered.append(o.id)
                if len(delivered) == 10:
                    raise KeyError("from on_outcome")
            e = libwebhook.Engine(on_outcome=cb)
            e.add_endpoint(rec.url, secret=SECRET, max_in_flight=16)
            await e.attach()
            for i in range(n):
                e.emit("m", {"i": i})
            with pytest.raises(KeyError, match="from on_outcome"):
                await e.aflush(20000)
            assert await e.aflush(20000)
            assert len(delivered) == n and len(set(delivered)) == n
            assert len(rec.requests) == n
            assert all(standard_signature_ok(SECRET, h, b) for _, h, b in rec.requests)
            e.close()
        finally:
            await rec.stop()
    asyncio.run(main())


@needs_loop
def test_example_aiohttp_chat_selftest(receiver_factory):
    n = 20
    rec = receiver_factory(n + 3)
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(libwebhook.__file__)))
    r = subprocess.run([__import__("sys").executable, os.path.join(root, "examples", "python", "aiohttp_chat.py"),
                        "--webhook", rec.url, "--secret", SECRET, "--selftest", str(n)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {
        "drained": True, "events": n + 3, "delivered": n + 3, "retry": 0, "dead": 0}
    s = rec.summary()
    assert s["verified"] == n + 3 and s["distinct_ids"] == n + 3


SW_RECEIVER = os.path.join(os.path.dirname(__file__), "..", "..", "node", "test", "sw_receiver.js")


@needs_loop
def test_asyncio_1000_events_verified_by_standardwebhooks_npm_package():
    """The README's asyncio usage, checked by an independent implementation:
    the standardwebhooks npm package verifies every request."""
    import shutil
    if not shutil.which("node"):
        pytest.skip("node not installed")
    n = 1000
    proc = subprocess.Popen(["node", SW_RECEIVER, SECRET, str(n)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if proc.poll() == 77 or not line.startswith("listening"):
            proc.wait(10)
            pytest.skip("standardwebhooks npm package not installed (tests/test_node.sh installs it)")
        url = f"http://{line.split()[1]}/hook"
        raised = []

        async def main():
            seen = []

            def on_outcome(o):
                seen.append(o.id)
                if len(seen) == 500:
                    raise ValueError("surfaced from on_outcome")
            engine = libwebhook.Engine(on_outcome=on_outcome)
            engine.add_endpoint(url, secret=SECRET, max_in_flight=16)
            await engine.attach()
            for i in range(n):
                engine.emit("message.sent", {"i": i}, channel="room-1")
            try:
                await engine.aflush(30000)
            except ValueError as exc:
                raised.append(str(exc))
            assert await engine.aflush(30000)
            engine.close()
            return seen
        seen = asyncio.run(main())
        assert raised == ["surfaced from on_outcome"]
        assert len(seen) == n and len(set(seen)) == n
        out, _ = proc.communicate(timeout=30)
        assert json.loads(out.strip().splitlines()[-1]) == {
            "received": n, "verified": n, "bad": 0, "distinct_ids": n}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_on_log_receives_library_diagnostics(caplog):
    got = []
    e = libwebhook.Engine(on_log=lambda lvl, msg: got.append((lvl, msg)), log_level=3)
    e.add_endpoint("http://127.0.0.1:9/never", max_attempts=1)
    e.emit("t", "{}")
    e.flush(5000)
    e.close()
    assert got and all(isinstance(m, str) and 0 <= lvl <= 3 for lvl, m in got)
    import logging
    with caplog.at_level(logging.DEBUG, logger="libwebhook"):
        d = libwebhook.Engine(log_level=3)       # default: the "libwebhook" logger
        d.add_endpoint("http://127.0.0.1:9/never", max_attempts=1)
        d.emit("t", "{}")
        d.flush(5000)
        d.close()
    assert any(r.name == "libwebhook" for r in caplog.records)


def test_every_status_has_its_exception_class():
    codes = {getattr(_native, n): n for n in dir(_native) if n.startswith("WH_E_")}
    assert len(codes) >= 24
    for st, name in codes.items():
        cls = libwebhook._CLASSES.get(st)
        assert cls is not None and issubclass(cls, libwebhook.Error), name
        assert libwebhook.status_name(st) == name
