#!/usr/bin/python3
"""A Fluentd Forward protocol v1 receiver written for needle's tests (Debian python3-msgpack).

It serves the same purpose as forward_receiver.js when npm is not available, and it can
misbehave on purpose, which a real server will not do:
  FWD_DROP_FIRST=N    for the first N chunks: read the first bytes of the chunk, then close the
                      connection (nothing stored, no ack)
  FWD_NOACK_FIRST=M   for the next M chunks: store the entries, then close without an ack (the
                      sender must send them again: duplicates, never loss)
Modes: Message, Forward, PackedForward, CompressedPackedForward (gzip); {"ack": chunk} replies;
the HELO/PING/PONG shared-key handshake (FWD_SHARED_KEY).
One JSON line per entry: {"tag", "time": {"epoch","nano"} | seconds, "record"}.
Environment: FWD_OUT, FWD_SOCKET or FWD_PORT (0: any) with FWD_PORT_FILE; FWD_TLS_CERT and
FWD_TLS_KEY serve TLS over TCP."""
import gzip
import hashlib
import json
import os
import signal
import socketserver
import ssl
import struct
import sys
import threading

import msgpack

ENV = os.environ
OUT = ENV["FWD_OUT"]
KEY = ENV.get("FWD_SHARED_KEY", "")
SERVER_HOST = "needle-test-receiver"
LOCK = threading.Lock()
FAULTS = {"drop": int(ENV.get("FWD_DROP_FIRST", "0")), "noack": int(ENV.get("FWD_NOACK_FIRST", "0"))}


def ext_hook(code, data):
    if code == 0 and len(data) == 8:
        sec, nsec = struct.unpack(">II", data)
        return {"epoch": sec, "nano": nsec}
    return msgpack.ExtType(code, data)


def entries_of(msg):
    """(tag, [(time, record)], options) of one transport message."""
    tag, second = msg[0], msg[1]
    if isinstance(second, (bytes, bytearray)):  # (Compressed)PackedForward
        opt = msg[2] if len(msg) > 2 and isinstance(msg[2], dict) else {}
        data = gzip.decompress(second) if opt.get("compressed") == "gzip" else second
        up = msgpack.Unpacker(raw=False, ext_hook=ext_hook)
        up.feed(data)
        return tag, [(e[0], e[1]) for e in up], opt
    if isinstance(second, list):  # Forward
        opt = msg[2] if len(msg) > 2 and isinstance(msg[2], dict) else {}
        return tag, [(e[0], e[1]) for e in second], opt
    opt = msg[3] if len(msg) > 3 and isinstance(msg[3], dict) else {}  # Message
    return tag, [(second, msg[2])], opt


def digest(*parts):
    h = hashlib.sha512()
    for p in parts:
        h.update(p if isinstance(p, (bytes, bytearray)) else p.encode())
    return h.hexdigest()


def take_fault():
    with LOCK:
        if FAULTS["drop"] > 0:
            FAULTS["drop"] -= 1
            return "drop"
        return None


class Handler(socketserver.BaseRequestHandler):
    def send(self, obj):
        self.request.sendall(msgpack.packb(obj, use_bin_type=True))

    def handle(self):
        up = msgpack.Unpacker(raw=False, ext_hook=ext_hook)
        nonce = os.urandom(16)
        authed = not KEY
        if KEY:
            self.send(["HELO", {"nonce": nonce, "auth": "", "keepalive": True}])
        first_bytes = True
        while True:
            data = self.request.recv(65536 if not first_bytes else 1024)
            if not data:
                return
            if authed and first_bytes and take_fault() == "drop":
                log(f"fault: dropped the connection after {len(data)} bytes of a chunk")
                return
            first_bytes = False
            up.feed(data)
            for msg in up:
                if not authed:
                    if not (isinstance(msg, list) and msg and msg[0] == "PING" and len(msg) == 6):
                        log("fault: expected PING")
                        return
                    _, host, salt, their, _user, _pw = msg
                    if their != digest(salt, host, nonce, KEY):
                        self.send(["PONG", False, "shared key mismatch", SERVER_HOST, ""])
                        log("refused a PING: shared key mismatch")
                        return
                    self.send(["PONG", True, "", SERVER_HOST, digest(salt, SERVER_HOST, nonce, KEY)])
                    authed = True
                    first_bytes = True
                    continue
                tag, entries, opt = entries_of(msg)
                with LOCK, open(OUT, "a") as f:
                    for t, rec in entries:
                        f.write(json.dumps({"tag": tag, "time": t, "record": rec}) + "\n")
                if "chunk" in opt:
                    with LOCK:
                        noack = FAULTS["noack"] > 0
                        if noack:
                            FAULTS["noack"] -= 1
                    if noack:
                        log("fault: stored a chunk and closed without its ack")
                        return
                    self.send({"ack": opt["chunk"]})


def log(text):
    print(text, flush=True)


def main():
    if ENV.get("FWD_SOCKET"):
        path = ENV["FWD_SOCKET"]
        if os.path.exists(path):
            os.unlink(path)
        srv = socketserver.ThreadingUnixStreamServer(path, Handler)
        where = path
    else:
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server_class = socketserver.ThreadingTCPServer
        if ENV.get("FWD_TLS_CERT"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(ENV["FWD_TLS_CERT"], ENV["FWD_TLS_KEY"])

            class TlsServer(socketserver.ThreadingTCPServer):
                def get_request(self):
                    sock, addr = self.socket.accept()
                    return ctx.wrap_socket(sock, server_side=True), addr

            server_class = TlsServer
        srv = server_class(("127.0.0.1", int(ENV.get("FWD_PORT", "0"))), Handler)
        port = srv.server_address[1]
        if ENV.get("FWD_PORT_FILE"):
            with open(ENV["FWD_PORT_FILE"], "w") as f:
                f.write(str(port))
        where = f"127.0.0.1:{port}"
    srv.daemon_threads = True
    log(f"forward receiver (python) listening on {where}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv.serve_forever()


if __name__ == "__main__":
    main()
