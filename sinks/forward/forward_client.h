// The transport of the forward sink: one connection (TCP, unix socket or TLS over either) run on
// Boost.Asio with a deadline on every operation, the shared-key handshake, and a batch sent as
// PackedForward / CompressedPackedForward messages (one per tag, each its own chunk) or as the
// plain length-prefixed stream.
#ifndef NEEDLE_SINKS_FORWARD_CLIENT_H
#define NEEDLE_SINKS_FORWARD_CLIENT_H

#include <atomic>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forward_proto.h"
#include "needle/result.h"

namespace needle::forward {

struct Settings {
  Address address;
  Mode mode = Mode::kPacked;
  TagTemplate tag;
  bool ack = true;
  std::chrono::milliseconds ack_timeout{5000};
  std::chrono::milliseconds connect_timeout{3000};
  std::string shared_key;  // empty: no handshake
  std::string self_hostname;
  std::string username;
  std::string password;
  std::string ca_file;    // tls: empty means the system's trust store
  std::string cert_file;  // tls client certificate (with key_file)
  std::string key_file;
  bool tls_verify = true;
  int gzip_level = 6;
};

/// Counters a sink exports; only ever grow.
struct ClientStats {
  uint64_t connects = 0;
  uint64_t chunks_acked = 0;
  uint64_t ack_timeouts = 0;
  uint64_t connection_losses = 0;
};

class ForwardClient {
 public:
  using Logger = std::function<void(int level, const std::string& msg)>;  // NEEDLE_LOG_*

  /// Throws std::runtime_error when the TLS files cannot be loaded (the caller names the key).
  ForwardClient(Settings settings, Logger log);
  ~ForwardClient();
  ForwardClient(const ForwardClient&) = delete;
  ForwardClient& operator=(const ForwardClient&) = delete;

  /// Sink thread (or the main thread before it starts). Connects, does TLS and the handshake,
  /// unless already connected.
  Result<void> connect();
  /// Sink thread. Sends one batch of msgpack-encoded events. With acks it returns only once
  /// every chunk of the batch was acknowledged; an error means the batch must be offered again
  /// (at-least-once: parts of it may have arrived). The connection is closed on any error.
  Result<void> send(std::span<const std::string_view> events);
  void close();
  /// Any thread: makes a blocked call give up within about 50 ms.
  void request_stop() { stopping_ = true; }

  const ClientStats& stats() const { return stats_; }
  const Settings& settings() const { return s_; }

 private:
  using Socket = boost::asio::generic::stream_protocol::socket;
  using Clock = std::chrono::steady_clock;
  struct Group {
    std::string tag;
    std::string entries;
    size_t count = 0;
    std::string_view first_id;
    std::string_view last_id;
  };

  template <typename Start>
  boost::system::error_code run(Start&& start, Clock::time_point deadline, size_t* n = nullptr);
  Result<void> connect_once();
  Result<void> handshake();
  Result<void> write_all(const std::string& data, Clock::time_point deadline);
  /// Reads until one msgpack object is complete; it stays valid until the next read.
  Result<msgpack::object> read_object(Clock::time_point deadline);
  Result<void> wait_acks(std::vector<std::string>& chunks, Clock::time_point deadline);
  bool peer_closed() const;
  int native_fd() const;
  std::string where() const { return s_.address.text; }
  void build_packed(std::span<const std::string_view> events);

  Settings s_;
  Logger log_;
  boost::asio::io_context io_;
  std::optional<boost::asio::ssl::context> ssl_ctx_;
  std::unique_ptr<Socket> plain_;
  std::unique_ptr<boost::asio::ssl::stream<Socket>> tls_;
  bool connected_ = false;
  std::atomic<bool> stopping_{false};
  msgpack::unpacker unpacker_;
  msgpack::object_handle last_;
  uint64_t seed_ = 0;
  std::vector<Group> groups_;
  size_t groups_used_ = 0;
  std::string out_;
  std::string zbuf_;
  std::string tag_;
  std::vector<std::string> chunks_;
  ClientStats stats_;
};

}  // namespace needle::forward

#endif  // NEEDLE_SINKS_FORWARD_CLIENT_H
