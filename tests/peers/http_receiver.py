#!/usr/bin/python3
"""A small HTTP(S) receiver for the http sink's integration tests (python3 stdlib only).

It listens on 127.0.0.1 on --port (default: a free one) and writes that port to --port-file
once it accepts connections. Every POST body (gzip Content-Encoding undone) is stored as DIR/<n>.body and
described by one JSON line in DIR/requests.jsonl:
  {"n", "status", "path", "headers", "raw_len", "len", "peer_port", "client_cn"}
Requests answered with an error are logged with their status but their body is not kept.
GET /_count answers {"accepted": n, "seen": m}.

Behaviour for tests:
  --fail-first N      answer --fail-status (default 503) to the first N POSTs
  --retry-after S     send "Retry-After: S" with those answers
  --status CODE       the answer to every other POST (default 200)
  --delay-ms MS       wait this long before answering each POST (a slow backend)
  --tls-cert/--tls-key/--tls-ca   serve HTTPS; with --tls-ca, require a client certificate
"""
import argparse
import gzip
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--fail-first", type=int, default=0)
ap.add_argument("--fail-status", type=int, default=503)
ap.add_argument("--retry-after", default="")
ap.add_argument("--status", type=int, default=200)
ap.add_argument("--delay-ms", type=int, default=0)
ap.add_argument("--tls-cert", default="")
ap.add_argument("--tls-key", default="")
ap.add_argument("--tls-ca", default="")
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)

state = {"seen": 0, "accepted": 0}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's
    # delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, *unused):
        pass

    def answer(self, code, body=b"{}", extra=()):
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_count":
            with lock:
                self.answer(200, json.dumps(state).encode())
        else:
            self.answer(404)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if args.delay_ms:
            time.sleep(args.delay_ms / 1000.0)
        body = raw
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(raw)
        cn = None
        if hasattr(self.connection, "getpeercert"):
            cert = self.connection.getpeercert()
            for rdn in (cert or {}).get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
        with lock:
            state["seen"] += 1
            status = args.status
            extra = []
            if state["seen"] <= args.fail_first:
                status = args.fail_status
                if args.retry_after:
                    extra.append(("Retry-After", args.retry_after))
            n = state["seen"]
            if 200 <= status < 300:
                state["accepted"] += 1
                with open(os.path.join(args.dir, "%06d.body" % n), "wb") as f:
                    f.write(body)
            with open(os.path.join(args.dir, "requests.jsonl"), "a") as f:
                f.write(json.dumps({"n": n, "status": status, "path": self.path,
                                    "headers": dict(self.headers.items()), "raw_len": len(raw),
                                    "len": len(body), "peer_port": self.client_address[1],
                                    "client_cn": cn, "time": time.time()}) + "\n")
        self.answer(status, b'{"ok":%s}' % (b"true" if status < 300 else b"false"), extra)


ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
if args.tls_cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    if args.tls_ca:
        ctx.load_verify_locations(args.tls_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
tmp = args.port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(server.server_address[1]))
os.rename(tmp, args.port_file)   # the test sees the port only once it is complete
server.serve_forever()
