#!/usr/bin/env python3
"""A Standard Webhooks receiver written independently of libwebhook, with the
Python standard library only (http.server, hmac, hashlib, base64), following
the specification at standardwebhooks.com:

    signed content  = f"{webhook-id}.{webhook-timestamp}.{body}"
    key             = base64-decode(secret without the "whsec_" prefix)
    webhook-signature = space-separated "v1,<base64 HMAC-SHA256>" entries

Usage: independent_receiver.py SECRET   (prints "listening PORT", serves on
127.0.0.1 until SIGTERM).  GET /stats returns the counters as JSON.
"""
import base64, hashlib, hmac, json, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = sys.argv[1]
KEY = base64.b64decode(SECRET[len("whsec_"):]) if SECRET.startswith("whsec_") else SECRET.encode()
TOLERANCE = 5 * 60
lock = threading.Lock()
stats = {"received": 0, "verified": 0, "bad_signature": 0, "bad_timestamp": 0,
         "distinct_ids": 0}
ids = set()


def verify(msg_id, ts, body, header):
    try:
        t = int(ts)
    except ValueError:
        return "bad_timestamp"
    if abs(time.time() - t) > TOLERANCE:
        return "bad_timestamp"
    mac = hmac.new(KEY, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    for entry in header.split(" "):
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return "verified"
    return "bad_signature"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with lock:
            body = json.dumps(stats).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        verdict = verify(self.headers.get("webhook-id", ""),
                         self.headers.get("webhook-timestamp", ""), body,
                         self.headers.get("webhook-signature", ""))
        try:
            json.loads(body)
        except ValueError:
            verdict = "bad_signature"
        with lock:
            stats["received"] += 1
            stats[verdict] += 1
            if verdict == "verified":
                ids.add(self.headers["webhook-id"])
                stats["distinct_ids"] = len(ids)
        self.send_response(204 if verdict == "verified" else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
