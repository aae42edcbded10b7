// The NATS JetStream side of the nats sink, on Debian's libnats (cnats): one connection to a
// list of servers (reconnecting by itself), a JetStream context, asynchronous publishes of one
// batch with the event id as Nats-Msg-Id, and a wait for every publish ack.
#ifndef NEEDLE_SINKS_NATS_PUBLISHER_H
#define NEEDLE_SINKS_NATS_PUBLISHER_H

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "needle/result.h"

namespace needle::nats {

/// A subject with an optional `{type}` placeholder ("needle.{type}" → "needle.process.exec").
/// Characters a subject cannot carry (space, '*', '>') become '_'.
class SubjectTemplate {
 public:
  static Result<SubjectTemplate> parse(std::string_view text);
  void expand(std::string_view type, std::string& out) const;
  /// The subjects a stream must capture: "needle.{type}" → "needle.>".
  std::string stream_filter() const;

 private:
  std::string prefix_;
  std::string suffix_;
  bool has_type_ = false;
};

/// "nats://HOST:PORT" or "tls://HOST:PORT" (user:password@ allowed). Error: what is wrong.
Result<void> check_server_url(std::string_view url);

struct Settings {
  std::vector<std::string> servers;
  SubjectTemplate subject;
  bool json = true;    // the core's encoding of the events
  std::string stream;  // empty: any stream capturing the subject
  bool create_stream = false;
  std::vector<std::string> stream_subjects;  // empty: subject.stream_filter()
  int64_t stream_replicas = 1;
  std::chrono::milliseconds ack_timeout{5000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reconnect_wait{250};
  int64_t max_pending = 4096;
  std::string msg_id_prefix;  // before the event id in Nats-Msg-Id
  std::string name = "needle";
  std::string creds_file;
  std::string token;
  std::string user;
  std::string password;
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

struct PublisherStats {
  uint64_t acked = 0;
  uint64_t duplicates = 0;  // acks saying the stream already had that Nats-Msg-Id
  uint64_t publish_errors = 0;
  uint64_t ack_timeouts = 0;
  uint64_t disconnects = 0;
  uint64_t reconnects = 0;
};

class Publisher {
 public:
  using Logger = std::function<void(int level, const std::string& msg)>;  // NEEDLE_LOG_*

  Publisher(Settings settings, Logger log);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  /// Connects. With `keep_trying` the library keeps retrying in the background when no server
  /// answers now (publishes are then buffered or time out); without it, an unreachable list of
  /// servers is an error (check --connect).
  Result<void> connect(bool keep_trying);
  /// Creates the stream when asked to and it does not exist; checks it exists otherwise.
  Result<void> ensure_stream();
  /// Sink thread. Publishes one batch and waits for every ack. An error means the batch must be
  /// offered again; events the stream already stored are recognised by their Nats-Msg-Id.
  Result<void> publish(std::span<const std::string_view> events);
  /// Any thread.
  void close();

  PublisherStats stats() const;
  const Settings& settings() const { return s_; }
  std::string servers_text() const;

 private:
  static void on_pub_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* self);
  static void on_disconnected(natsConnection* nc, void* self);
  static void on_reconnected(natsConnection* nc, void* self);

  // What libnats' own threads touch (ack, disconnect and reconnect callbacks). It is never
  // freed: libnats may still deliver a callback after natsConnection_Destroy returns, and a
  // plugin is never unloaded, so one small leak per sink instance is the safe owner.
  struct Shared {
    Logger log;
    std::string servers;
    std::atomic<bool> muted{false};  // set by close(): no logging from late callbacks
    std::atomic<uint64_t> acked{0};
    std::atomic<uint64_t> duplicates{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> disconnects{0};
    std::atomic<uint64_t> reconnects{0};
    std::mutex mu;
    std::string first_error;  // of the current batch
  };

  Settings s_;
  Logger log_;
  Shared* shared_;  // never null; never freed (see above)
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  bool stream_ready_ = false;
  std::string subject_;
  std::string msg_id_;
  uint64_t ack_timeouts_ = 0;
};

}  // namespace needle::nats

#endif  // NEEDLE_SINKS_NATS_PUBLISHER_H
