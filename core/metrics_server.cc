#include "metrics_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>

#include <spdlog/spdlog.h>

namespace needle::core {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Metrics& metrics) : stream_(std::move(socket)), metrics_(metrics) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buf_, req_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (!ec) {
                         self->respond();
                       }
                     });
  }

 private:
  void respond() {
    res_.version(req_.version());
    res_.keep_alive(false);
    if (req_.method() != http::verb::get) {
      res_.result(http::status::method_not_allowed);
      res_.body() = "only GET\n";
    } else if (req_.target() != "/metrics") {
      res_.result(http::status::not_found);
      res_.body() = "see /metrics\n";
    } else {
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "text/plain; version=0.0.4");
      res_.body() = metrics_.render();
    }
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, std::size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  Metrics& metrics_;
};

}  // namespace

MetricsServer::MetricsServer(asio::io_context& io, Metrics& metrics)
    : io_(io), metrics_(metrics), acceptor_(io) {}

std::string MetricsServer::listen(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  auto addr = asio::ip::make_address(host.empty() ? "127.0.0.1" : host, ec);
  if (ec) {
    return "not an IP address: " + host;
  }
  unsigned long port = 0;
  try {
    port = std::stoul(host_port.substr(colon + 1));
  } catch (const std::exception&) {
    return "not a port number";
  }
  if (port > 65535) {
    return "not a port number";
  }
  tcp::endpoint ep(addr, static_cast<uint16_t>(port));
  acceptor_.open(ep.protocol(), ec);
  if (!ec) {
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    acceptor_.bind(ep, ec);
  }
  if (!ec) {
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return ec.message();
  }
  if (!addr.is_loopback()) {
    spdlog::warn("metrics_listen {} is not a loopback address: metrics are readable from the "
                 "network",
                 host_port);
  }
  spdlog::info("metrics on http://{}/metrics", host_port);
  accept();
  return {};
}

uint16_t MetricsServer::port() const {
  beast::error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void MetricsServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      return;   // closed
    }
    std::make_shared<Session>(std::move(socket), metrics_)->start();
    accept();
  });
}

void MetricsServer::close() {
  beast::error_code ec;
  acceptor_.close(ec);
}

}  // namespace needle::core
