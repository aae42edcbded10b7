#include "transport.h"

#include <openssl/ssl.h>
#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/local/datagram_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <optional>

#include "blocking_io.h"
#include "tls_client.h"

namespace needle::syslog {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using boost::system::error_code;

struct Connection::Impl : sinks::BlockingIo {
  Address addr;
  TlsOptions tls;
  std::chrono::milliseconds timeout;
  std::optional<asio::ssl::context> ssl_ctx;
  std::unique_ptr<tcp::socket> tcp_sock;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_sock;
  std::unique_ptr<udp::socket> udp_sock;
  std::unique_ptr<asio::local::datagram_protocol::socket> unix_sock;

  Impl(Address a, TlsOptions t, std::chrono::milliseconds to)
      : addr(std::move(a)), tls(std::move(t)), timeout(to) {}

  // Closes the file descriptors; pending operations complete with operation_aborted.
  void shut() {
    error_code ec;
    if (tcp_sock) {
      tcp_sock->close(ec);
    }
    if (tls_sock) {
      tls_sock->lowest_layer().close(ec);
    }
    if (udp_sock) {
      udp_sock->close(ec);
    }
    if (unix_sock) {
      unix_sock->close(ec);
    }
  }

  void reset() {
    shut();
    tcp_sock.reset();
    tls_sock.reset();
    udp_sock.reset();
    unix_sock.reset();
  }

  // Runs the queued operation until it sets `done` or the timeout passes; on timeout the
  // sockets are closed so the operation ends. False on timeout or interrupt.
  bool run(const bool& done) { return BlockingIo::run(done, timeout, [this] { shut(); }); }

  Error fail(const std::string& what) const {
    return make_error("syslog " + addr.text + ": " + what);
  }
  Error fail_run(const std::string& what) const { return fail(run_failure(what)); }

  int stream_fd() const {
    if (tcp_sock && tcp_sock->is_open()) {
      return tcp_sock->native_handle();
    }
    if (tls_sock && tls_sock->lowest_layer().is_open()) {
      return tls_sock->lowest_layer().native_handle();
    }
    return -1;
  }

  Result<tcp::resolver::results_type> resolve() {
    tcp::resolver::results_type results;
    std::string error;
    if (!BlockingIo::resolve(addr.host, addr.port, timeout, [this] { shut(); }, results, error)) {
      return fail(error);
    }
    return results;
  }

  Result<void> connect_stream() {
    auto results = resolve();
    if (!results) {
      return results.error();
    }
    tcp::socket* sock = nullptr;
    if (addr.transport == Transport::kTls) {
      tls_sock = std::make_unique<asio::ssl::stream<tcp::socket>>(ioc, *ssl_ctx);
      sock = &tls_sock->next_layer();
    } else {
      tcp_sock = std::make_unique<tcp::socket>(ioc);
      sock = tcp_sock.get();
    }
    error_code ec;
    bool done = false;
    asio::async_connect(*sock, *results, [&](const error_code& e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    if (!run(done)) {
      reset();
      return fail_run("connecting");
    }
    if (ec) {
      reset();
      return fail("cannot connect: " + ec.message());
    }
    sock->set_option(tcp::no_delay(true), ec);
    if (addr.transport != Transport::kTls) {
      return {};
    }
    const std::string& name = tls.server_name.empty() ? addr.host : tls.server_name;
    error_code ip_ec;
    (void)asio::ip::make_address(name, ip_ec);
    if (ip_ec) {  // SNI takes host names only
      SSL_set_tlsext_host_name(tls_sock->native_handle(), name.c_str());
    }
    tls_sock->set_verify_mode(asio::ssl::verify_peer);
    tls_sock->set_verify_callback(asio::ssl::host_name_verification(name));
    done = false;
    tls_sock->async_handshake(asio::ssl::stream_base::client, [&](const error_code& e) {
      ec = e;
      done = true;
    });
    if (!run(done)) {
      reset();
      return fail_run("in the TLS handshake");
    }
    if (ec) {
      std::string why = ec.message();
      long verify = SSL_get_verify_result(tls_sock->native_handle());
      if (verify != X509_V_OK) {
        why += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) +
               ", expected name '" + name + "')";
      }
      reset();
      return fail("TLS handshake failed: " + why);
    }
    return {};
  }

  Result<void> connect_datagram() {
    error_code ec;
    if (addr.transport == Transport::kUnix) {
      unix_sock = std::make_unique<asio::local::datagram_protocol::socket>(ioc);
      unix_sock->open(asio::local::datagram_protocol(), ec);
      if (!ec) {
        unix_sock->connect(asio::local::datagram_protocol::endpoint(addr.path), ec);
      }
      if (ec) {
        reset();
        return fail("cannot connect: " + ec.message());
      }
      return {};
    }
    auto results = resolve();
    if (!results) {
      return results.error();
    }
    if (results->empty()) {
      return fail("no address for " + addr.host);
    }
    udp::endpoint ep(results->begin()->endpoint().address(), addr.port);
    udp_sock = std::make_unique<udp::socket>(ioc);
    udp_sock->open(ep.protocol(), ec);
    if (!ec) {
      udp_sock->connect(ep, ec);  // no packet: only fixes the peer
    }
    if (ec) {
      reset();
      return fail("cannot set up UDP: " + ec.message());
    }
    return {};
  }
};

Connection::Connection(Address addr, TlsOptions tls, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(addr), std::move(tls), timeout)) {}

Connection::~Connection() {
  impl_->reset();
}

Result<void> Connection::init() {
  if (impl_->addr.transport != Transport::kTls) {
    return {};
  }
  try {
    impl_->ssl_ctx.emplace(asio::ssl::context::tls_client);
    const TlsOptions& t = impl_->tls;
    needle::sinks::configure_tls_client(*impl_->ssl_ctx, t.ca_file, t.cert_file, t.key_file);
  } catch (const boost::system::system_error& e) {
    return make_error("syslog " + impl_->addr.text + ": cannot load the TLS files (ca_file '" +
                      impl_->tls.ca_file + "', cert_file '" + impl_->tls.cert_file +
                      "', key_file '" + impl_->tls.key_file + "'): " + e.what());
  }
  return {};
}

Result<void> Connection::connect() {
  permanent_ = false;
  impl_->reset();
  if (impl_->interrupted.load()) {
    return impl_->fail("interrupted");
  }
  return datagram() ? impl_->connect_datagram() : impl_->connect_stream();
}

bool Connection::connected() const {
  return impl_->tcp_sock || impl_->tls_sock || impl_->udp_sock || impl_->unix_sock;
}

bool Connection::datagram() const {
  return impl_->addr.transport == Transport::kUdp || impl_->addr.transport == Transport::kUnix;
}

bool Connection::peer_closed() const {
  int fd = impl_->stream_fd();
  if (fd < 0) {
    return !datagram();
  }
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) {
    return false;
  }
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

Result<void> Connection::send(std::string_view bytes) {
  permanent_ = false;
  error_code ec;
  bool done = false;
  auto on_done = [&](const error_code& e, size_t) {
    ec = e;
    done = true;
  };
  asio::const_buffer buf(bytes.data(), bytes.size());
  Impl& m = *impl_;
  if (m.tls_sock) {
    asio::async_write(*m.tls_sock, buf, on_done);
  } else if (m.tcp_sock) {
    asio::async_write(*m.tcp_sock, buf, on_done);
  } else if (m.udp_sock) {
    m.udp_sock->async_send(buf, on_done);
  } else if (m.unix_sock) {
    m.unix_sock->async_send(buf, on_done);
  } else {
    return m.fail("not connected");
  }
  if (!m.run(done)) {
    m.reset();
    return m.fail_run("sending");
  }
  if (ec) {
    if (ec == asio::error::message_size || ec == asio::error::no_buffer_space) {
      permanent_ = true;  // the socket stays usable; this message can never fit
      return m.fail("message of " + std::to_string(bytes.size()) +
                    " bytes does not fit in one datagram: " + ec.message());
    }
    m.reset();
    return m.fail("send failed: " + ec.message());
  }
  return {};
}

void Connection::close() {
  impl_->reset();
}

void Connection::interrupt() {
  impl_->interrupted = true;
  asio::post(impl_->ioc, [m = impl_.get()] { m->shut(); });
}

}  // namespace needle::syslog
