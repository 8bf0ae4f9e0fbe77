#!/usr/bin/env python3
"""HTTPS receiver for tests/test_tls.c (Python standard library only).

    tls_server.py CERT KEY LOG [--client-ca CA] [--max-tls 1.2]

Listens on 127.0.0.1 on a free port and prints "listening PORT".  Answers
every POST with 200 (HTTP/1.1 keep-alive).  Appends to LOG one line per
completed TLS handshake ("conn") and per request ("req ID ATTEMPT"), and
"fail REASON" per refused handshake.  With --client-ca a client certificate
signed by CA is required; --max-tls 1.2 refuses TLS 1.3."""
import http.server
import ssl
import sys
import threading

args = sys.argv[1:]
cert, key, logpath = args[0], args[1], args[2]
client_ca = args[args.index("--client-ca") + 1] if "--client-ca" in args else None
max_tls = args[args.index("--max-tls") + 1] if "--max-tls" in args else None

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
if client_ca:
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(client_ca)
if max_tls == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

lock = threading.Lock()
logf = open(logpath, "a", buffering=1)


def log(line):
    with lock:
        logf.write(line + "\n")
        logf.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n:
            self.rfile.read(n)
        log("req %s %s" % (self.headers.get("webhook-id", "-"),
                           self.headers.get("webhook-attempt", "-")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            tls = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log("fail %s" % (getattr(e, "reason", None) or e.__class__.__name__))
            return
        log("conn")
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


srv = Server(("127.0.0.1", 0), Handler)
print("listening %d" % srv.server_address[1], flush=True)
srv.serve_forever()
