// sink/syslog transports over Boost.Asio: UDP, TCP, TLS (OpenSSL) and unix datagram sockets.
// Every operation is bounded by the configured timeout (async operations run on the caller's
// thread until done or the deadline), and interrupt() from another thread ends the current one.
#ifndef NEEDLE_SINKS_SYSLOG_TRANSPORT_H
#define NEEDLE_SINKS_SYSLOG_TRANSPORT_H

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "needle/result.h"
#include "syslog_format.h"

namespace needle::syslog {

struct TlsOptions {
  std::string ca_file;      // empty: the system's default CA paths
  std::string cert_file;    // client certificate chain (PEM), optional
  std::string key_file;     // its private key (PEM)
  std::string server_name;  // checked against the server certificate; empty: the address host
};

/// One connection to the configured endpoint. Not thread-safe except interrupt(): the sink
/// thread (or, for check_connect, the main thread) owns it.
class Connection {
 public:
  Connection(Address addr, TlsOptions tls, std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Loads the TLS context (CA, client certificate); nothing for other transports.
  Result<void> init();
  /// Resolves and connects (and, for TLS, handshakes and verifies the server). Error messages
  /// name the address.
  Result<void> connect();
  bool connected() const;
  /// True for UDP and unix: one message per datagram, no framing.
  bool datagram() const;
  /// Streams: the peer closed or reset the connection (checked without blocking). A syslog
  /// server never sends data, so a hang-up is the only thing to see.
  bool peer_closed() const;
  /// Streams: writes all of `bytes`. Datagrams: sends `bytes` as one datagram.
  Result<void> send(std::string_view bytes);
  /// Drops the connection (the next connect() makes a new one).
  void close();
  /// Any thread: ends the operation in progress (it fails) and every later one.
  void interrupt();
  /// The last send failed because the message is too large for one datagram: retrying is
  /// pointless.
  bool last_error_permanent() const { return permanent_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool permanent_ = false;
};

}  // namespace needle::syslog

#endif  // NEEDLE_SINKS_SYSLOG_TRANSPORT_H
