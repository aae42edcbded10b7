// A real Fluentd Forward protocol v1 receiver for the forward sink's tests: FluentServer from the
// npm package @fluent-org/logger (Message, Forward, PackedForward and CompressedPackedForward
// modes, chunk acks, the HELO/PING/PONG shared-key handshake, TLS). One JSON line per entry:
//   {"tag": "...", "time": {"epoch": s, "nano": ns} | seconds, "record": {...}}
// Environment:
//   FWD_OUT         where the lines go (required)
//   FWD_SOCKET      listen on this unix socket, or
//   FWD_PORT        listen on 127.0.0.1:FWD_PORT (0: any free port)
//   FWD_PORT_FILE   the port actually bound is written here
//   FWD_SHARED_KEY  require the shared-key handshake
//   FWD_TLS_CERT, FWD_TLS_KEY   serve TLS with this PEM certificate and key
"use strict";
const fs = require("fs");
const { FluentServer, EventTime } = require("@fluent-org/logger");

const env = process.env;
const out = fs.createWriteStream(env.FWD_OUT, { flags: "a" });
const options = {
  listenOptions: env.FWD_SOCKET
    ? { path: env.FWD_SOCKET }
    : { host: "127.0.0.1", port: Number(env.FWD_PORT || 0) },
};
if (env.FWD_SHARED_KEY) {
  options.security = {
    serverHostname: "needle-test-receiver",
    sharedKey: env.FWD_SHARED_KEY,
    authorize: false,
    userDict: {},
  };
}
if (env.FWD_TLS_CERT) {
  options.tlsOptions = {
    cert: fs.readFileSync(env.FWD_TLS_CERT),
    key: fs.readFileSync(env.FWD_TLS_KEY),
  };
}

const server = new FluentServer(options);
server.on("entry", (tag, time, record) => {
  const when = time instanceof EventTime ? { epoch: time.epoch, nano: time.nano } : time;
  out.write(JSON.stringify({ tag, time: when, record }) + "\n");
});
server.listen().then(() => {
  if (env.FWD_PORT_FILE && !env.FWD_SOCKET) {
    fs.writeFileSync(env.FWD_PORT_FILE, String(server.port));
  }
  console.log("forward receiver (node) listening on " +
              (env.FWD_SOCKET || "127.0.0.1:" + server.port));
});
const stop = () => server.close().then(() => out.end(() => process.exit(0)));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
