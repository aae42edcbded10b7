// The Prometheus endpoint: GET /metrics over HTTP/1.1 (Boost.Beast) on the main io_context.
#ifndef NEEDLE_CORE_METRICS_SERVER_H
#define NEEDLE_CORE_METRICS_SERVER_H

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "metrics.h"

namespace needle::core {

class MetricsServer {
 public:
  MetricsServer(boost::asio::io_context& io, Metrics& metrics);
  /// Binds HOST:PORT; returns an error text or empty.
  std::string listen(const std::string& host_port);
  void close();
  uint16_t port() const;

 private:
  void accept();
  boost::asio::io_context& io_;
  Metrics& metrics_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace needle::core

#endif  // NEEDLE_CORE_METRICS_SERVER_H
