#!/usr/bin/python3
"""An independent reader of the forward sink's plain stream mode (mode = "stream"), written
only from the framing's description: a 4-byte big-endian length, then exactly that many bytes
holding one msgpack map. Decoded with Debian's python3-msgpack; each event becomes one JSON
line in OUT. A frame that is not exactly one map is a protocol error: it is written as
{"protocol_error": "..."} and the connection is closed.

usage: stream_receiver.py unix:/path.sock OUT.jsonl"""
import json
import os
import signal
import socketserver
import struct
import sys
import threading

import msgpack

LOCK = threading.Lock()


def read_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None if not buf else bytes(buf)
        buf += chunk
    return bytes(buf)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            head = read_exactly(self.request, 4)
            if head is None:
                return
            if len(head) < 4:
                return self.error(f"connection closed inside a length prefix ({len(head)} bytes)")
            (length,) = struct.unpack(">I", head)
            body = read_exactly(self.request, length)
            if body is None or len(body) != length:
                return self.error(f"connection closed inside a {length}-byte frame")
            try:
                event = msgpack.unpackb(body, raw=False, strict_map_key=True)
            except Exception as e:  # extra bytes, truncation, bad encoding
                return self.error(f"frame of {length} bytes is not one msgpack object: {e}")
            if not isinstance(event, dict):
                return self.error(f"frame holds a {type(event).__name__}, not a map")
            with LOCK, open(OUT, "a") as f:
                f.write(json.dumps(event) + "\n")

    def error(self, text):
        with LOCK, open(OUT, "a") as f:
            f.write(json.dumps({"protocol_error": text}) + "\n")


if __name__ == "__main__":
    where, OUT = sys.argv[1], sys.argv[2]
    path = where[len("unix:"):]
    if os.path.exists(path):
        os.unlink(path)
    srv = socketserver.ThreadingUnixStreamServer(path, Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"stream receiver listening on {path}", flush=True)
    srv.serve_forever()
