// sink/syslog: each event as the MSG of an RFC 5424 (or RFC 3164) message, over UDP, TCP and
// TLS with octet-counting framing, or a unix datagram socket.
#include <unistd.h>

#include <atomic>

#include "needle/plugin.h"
#include "sink_config.h"
#include "syslog_format.h"
#include "transport.h"

namespace {

namespace sl = needle::syslog;

class SyslogSink final : public needle::Sink {
 public:
  SyslogSink(needle::Host host, const needle::Config& cfg) : Sink(host) {
    auto addr = sl::parse_address(cfg.get_string("address"));
    if (!addr) {
      throw needle::ConfigError("address", addr.error().message);
    }
    addr_ = *addr;
    if (cfg.get_string("format") != "json") {
      throw needle::ConfigError("format",
                                "sink syslog sends the event as JSON: format must be "
                                "\"json\", not '" +
                                    cfg.get_string("format") + "'");
    }
    std::string rfc = cfg.get_string("rfc");
    if (rfc != "5424" && rfc != "3164") {
      throw needle::ConfigError("rfc", "rfc must be \"5424\" or \"3164\", not '" + rfc + "'");
    }
    rfc3164_ = rfc == "3164";
    auto fac = sl::parse_facility(cfg.get_string("facility"));
    if (!fac) {
      throw needle::ConfigError("facility", fac.error().message);
    }
    auto sev = sl::parse_severity(cfg.get_string("severity"));
    if (!sev) {
      throw needle::ConfigError("severity", sev.error().message);
    }
    header_.facility = *fac;
    header_.severity = *sev;
    header_.app_name = cfg.get_string("app_name");
    if (header_.app_name.empty()) {
      throw needle::ConfigError("app_name", "app_name must not be empty");
    }
    header_.procid = std::to_string(::getpid());
    const char* hn = api()->host_name();
    header_.fallback_host = hn != nullptr ? hn : "";
    auto sd =
        sl::build_structured_data(cfg.get_string("sd_id"), cfg.get_strings("structured_data"));
    if (!sd) {
      throw needle::ConfigError(sd.error().key, sd.error().message);
    }
    if (rfc3164_ && !sd->empty()) {
      throw needle::ConfigError("structured_data", "RFC 3164 messages carry no structured data");
    }
    header_.structured_data = *sd;
    int64_t timeout = cfg.get_int("timeout_ms");
    if (timeout < 1 || timeout > 600000) {
      throw needle::ConfigError("timeout_ms", "timeout_ms must be 1 to 600000");
    }
    timeout_ = std::chrono::milliseconds(timeout);

    tls_.ca_file = needle::sinks::configured_file(cfg, "ca_file");
    tls_.cert_file = needle::sinks::configured_file(cfg, "cert_file");
    tls_.key_file = needle::sinks::configured_file(cfg, "key_file");
    tls_.server_name = cfg.get_string("tls_server_name");
    if (addr_.transport != sl::Transport::kTls) {
      for (const char* k : {"ca_file", "cert_file", "key_file", "tls_server_name"}) {
        if (!cfg.get_string(k).empty()) {
          throw needle::ConfigError(k, std::string(k) + " applies only to tls:// addresses");
        }
      }
    }
    if (tls_.cert_file.empty() != tls_.key_file.empty()) {
      const char* missing = tls_.cert_file.empty() ? "cert_file" : "key_file";
      throw needle::ConfigError(missing, "cert_file and key_file go together: set both or none");
    }

    sent_ = host.counter("sent", "messages handed to the transport");
    failed_ = host.counter("failed", "messages lost (UDP errors, messages too large)");
    reconnects_ = host.counter("reconnects", "connections (re)established after a failure");
    conn_ = std::make_unique<sl::Connection>(addr_, tls_, timeout_);
  }

  needle::Result<void> start() override {
    auto r = conn_->init();
    if (!r) {
      return r;
    }
    // A peer that is down now is not fatal: the core keeps the events and write() retries.
    auto c = conn_->connect();
    if (!c) {
      host().warn(c.error().message + "; will retry");
      down_ = true;
    } else {
      host().info("connected to " + addr_.text);
    }
    return {};
  }

  needle::Result<void> check_connect() override {
    sl::Connection probe(addr_, tls_, std::min(timeout_, std::chrono::milliseconds(5000)));
    auto r = probe.init();
    if (!r) {
      return r;
    }
    r = probe.connect();
    if (!r) {
      return needle::make_error("unreachable: " + r.error().message);
    }
    return {};
  }

  needle_rc write(std::span<const std::string_view> items) override {
    if (stopping_.load()) {
      host().set_error("syslog " + addr_.text + ": stopped");
      return NEEDLE_ERROR;
    }
    if (items.empty()) {
      return NEEDLE_OK;
    }
    if (!ensure_connected()) {
      return NEEDLE_RETRY;
    }
    return conn_->datagram() ? write_datagrams(items) : write_stream(items);
  }

  void stop() override {
    stopping_ = true;
    conn_->interrupt();
  }

 private:
  void format(std::string_view ev, std::string& out) const {
    if (rfc3164_) {
      sl::format_rfc3164(header_, ev, out);
    } else {
      sl::format_rfc5424(header_, ev, out);
    }
  }

  // Reconnects when there is no connection or the peer hung up. Logs only changes of state.
  bool ensure_connected() {
    if (conn_->connected() && !conn_->peer_closed()) {
      return true;
    }
    if (conn_->connected()) {
      host().warn("syslog " + addr_.text + ": the server closed the connection; reconnecting");
      conn_->close();
    }
    auto r = conn_->connect();
    if (!r) {
      if (!down_) {
        host().warn(r.error().message + "; retrying");
        down_ = true;
      }
      return false;
    }
    host().add(reconnects_);
    if (down_) {
      host().info("reconnected to " + addr_.text);
      down_ = false;
    }
    return true;
  }

  void went_down(const needle::Error& e) {
    if (!down_) {
      host().warn(e.message + "; retrying");
      down_ = true;
    }
  }

  needle_rc write_stream(std::span<const std::string_view> items) {
    buf_.clear();
    for (std::string_view ev : items) {
      msg_.clear();
      format(ev, msg_);
      sl::append_octet_counted(msg_, buf_);
    }
    auto r = conn_->send(buf_);
    if (!r) {
      // Part of the batch may have reached the server: delivery is at least once.
      went_down(r.error());
      conn_->close();
      return NEEDLE_RETRY;
    }
    host().add(sent_, items.size());
    return NEEDLE_OK;
  }

  // UDP: fire and forget, a failed datagram is counted and skipped. Unix: the socket applies
  // back-pressure and a failure (the server went away) retries from the failed message.
  needle_rc write_datagrams(std::span<const std::string_view> items) {
    bool udp = addr_.transport == sl::Transport::kUdp;
    size_t i = udp ? 0 : cursor_.resume_at(items);
    uint64_t sent = 0;
    for (; i < items.size(); ++i) {
      msg_.clear();
      format(items[i], msg_);
      auto r = conn_->send(msg_);
      if (r) {
        ++sent;
        continue;
      }
      if (udp || conn_->last_error_permanent()) {
        host().add(failed_);
        if (failed_logged_++ % 1000 == 0) {
          host().warn(r.error().message + " (message dropped; logged once per 1000)");
        }
        if (!conn_->connected() && !ensure_connected()) {
          host().add(failed_, items.size() - i - 1);
          break;
        }
        continue;
      }
      host().add(sent_, sent);
      cursor_.save(items, i);
      went_down(r.error());
      return NEEDLE_RETRY;
    }
    cursor_.clear();
    host().add(sent_, sent);
    return NEEDLE_OK;
  }

  sl::Address addr_;
  sl::TlsOptions tls_;
  sl::Header header_;
  bool rfc3164_ = false;
  std::chrono::milliseconds timeout_{5000};
  std::unique_ptr<sl::Connection> conn_;
  std::atomic<bool> stopping_{false};
  bool down_ = false;
  uint64_t failed_logged_ = 0;
  needle::sinks::BatchCursor cursor_;
  std::string buf_;
  std::string msg_;
  uint32_t sent_ = 0;
  uint32_t failed_ = 0;
  uint32_t reconnects_ = 0;
};

constexpr needle_config_key kKeys[] = {
    needle::key_string("address", "\"unix:///dev/log\"",
                       "udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT or unix:///PATH"),
    needle::key_string("format", "\"json\"", "json only: the event is the message as JSON"),
    needle::key_string("rfc", "\"5424\"", "message format: \"5424\" or \"3164\""),
    needle::key_string("facility", "\"local0\"", "kern, user, ..., authpriv, local0..local7"),
    needle::key_string("severity", "\"info\"",
                       "emerg, alert, crit, err, warning, notice, info or debug"),
    needle::key_string("app_name", "\"needle\"", "APP-NAME (RFC 5424) or TAG (RFC 3164)"),
    needle::key_strings("structured_data", "[]",
                        "name=value parameters of one SD element (RFC 5424 only)"),
    needle::key_string("sd_id", "\"needle@32473\"", "SD-ID of that element"),
    needle::key_path("ca_file", "\"\"", "tls: CA certificates (PEM); empty: the system's"),
    needle::key_path("cert_file", "\"\"", "tls: client certificate chain (PEM), optional"),
    needle::key_path("key_file", "\"\"", "tls: the client certificate's key (PEM)"),
    needle::key_string("tls_server_name", "\"\"",
                       "tls: name the server certificate must carry; empty: the address host"),
    needle::key_int("timeout_ms", "5000", "bound on each connect, handshake and send"),
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, SyslogSink, "syslog", "0.1.0",
              "Sends events as syslog messages (RFC 5424/3164) over UDP, TCP, TLS or unix", "alpha",
              kKeys)
