// sink/forward: events to a Fluentd Forward receiver (Fluentd, Fluent Bit, anything speaking
// Forward protocol v1) as PackedForward or CompressedPackedForward messages acked per chunk, or
// as a plain length-prefixed msgpack stream for custom readers.
#include <unistd.h>

#include <chrono>
#include <memory>

#include "forward_client.h"
#include "needle/plugin.h"
#include "sink_config.h"

namespace {

using needle::ConfigError;
using namespace needle::forward;

std::string local_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') {
    return "needle";
  }
  return buf;
}

class ForwardSink final : public needle::Sink {
 public:
  ForwardSink(needle::Host host, const needle::Config& cfg) : Sink(host) {
    Settings s;
    auto addr = parse_address(cfg.get_string("address"));
    if (!addr) {
      throw ConfigError("address", addr.error().message);
    }
    s.address = *addr;
    auto mode = parse_mode(cfg.get_string("mode"));
    if (!mode) {
      throw ConfigError("mode", mode.error().message);
    }
    s.mode = *mode;
    if (cfg.get_string("format") != "msgpack") {
      throw ConfigError("format",
                        "the forward sink sends the core's msgpack encoding: format "
                        "must be \"msgpack\" (it is the default)");
    }
    auto tag = TagTemplate::parse(cfg.get_string("tag"));
    if (!tag) {
      throw ConfigError("tag", tag.error().message);
    }
    s.tag = *tag;
    s.ack = cfg.get_bool("ack");
    int64_t ack_ms = cfg.get_int("ack_timeout_ms");
    if (ack_ms < 1 || ack_ms > 600000) {
      throw ConfigError("ack_timeout_ms", "must be from 1 to 600000");
    }
    s.ack_timeout = std::chrono::milliseconds(ack_ms);
    int64_t conn_ms = cfg.get_int("connect_timeout_ms");
    if (conn_ms < 1 || conn_ms > 600000) {
      throw ConfigError("connect_timeout_ms", "must be from 1 to 600000");
    }
    s.connect_timeout = std::chrono::milliseconds(conn_ms);
    s.shared_key = cfg.get_string("shared_key");
    s.self_hostname = cfg.get_string("self_hostname");
    if (s.self_hostname.empty()) {
      s.self_hostname = local_hostname();
    }
    s.username = cfg.get_string("username");
    s.password = cfg.get_string("password");
    if (s.mode == Mode::kStream && !s.shared_key.empty()) {
      throw ConfigError("shared_key",
                        "mode = \"stream\" has no handshake; use packed or "
                        "compressed for shared-key authentication");
    }
    if (s.shared_key.empty() && (!s.username.empty() || !s.password.empty())) {
      throw ConfigError(s.username.empty() ? "password" : "username",
                        "username and password are sent in the shared-key handshake: set "
                        "shared_key too");
    }
    if (s.username.empty() != s.password.empty()) {
      throw ConfigError(s.username.empty() ? "username" : "password",
                        "username and password go together");
    }
    s.tls_verify = cfg.get_bool("tls_verify");
    for (const char* key : {"ca_file", "cert_file", "key_file"}) {
      if (!cfg.has(key)) {
        continue;
      }
      if (s.address.scheme != Scheme::kTls) {
        throw ConfigError(key, std::string(key) + " is for tls:// addresses only");
      }
      std::string file = needle::sinks::configured_file(cfg, key);
      (std::string(key) == "ca_file"     ? s.ca_file
       : std::string(key) == "cert_file" ? s.cert_file
                                         : s.key_file) = file;
    }
    if (s.cert_file.empty() != s.key_file.empty()) {
      throw ConfigError(s.cert_file.empty() ? "cert_file" : "key_file",
                        "a client certificate needs both cert_file and key_file");
    }
    stream_no_ack_ = s.mode == Mode::kStream;
    if (stream_no_ack_) {
      s.ack = false;
    }
    client_ = std::make_unique<ForwardClient>(
        std::move(s),
        [h = this->host()](int level, const std::string& msg) mutable { h.log(level, msg); });
    c_connects_ = this->host().counter("forward_connects_total", "connections established");
    c_acked_ = this->host().counter("forward_chunks_acked_total", "chunks the receiver acked");
    c_ack_timeouts_ =
        this->host().counter("forward_ack_timeouts_total", "batches resent for a missing ack");
    c_losses_ = this->host().counter("forward_connection_losses_total",
                                     "connections lost or refused while sending");
  }

  needle::Result<void> start() override {
    if (stream_no_ack_) {
      host().info(
          "mode = \"stream\" has no acknowledgements: events written just before a "
          "receiver drops the connection can be lost");
    }
    auto r = client_->connect();
    if (!r) {
      // Not fatal: the receiver may come up later; every batch tries again, and the core
      // holds the events meanwhile (queue_size, on_full).
      host().warn(r.error().message + "; retrying with every batch");
    } else {
      host().info("connected to " + client_->settings().address.text);
    }
    publish_stats();
    return {};
  }

  needle::Result<void> check_connect() override {
    auto r = client_->connect();
    client_->close();
    return r;
  }

  needle_rc write(std::span<const std::string_view> items) override {
    auto r = client_->send(items);
    publish_stats();
    if (r) {
      retry_.succeeded(host(), client_->settings().address.text);
      return NEEDLE_OK;
    }
    return retry_.failed(host(), r.error().message);
  }

  void stop() override { client_->request_stop(); }

 private:
  void publish_stats() {
    const ClientStats& s = client_->stats();
    host().add(c_connects_, s.connects - seen_.connects);
    host().add(c_acked_, s.chunks_acked - seen_.chunks_acked);
    host().add(c_ack_timeouts_, s.ack_timeouts - seen_.ack_timeouts);
    host().add(c_losses_, s.connection_losses - seen_.connection_losses);
    seen_ = s;
  }

  std::unique_ptr<ForwardClient> client_;
  bool stream_no_ack_ = false;
  needle::sinks::RetryReport retry_;
  ClientStats seen_;
  uint32_t c_connects_ = 0;
  uint32_t c_acked_ = 0;
  uint32_t c_ack_timeouts_ = 0;
  uint32_t c_losses_ = 0;
};

constexpr needle_config_key kKeys[] = {
    needle::key_required(NEEDLE_CFG_STRING, "address",
                         "receiver: tcp://HOST:PORT, tls://HOST:PORT or unix:///PATH"),
    needle::key_string("tag", "\"needle.{type}\"",
                       "Fluentd tag; {type} becomes the event type (needle.process.exec)"),
    needle::key_string("mode", "\"packed\"",
                       "packed (PackedForward), compressed (gzip CompressedPackedForward) or "
                       "stream (4-byte big-endian length + one msgpack event, no acks)"),
    needle::key_string("format", "\"msgpack\"",
                       "must be msgpack: the records are sent as the "
                       "core encoded them"),
    needle::key_bool("ack", "true",
                     "ask for an ack per chunk and resend until acked "
                     "(at-least-once); packed and compressed modes"),
    needle::key_int("ack_timeout_ms", "5000",
                    "how long a batch may wait for its acks before it is sent again"),
    needle::key_int("connect_timeout_ms", "3000", "connect, TLS and handshake deadline"),
    needle::key_string("shared_key", "\"\"",
                       "shared key of the HELO/PING/PONG handshake (empty: no handshake)"),
    needle::key_string("self_hostname", "\"\"",
                       "our name in the handshake (empty: this host's name)"),
    needle::key_string("username", "\"\"", "user for the handshake's user authentication"),
    needle::key_string("password", "\"\"", "password for the handshake's user authentication"),
    needle::key_path("ca_file", nullptr,
                     "tls: PEM CA bundle to verify the receiver (default: system trust store)"),
    needle::key_path("cert_file", nullptr, "tls: PEM client certificate chain (with key_file)"),
    needle::key_path("key_file", nullptr, "tls: PEM private key of cert_file"),
    needle::key_bool("tls_verify", "true", "tls: verify the receiver's certificate and host name"),
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, ForwardSink, "forward", "0.1.0",
              "Sends events to a Fluentd Forward receiver (acked chunks, shared key, TLS)", "alpha",
              kKeys)
