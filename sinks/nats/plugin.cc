// sink/nats: events published to NATS JetStream, one message per event on a subject templated
// from the event type, the event id as Nats-Msg-Id (so a batch offered again is not stored
// twice), every publish acked by the stream before the batch is acked to the core.
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>

#include "nats_publisher.h"
#include "needle/plugin.h"
#include "sink_config.h"

namespace {

using needle::ConfigError;
using namespace needle::nats;

std::string read_secret(const char* key, const std::string& file) {
  std::ifstream in(file);
  if (!in) {
    throw ConfigError(key, file + ": cannot read");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  if (s.empty()) {
    throw ConfigError(key, file + " is empty");
  }
  return s;
}

int64_t ranged(const needle::Config& cfg, const char* key, int64_t lo, int64_t hi) {
  int64_t v = cfg.get_int(key);
  if (v < lo || v > hi) {
    throw ConfigError(key, "must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v;
}

class NatsSink final : public needle::Sink {
 public:
  NatsSink(needle::Host host, const needle::Config& cfg) : Sink(host) {
    Settings s;
    s.servers = cfg.get_strings("servers");
    if (s.servers.empty()) {
      throw ConfigError("servers", "name at least one server (nats://HOST:PORT)");
    }
    for (const auto& url : s.servers) {
      auto ok = check_server_url(url);
      if (!ok) {
        throw ConfigError("servers", ok.error().message);
      }
      if (url.rfind("tls://", 0) == 0) {
        s.tls = true;
      }
    }
    auto subject = SubjectTemplate::parse(cfg.get_string("subject"));
    if (!subject) {
      throw ConfigError("subject", subject.error().message);
    }
    s.subject = *subject;
    std::string format = cfg.get_string("format");
    if (format != "json" && format != "msgpack") {
      throw ConfigError("format", "must be json or msgpack");
    }
    s.json = format == "json";
    s.stream = cfg.get_string("stream");
    for (char c : s.stream) {
      if (c == '.' || c == '*' || c == '>' || c == ' ' || c == '/' || c == '\\') {
        throw ConfigError(
            "stream", "'" + s.stream + "': a stream name cannot hold '" + std::string(1, c) + "'");
      }
    }
    s.create_stream = cfg.get_bool("create_stream");
    if (s.create_stream && s.stream.empty()) {
      throw ConfigError("create_stream", "create_stream needs a stream name (stream = \"...\")");
    }
    s.stream_subjects = cfg.get_strings("stream_subjects");
    s.stream_replicas = ranged(cfg, "stream_replicas", 1, 5);
    s.ack_timeout = std::chrono::milliseconds(ranged(cfg, "ack_timeout_ms", 1, 600000));
    s.connect_timeout = std::chrono::milliseconds(ranged(cfg, "connect_timeout_ms", 1, 600000));
    s.reconnect_wait = std::chrono::milliseconds(ranged(cfg, "reconnect_wait_ms", 1, 600000));
    s.max_pending = ranged(cfg, "max_pending", 1, 1 << 20);
    s.user = cfg.get_string("user");
    if (cfg.has("password_file")) {
      if (s.user.empty()) {
        throw ConfigError("password_file", "a password needs a user");
      }
      s.password = read_secret("password_file", cfg.get_string("password_file"));
    }
    if (cfg.has("token_file")) {
      s.token = read_secret("token_file", cfg.get_string("token_file"));
    }
    for (const char* key : {"creds_file", "ca_file", "cert_file", "key_file"}) {
      if (!cfg.has(key)) {
        continue;
      }
      std::string file = needle::sinks::configured_file(cfg, key);
      std::string k = key;
      (k == "creds_file"  ? s.creds_file
       : k == "ca_file"   ? s.ca_file
       : k == "cert_file" ? s.cert_file
                          : s.key_file) = file;
    }
    if (s.cert_file.empty() != s.key_file.empty()) {
      throw ConfigError(s.cert_file.empty() ? "cert_file" : "key_file",
                        "a client certificate needs both cert_file and key_file");
    }
    if (!s.ca_file.empty() || !s.cert_file.empty()) {
      s.tls = true;
    }
    s.tls = s.tls || cfg.get_bool("tls");
    s.msg_id_prefix = std::string(this->host().host_id()) + "-";
    publisher_ = std::make_unique<Publisher>(
        std::move(s), [h = this->host()](int level, const std::string& msg) { h.log(level, msg); });
    c_acked_ = this->host().counter("nats_acked_total", "publishes the stream acked");
    c_duplicates_ = this->host().counter("nats_duplicates_total",
                                         "publishes the stream already had (a retried batch)");
    c_errors_ = this->host().counter("nats_publish_errors_total", "publishes the stream refused");
    c_ack_timeouts_ =
        this->host().counter("nats_ack_timeouts_total", "batches retried for missing acks");
    c_reconnects_ = this->host().counter("nats_reconnects_total", "reconnections to a server");
  }

  needle::Result<void> start() override {
    auto r = publisher_->connect(/*keep_trying=*/true);
    if (!r) {
      host().warn(r.error().message);  // the core holds the events until a server answers
      return {};
    }
    auto st = publisher_->ensure_stream();
    if (!st) {
      host().warn(st.error().message + "; retrying with every batch");
    }
    return {};
  }

  needle::Result<void> check_connect() override {
    auto r = publisher_->connect(/*keep_trying=*/false);
    if (r && !publisher_->settings().create_stream) {
      r = publisher_->ensure_stream();  // only looks the stream up
    }
    publisher_->close();
    return r;
  }

  needle_rc write(std::span<const std::string_view> items) override {
    auto r = publisher_->publish(items);
    publish_stats();
    if (r) {
      retry_.succeeded(host(), "the NATS servers");
      return NEEDLE_OK;
    }
    return retry_.failed(host(), r.error().message);
  }

  void stop() override { publisher_->close(); }

 private:
  void publish_stats() {
    PublisherStats s = publisher_->stats();
    host().add(c_acked_, s.acked - seen_.acked);
    host().add(c_duplicates_, s.duplicates - seen_.duplicates);
    host().add(c_errors_, s.publish_errors - seen_.publish_errors);
    host().add(c_ack_timeouts_, s.ack_timeouts - seen_.ack_timeouts);
    host().add(c_reconnects_, s.reconnects - seen_.reconnects);
    seen_ = s;
  }

  std::unique_ptr<Publisher> publisher_;
  needle::sinks::RetryReport retry_;
  PublisherStats seen_;
  uint32_t c_acked_ = 0;
  uint32_t c_duplicates_ = 0;
  uint32_t c_errors_ = 0;
  uint32_t c_ack_timeouts_ = 0;
  uint32_t c_reconnects_ = 0;
};

constexpr needle_config_key kKeys[] = {
    needle::key_strings("servers", "[\"nats://127.0.0.1:4222\"]",
                        "server URLs (nats://HOST:PORT or tls://HOST:PORT); any one will do"),
    needle::key_string("subject", "\"needle.{type}\"",
                       "subject of each event; {type} becomes the event type"),
    needle::key_string("format", "\"json\"", "json or msgpack: the message payload"),
    needle::key_string("stream", "\"\"",
                       "JetStream stream expected to store the events (empty: any that "
                       "captures the subject)"),
    needle::key_bool("create_stream", "false", "create `stream` when it does not exist"),
    needle::key_strings("stream_subjects", "[]",
                        "subjects of a created stream (default: from `subject`, needle.>)"),
    needle::key_int("stream_replicas", "1", "replicas of a created stream (1 to 5)"),
    needle::key_int("ack_timeout_ms", "5000",
                    "how long a batch may wait for its publish acks before it is sent again"),
    needle::key_int("connect_timeout_ms", "2000", "connect deadline per server"),
    needle::key_int("reconnect_wait_ms", "250", "pause between reconnect rounds"),
    needle::key_int("max_pending", "4096", "publishes in flight at most"),
    needle::key_path("creds_file", nullptr, "NATS credentials file (JWT and NKey seed)"),
    needle::key_path("token_file", nullptr, "file holding an auth token"),
    needle::key_string("user", "\"\"", "user name (with password_file)"),
    needle::key_path("password_file", nullptr, "file holding the user's password"),
    needle::key_bool("tls", "false", "require TLS (implied by tls:// URLs and the TLS files)"),
    needle::key_path("ca_file", nullptr, "PEM CA bundle to verify the servers"),
    needle::key_path("cert_file", nullptr, "PEM client certificate (with key_file)"),
    needle::key_path("key_file", nullptr, "PEM private key of cert_file"),
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, NatsSink, "nats", "0.1.0",
              "Publishes events to NATS JetStream (acked, deduplicated by event id)", "alpha",
              kKeys)
