#include "client.h"

#include <openssl/ssl.h>
#include <poll.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include "blocking_io.h"
#include "tls_client.h"

namespace needle::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {
constexpr size_t kMaxResponseBody = 1 << 20;
constexpr size_t kLoggedBody = 200;
}  // namespace

struct Client::Impl : sinks::BlockingIo {
  Url url;
  TlsOptions tls;
  std::chrono::milliseconds timeout;
  std::optional<asio::ssl::context> ssl_ctx;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  uint64_t requests_on_connection = 0;

  Impl(Url u, TlsOptions t, std::chrono::milliseconds to)
      : url(std::move(u)), tls(std::move(t)), timeout(to) {}

  beast::tcp_stream* lowest() {
    if (secure) {
      return &beast::get_lowest_layer(*secure);
    }
    return plain.get();
  }

  void shut() {
    if (beast::tcp_stream* t = lowest()) {
      error_code ec;
      t->socket().close(ec);
    }
  }

  void reset() {
    shut();
    plain.reset();
    secure.reset();
    buffer.clear();
    requests_on_connection = 0;
  }

  // Runs until the operation sets `done`. tcp_stream's own timers bound connect, read and
  // write; this deadline bounds the rest (name resolution) and ends everything on interrupt.
  bool run(const bool& done) {
    return BlockingIo::run(done, timeout + std::chrono::milliseconds(100), [this] { shut(); });
  }

  Error fail(const std::string& what) const { return make_error(url.text + ": " + what); }
  Error fail_run(const std::string& what) const { return fail(run_failure(what)); }

  bool peer_closed() {
    beast::tcp_stream* t = lowest();
    if (t == nullptr || !t->socket().is_open()) {
      return true;
    }
    pollfd p{t->socket().native_handle(), POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) {
      return false;
    }
    // An idle HTTP/1.1 connection has nothing to read: anything there is a close (or a TLS
    // alert before one), so the connection is not reused.
    return true;
  }

  Result<void> connect() {
    reset();
    if (interrupted.load()) {
      return fail("interrupted");
    }
    tcp::resolver::results_type results;
    std::string error;
    if (!resolve(url.host, url.port, timeout + std::chrono::milliseconds(100), [this] { shut(); },
                 results, error)) {
      return fail(error);
    }
    if (url.tls) {
      secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *ssl_ctx);
    } else {
      plain = std::make_unique<beast::tcp_stream>(ioc);
    }
    beast::tcp_stream& t = *lowest();
    t.expires_after(timeout);
    error_code ec;
    bool done = false;
    t.async_connect(results, [&](const error_code& e, const tcp::endpoint&) {
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
    t.socket().set_option(tcp::no_delay(true), ec);
    if (!url.tls) {
      return {};
    }
    error_code ip_ec;
    (void)asio::ip::make_address(url.host, ip_ec);
    if (ip_ec) {  // SNI takes host names only
      SSL_set_tlsext_host_name(secure->native_handle(), url.host.c_str());
    }
    secure->set_verify_mode(asio::ssl::verify_peer);
    secure->set_verify_callback(asio::ssl::host_name_verification(url.host));
    t.expires_after(timeout);
    done = false;
    secure->async_handshake(asio::ssl::stream_base::client, [&](const error_code& e) {
      ec = e;
      done = true;
    });
    if (!run(done)) {
      reset();
      return fail_run("in the TLS handshake");
    }
    if (ec) {
      std::string why = ec.message();
      long verify = SSL_get_verify_result(secure->native_handle());
      if (verify != X509_V_OK) {
        why += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
      }
      reset();
      return fail("TLS handshake failed: " + why);
    }
    return {};
  }

  template <typename Stream>
  Result<Response> exchange(Stream& s, bhttp::request<bhttp::string_body>& r, bool& answered) {
    answered = false;
    beast::tcp_stream& t = *lowest();
    error_code ec;
    bool done = false;
    t.expires_after(timeout);
    bhttp::async_write(s, r, [&](const error_code& e, size_t) {
      ec = e;
      done = true;
    });
    if (!run(done)) {
      reset();
      return fail_run("sending the request");
    }
    if (ec) {
      reset();
      return fail("cannot send the request: " + ec.message());
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    t.expires_after(timeout);
    done = false;
    size_t got = 0;
    bhttp::async_read(s, buffer, parser, [&](const error_code& e, size_t n) {
      ec = e;
      got = n;
      done = true;
    });
    if (!run(done)) {
      answered = got > 0;
      reset();
      return fail_run("waiting for the answer");
    }
    if (ec) {
      answered = got > 0 || parser.got_some();
      reset();
      return fail("no answer: " + ec.message());
    }
    answered = true;
    auto& res = parser.get();
    Response out;
    out.status = res.result_int();
    out.retry_after = std::string(res[bhttp::field::retry_after]);
    out.body = res.body().substr(0, kLoggedBody);
    ++requests_on_connection;
    if (!res.keep_alive()) {
      reset();
    }
    return out;
  }

  Result<Response> send(bhttp::request<bhttp::string_body>& r, bool& answered) {
    if (secure) {
      return exchange(*secure, r, answered);
    }
    return exchange(*plain, r, answered);
  }
};

Client::Client(Url url, TlsOptions tls, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(url), std::move(tls), timeout)) {}

Client::~Client() {
  impl_->reset();
}

Result<void> Client::init() {
  if (!impl_->url.tls) {
    return {};
  }
  try {
    impl_->ssl_ctx.emplace(asio::ssl::context::tls_client);
    const TlsOptions& t = impl_->tls;
    needle::sinks::configure_tls_client(*impl_->ssl_ctx, t.ca_file, t.cert_file, t.key_file);
  } catch (const boost::system::system_error& e) {
    return make_error(impl_->url.text + ": cannot load the TLS files (ca_file '" +
                      impl_->tls.ca_file + "', cert_file '" + impl_->tls.cert_file +
                      "', key_file '" + impl_->tls.key_file + "'): " + e.what());
  }
  return {};
}

Result<void> Client::connect() {
  return impl_->connect();
}

Result<Response> Client::post(Request& req, bool& reconnected) {
  Impl& m = *impl_;
  reconnected = false;
  bhttp::request<bhttp::string_body> r{bhttp::verb::post, m.url.target, 11};
  r.set(bhttp::field::host, m.url.host_header);
  r.set(bhttp::field::user_agent, "needle/0.1");
  r.set(bhttp::field::content_type, req.content_type);
  if (req.gzip) {
    r.set(bhttp::field::content_encoding, "gzip");
  }
  for (const auto& [name, value] : req.headers) {
    r.set(name, value);
  }
  r.keep_alive(true);
  r.body() = std::move(req.body);
  r.prepare_payload();

  Result<Response> out = m.fail("not sent");
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (m.lowest() != nullptr && m.peer_closed()) {
      m.reset();
    }
    if (m.lowest() == nullptr) {
      auto c = m.connect();
      if (!c) {
        out = c.error();
        break;
      }
      reconnected = true;
    }
    bool reused = m.requests_on_connection > 0;
    bool answered = false;
    out = m.send(r, answered);
    // A kept-alive connection the server closed just as we reused it: dial again, once.
    // Anything else (a fresh connection failing, a partial answer) goes back to the caller.
    if (out.ok() || !reused || answered || m.interrupted.load()) {
      break;
    }
  }
  req.body = std::move(r.body());  // hand the buffer back for reuse
  return out;
}

void Client::close() {
  impl_->reset();
}

void Client::interrupt() {
  impl_->interrupted = true;
  asio::post(impl_->ioc, [m = impl_.get()] { m->shut(); });
}

}  // namespace needle::http
