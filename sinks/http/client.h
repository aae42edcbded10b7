// sink/http: one keep-alive HTTP/1.1 connection (plain or TLS) on Boost.Beast. Every operation
// is bounded by the timeout; interrupt() from another thread ends the current one.
#ifndef NEEDLE_SINKS_HTTP_CLIENT_H
#define NEEDLE_SINKS_HTTP_CLIENT_H

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http_body.h"
#include "needle/result.h"

namespace needle::http {

struct TlsOptions {
  std::string ca_file;    // empty: the system's default CA paths
  std::string cert_file;  // client certificate chain (PEM), optional
  std::string key_file;
};

struct Request {
  std::string content_type;
  bool gzip = false;
  std::vector<std::pair<std::string, std::string>> headers;  // extra, already validated
  std::string body;                                          // encoded (compressed) body
};

struct Response {
  unsigned status = 0;
  std::string retry_after;  // the header, empty when absent
  std::string body;         // the first bytes, for logs
};

/// Owned by one thread (the sink thread, or the main thread for check_connect), except
/// interrupt().
class Client {
 public:
  Client(Url url, TlsOptions tls, std::chrono::milliseconds timeout);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Loads the TLS context; nothing for http://.
  Result<void> init();
  /// Resolves, connects and (https) handshakes and verifies the server.
  Result<void> connect();
  /// Sends one POST and reads the answer, reusing the connection when the server allows. A
  /// reused connection that turns out closed before any answer is redialled once. Errors are
  /// transport failures (no answer); `reconnected` tells whether a new connection was made.
  Result<Response> post(Request& req, bool& reconnected);
  void close();
  /// Any thread: ends the operation in progress and every later one.
  void interrupt();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace needle::http

#endif  // NEEDLE_SINKS_HTTP_CLIENT_H
