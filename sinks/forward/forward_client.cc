#include "forward_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <random>

#include "event_head.h"
#include "needle/abi.h"
#include "needle/config.h"

namespace needle::forward {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

using Done = std::function<void(const error_code&)>;

std::string ms_text(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    std::random_device rd;
    for (char& c : raw) {
      c = static_cast<char>(rd());
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool is_helo(const msgpack::object& o) {
  return o.type == msgpack::type::ARRAY && o.via.array.size >= 1 &&
         o.via.array.ptr[0].type == msgpack::type::STR &&
         std::string_view(o.via.array.ptr[0].via.str.ptr, o.via.array.ptr[0].via.str.size) ==
             "HELO";
}

}  // namespace

ForwardClient::ForwardClient(Settings settings, Logger log)
    : s_(std::move(settings)), log_(std::move(log)) {
  std::random_device rd;
  seed_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  if (s_.address.scheme != Scheme::kTls) {
    return;
  }
  namespace ssl = asio::ssl;
  ssl_ctx_.emplace(ssl::context::tls_client);
  ssl_ctx_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  auto load = [&](const char* key, const std::string& file, auto&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      throw ConfigError(key, "cannot load " + file + ": " + e.what());
    }
  };
  if (!s_.tls_verify) {
    ssl_ctx_->set_verify_mode(ssl::verify_none);
  } else {
    ssl_ctx_->set_verify_mode(ssl::verify_peer);
    if (!s_.ca_file.empty()) {
      load("ca_file", s_.ca_file, [&] { ssl_ctx_->load_verify_file(s_.ca_file); });
    } else {
      ssl_ctx_->set_default_verify_paths();
    }
  }
  if (!s_.cert_file.empty()) {
    load("cert_file", s_.cert_file, [&] { ssl_ctx_->use_certificate_chain_file(s_.cert_file); });
    load("key_file", s_.key_file,
         [&] { ssl_ctx_->use_private_key_file(s_.key_file, ssl::context::pem); });
  }
}

ForwardClient::~ForwardClient() {
  close();
}

int ForwardClient::native_fd() const {
  if (tls_) {
    return const_cast<asio::ssl::stream<Socket>&>(*tls_).lowest_layer().native_handle();
  }
  return plain_ ? const_cast<Socket&>(*plain_).native_handle() : -1;
}

template <typename Start>
error_code ForwardClient::run(Start&& start, Clock::time_point deadline, size_t* n) {
  std::optional<error_code> result;
  size_t bytes = 0;
  io_.restart();
  start([&result, &bytes](const error_code& ec, size_t k) {
    result = ec;
    bytes = k;
  });
  while (!result) {
    if (stopping_ || Clock::now() >= deadline) {
      // Closing the socket completes every pending operation with operation_aborted.
      error_code ignored;
      if (tls_) {
        tls_->lowest_layer().close(ignored);
      }
      if (plain_) {
        plain_->close(ignored);
      }
      io_.restart();
      io_.run();
      connected_ = false;
      return stopping_ ? asio::error::operation_aborted : asio::error::timed_out;
    }
    if (io_.stopped()) {
      io_.restart();
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    io_.run_one_for(std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(50)));
  }
  if (n != nullptr) {
    *n = bytes;
  }
  return *result;
}

void ForwardClient::close() {
  error_code ignored;
  if (tls_) {
    tls_->lowest_layer().close(ignored);
    tls_.reset();
  }
  if (plain_) {
    plain_->close(ignored);
    plain_.reset();
  }
  connected_ = false;
  unpacker_ = msgpack::unpacker();
}

Result<void> ForwardClient::connect() {
  if (connected_) {
    return {};
  }
  return connect_once();
}

Result<void> ForwardClient::connect_once() {
  close();
  auto deadline = Clock::now() + s_.connect_timeout;
  std::vector<asio::generic::stream_protocol::endpoint> endpoints;
  if (s_.address.scheme == Scheme::kUnix) {
    endpoints.emplace_back(asio::local::stream_protocol::endpoint(s_.address.path));
  } else {
    error_code ec;
    auto ip = asio::ip::make_address(s_.address.host, ec);
    if (!ec) {
      endpoints.emplace_back(asio::ip::tcp::endpoint(ip, s_.address.port));
    } else {
      asio::ip::tcp::resolver resolver(io_);
      auto results = resolver.resolve(s_.address.host, std::to_string(s_.address.port), ec);
      if (ec) {
        return make_error("cannot resolve " + s_.address.host + " (" + where() +
                          "): " + ec.message());
      }
      for (const auto& r : results) {
        endpoints.emplace_back(r.endpoint());
      }
    }
  }
  error_code ec = asio::error::host_not_found;
  for (const auto& ep : endpoints) {
    if (ssl_ctx_) {
      tls_ = std::make_unique<asio::ssl::stream<Socket>>(io_, *ssl_ctx_);
    } else {
      plain_ = std::make_unique<Socket>(io_);
    }
    Socket& sock = tls_ ? tls_->next_layer() : *plain_;
    ec =
        run([&](auto done) { sock.async_connect(ep, [done](const error_code& e) { done(e, 0); }); },
            deadline);
    if (!ec) {
      break;
    }
    close();
  }
  if (ec) {
    close();
    return make_error("cannot connect to " + where() + ": " +
                      (ec == asio::error::timed_out
                           ? "no answer within " + ms_text(s_.connect_timeout)
                           : ec.message()));
  }
  if (s_.address.scheme != Scheme::kUnix) {
    int one = 1;
    (void)::setsockopt(native_fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (tls_) {
    error_code not_ip;
    (void)asio::ip::make_address(s_.address.host, not_ip);
    if (not_ip) {  // SNI carries names only
      SSL_set_tlsext_host_name(tls_->native_handle(), s_.address.host.c_str());
    }
    if (s_.tls_verify) {
      tls_->set_verify_callback(asio::ssl::host_name_verification(s_.address.host));
    }
    ec = run(
        [&](auto done) {
          tls_->async_handshake(asio::ssl::stream_base::client,
                                [done](const error_code& e) { done(e, 0); });
        },
        deadline);
    if (ec) {
      close();
      return make_error("TLS handshake with " + where() + " failed: " + ec.message());
    }
  }
  connected_ = true;
  if (!s_.shared_key.empty()) {
    auto h = handshake();
    if (!h) {
      close();
      return h;
    }
  }
  ++stats_.connects;
  return {};
}

Result<void> ForwardClient::handshake() {
  auto deadline = Clock::now() + s_.connect_timeout;
  auto o = read_object(deadline);
  if (!o) {
    return make_error("shared-key handshake with " + where() + ": no HELO (" + o.error().message +
                      "); is shared_key set on the server?");
  }
  auto helo = parse_helo(*o);
  if (!helo) {
    return make_error("shared-key handshake with " + where() + ": " + helo.error().message);
  }
  if (!helo->auth_salt.empty() && s_.username.empty()) {
    log_(NEEDLE_LOG_WARN, where() + " asks for a username and password; none configured");
  }
  std::string salt = random_hex(16);
  PingParams p{s_.self_hostname, salt, s_.shared_key, s_.username, s_.password};
  auto w = write_all(make_ping(*helo, p), deadline);
  if (!w) {
    return make_error("shared-key handshake with " + where() + ": " + w.error().message);
  }
  o = read_object(deadline);
  if (!o) {
    return make_error("shared-key handshake with " + where() + ": no PONG (" + o.error().message +
                      ")");
  }
  auto pong = check_pong(*o, *helo, p);
  if (!pong) {
    return make_error("shared-key handshake with " + where() + ": " + pong.error().message);
  }
  return {};
}

Result<void> ForwardClient::write_all(const std::string& data, Clock::time_point deadline) {
  auto start = [&](auto done) {
    auto h = [done](const error_code& e, size_t k) { done(e, k); };
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(data), h);
    } else {
      asio::async_write(*plain_, asio::buffer(data), h);
    }
  };
  error_code ec = run(start, deadline);
  if (ec) {
    return make_error(ec == asio::error::timed_out ? "the peer did not take the data in time"
                                                   : ec.message());
  }
  return {};
}

Result<msgpack::object> ForwardClient::read_object(Clock::time_point deadline) {
  while (true) {
    try {
      if (unpacker_.next(last_)) {
        return last_.get();
      }
    } catch (const std::exception& e) {
      return make_error(std::string("malformed reply: ") + e.what());
    }
    unpacker_.reserve_buffer(16384);
    size_t n = 0;
    auto start = [&](auto done) {
      auto buf = asio::buffer(unpacker_.buffer(), unpacker_.buffer_capacity());
      auto h = [done](const error_code& e, size_t k) { done(e, k); };
      if (tls_) {
        tls_->async_read_some(buf, h);
      } else {
        plain_->async_read_some(buf, h);
      }
    };
    error_code ec = run(start, deadline, &n);
    if (ec) {
      if (ec == asio::error::timed_out) {
        return make_error("timed out");
      }
      if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
        return make_error("the peer closed the connection");
      }
      return make_error(ec.message());
    }
    unpacker_.buffer_consumed(n);
  }
}

bool ForwardClient::peer_closed() const {
  int fd = native_fd();
  if (fd < 0) {
    return true;
  }
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void ForwardClient::build_packed(std::span<const std::string_view> events) {
  groups_used_ = 0;
  sinks::EventHead head;
  for (std::string_view ev : events) {
    (void)sinks::msgpack_head(ev, head);
    int64_t sec = 0;
    uint32_t ns = 0;
    if (!parse_rfc3339(head.time, sec, ns)) {
      auto now = std::chrono::system_clock::now().time_since_epoch();
      sec = std::chrono::duration_cast<std::chrono::seconds>(now).count();
      ns = static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() %
                                 1000000000);
    }
    tag_.clear();
    s_.tag.expand(head.type, tag_);
    Group* g = nullptr;
    for (size_t i = 0; i < groups_used_; ++i) {
      if (groups_[i].tag == tag_) {
        g = &groups_[i];
        break;
      }
    }
    if (g == nullptr) {
      if (groups_used_ == groups_.size()) {
        groups_.emplace_back();
      }
      g = &groups_[groups_used_++];
      g->tag = tag_;
      g->entries.clear();
      g->count = 0;
      g->first_id = head.id;
    }
    append_entry(g->entries, static_cast<uint32_t>(sec), ns, ev);
    g->last_id = head.id;
    ++g->count;
  }
}

Result<void> ForwardClient::wait_acks(std::vector<std::string>& chunks,
                                      Clock::time_point deadline) {
  size_t total = chunks.size();
  while (!chunks.empty()) {
    auto o = read_object(deadline);
    if (!o) {
      if (o.error().message == "timed out") {
        ++stats_.ack_timeouts;
      } else {
        ++stats_.connection_losses;
      }
      close();
      return make_error("no ack for " + std::to_string(chunks.size()) + " of " +
                        std::to_string(total) + " chunks from " + where() + " (" +
                        o.error().message +
                        ", ack_timeout_ms = " + std::to_string(s_.ack_timeout.count()) + ")");
    }
    if (is_helo(*o)) {
      close();
      return make_error(where() + " asks for the shared-key handshake (HELO): set shared_key");
    }
    auto a = parse_ack(*o);
    if (!a) {
      continue;  // not an ack: nothing else is defined from server to client here
    }
    for (auto it = chunks.begin(); it != chunks.end(); ++it) {
      if (*it == *a) {
        chunks.erase(it);
        ++stats_.chunks_acked;
        break;
      }
    }
  }
  return {};
}

Result<void> ForwardClient::send(std::span<const std::string_view> events) {
  if (stopping_) {
    return make_error("stopping");
  }
  if (connected_ && peer_closed()) {
    ++stats_.connection_losses;
    log_(NEEDLE_LOG_INFO, where() + " closed the connection; reconnecting");
    close();
  }
  if (!connected_) {
    auto c = connect_once();
    if (!c) {
      return c;
    }
    log_(NEEDLE_LOG_INFO, "connected to " + where());
  }
  auto deadline = Clock::now() + s_.ack_timeout;
  out_.clear();
  chunks_.clear();
  if (s_.mode == Mode::kStream) {
    for (std::string_view ev : events) {
      append_stream_frame(out_, ev);
    }
  } else {
    build_packed(events);
    bool compressed = s_.mode == Mode::kCompressed;
    std::string key;
    for (size_t i = 0; i < groups_used_; ++i) {
      const Group& g = groups_[i];
      std::string_view body = g.entries;
      if (compressed) {
        zbuf_.clear();
        auto z = gzip_append(g.entries, zbuf_, s_.gzip_level);
        if (!z) {
          return z;
        }
        body = zbuf_;
      }
      std::string chunk;
      if (s_.ack) {
        key.assign(g.first_id).append("|").append(g.last_id).append("|").append(g.tag);
        key.append("|").append(std::to_string(g.count));
        chunk = chunk_id(seed_, key);
        chunks_.push_back(chunk);
      }
      append_packed_forward(out_, g.tag, body, g.count, chunk, compressed);
    }
  }
  auto w = write_all(out_, deadline);
  if (!w) {
    ++stats_.connection_losses;
    close();
    return make_error("sending to " + where() + " failed: " + w.error().message);
  }
  if (!chunks_.empty()) {
    return wait_acks(chunks_, deadline);
  }
  return {};
}

}  // namespace needle::forward
