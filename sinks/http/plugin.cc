// sink/http: the core's batches as HTTP POSTs (NDJSON or msgpack, optionally gzip) over a
// keep-alive connection, with retries that honour 429/503 Retry-After.
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <ctime>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include "client.h"
#include "http_body.h"
#include "needle/plugin.h"
#include "sink_config.h"

namespace {

namespace nh = needle::http;
using std::chrono::milliseconds;

class HttpSink final : public needle::Sink {
 public:
  HttpSink(needle::Host host, const needle::Config& cfg) : Sink(host) {
    auto url = nh::parse_url(cfg.get_string("url"));
    if (!url) {
      throw needle::ConfigError("url", url.error().message);
    }
    url_ = *url;
    std::string format = cfg.get_string("format");
    if (format == "json") {
      format_ = nh::BodyFormat::kNdjson;
      content_type_ = "application/x-ndjson";
    } else if (format == "msgpack") {
      format_ = nh::BodyFormat::kMsgpack;
      content_type_ = "application/msgpack";
    } else {
      throw needle::ConfigError(
          "format", "format must be json (NDJSON body) or msgpack, not '" + format + "'");
    }
    gzip_ = cfg.get_bool("gzip");
    for (const std::string& line : cfg.get_strings("headers")) {
      auto h = nh::parse_header(line);
      if (!h) {
        throw needle::ConfigError("headers", h.error().message);
      }
      headers_.push_back(*h);
    }
    token_file_ = needle::sinks::configured_file(cfg, "bearer_token_file");
    if (!token_file_.empty()) {
      for (const auto& [name, value] : headers_) {
        std::string lname = name;
        for (char& c : lname) {
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (lname == "authorization") {
          throw needle::ConfigError("headers",
                                    "an Authorization header and bearer_token_file "
                                    "exclude each other");
        }
      }
    }
    tls_.ca_file = needle::sinks::configured_file(cfg, "ca_file");
    tls_.cert_file = needle::sinks::configured_file(cfg, "cert_file");
    tls_.key_file = needle::sinks::configured_file(cfg, "key_file");
    if (!url_.tls) {
      for (const char* k : {"ca_file", "cert_file", "key_file"}) {
        if (!cfg.get_string(k).empty()) {
          throw needle::ConfigError(k, std::string(k) + " applies only to https:// urls");
        }
      }
    }
    if (tls_.cert_file.empty() != tls_.key_file.empty()) {
      const char* missing = tls_.cert_file.empty() ? "cert_file" : "key_file";
      throw needle::ConfigError(missing, "cert_file and key_file go together: set both or none");
    }
    timeout_ = milliseconds(int_in(cfg, "timeout_ms", 1, 600000));
    batch_events_ = static_cast<size_t>(int_in(cfg, "batch_events", 1, 1000000));
    batch_bytes_ = static_cast<size_t>(int_in(cfg, "batch_bytes", 1024, int64_t{1} << 30));
    retry_max_ = milliseconds(int_in(cfg, "retry_max_ms", 1, 3600000));

    sent_ = host.counter("sent", "events the server accepted (2xx)");
    failed_ = host.counter("failed", "events refused for good (4xx other than 408/429, 3xx)");
    retries_ = host.counter("retries", "requests answered 408/429/5xx or not answered");
    reconnects_ = host.counter("reconnects", "connections made (keep-alive reuse saves them)");
    requests_ = host.counter("requests", "POSTs that got an answer");
    client_ = std::make_unique<nh::Client>(url_, tls_, timeout_);
  }

  needle::Result<void> start() override {
    auto r = client_->init();
    if (!r) {
      return r;
    }
    if (!token_file_.empty()) {
      auto t = read_token();
      if (!t) {
        return t.error();
      }
      token_ = *t;
    }
    return {};
  }

  needle::Result<void> check_connect() override {
    if (!token_file_.empty()) {
      auto t = read_token();
      if (!t) {
        return t.error();
      }
    }
    nh::Client probe(url_, tls_, std::min(timeout_, milliseconds(5000)));
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
      host().set_error(url_.text + ": stopped");
      return NEEDLE_ERROR;
    }
    if (items.empty()) {
      return NEEDLE_OK;
    }
    if (reload_token_.exchange(false)) {
      reload_token();
    }
    size_t refused = 0;
    std::string refusal;
    size_t begin = cursor_.resume_at(items);
    while (begin < items.size()) {
      size_t end = nh::next_chunk(items, begin, batch_events_, batch_bytes_, format_);
      auto chunk = items.subspan(begin, end - begin);
      Outcome o = post(chunk);
      if (o == Outcome::kAccepted) {
        host().add(sent_, chunk.size());
        begin = end;
        continue;
      }
      if (o == Outcome::kRefused) {
        host().add(failed_, chunk.size());
        refused += chunk.size();
        refusal = last_error_;
        begin = end;
        continue;
      }
      cursor_.save(items, begin);
      host().set_error(last_error_);
      return NEEDLE_RETRY;
    }
    cursor_.clear();
    if (refused > 0) {
      host().set_error(refusal + " (" + std::to_string(refused) + " of " +
                       std::to_string(items.size()) + " events refused)");
      return NEEDLE_ERROR;
    }
    return NEEDLE_OK;
  }

  void reopen() override { reload_token_ = true; }

  void stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    client_->interrupt();
  }

 private:
  enum class Outcome { kAccepted, kRefused, kRetry };

  static int64_t int_in(const needle::Config& cfg, const char* key, int64_t lo, int64_t hi) {
    int64_t v = cfg.get_int(key);
    if (v < lo || v > hi) {
      throw needle::ConfigError(
          key, std::string(key) + " must be " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    return v;
  }

  needle::Result<std::string> read_token() const {
    std::ifstream in(token_file_);
    if (!in) {
      return needle::make_error("cannot read bearer_token_file '" + token_file_ + "'");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string t = ss.str();
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) {
      t.pop_back();
    }
    if (t.empty()) {
      return needle::make_error("bearer_token_file '" + token_file_ + "' is empty");
    }
    for (char c : t) {
      if (c < 33 || c > 126) {
        return needle::make_error("bearer_token_file '" + token_file_ +
                                  "' holds characters a header cannot carry");
      }
    }
    return t;
  }

  // Re-reads the token (SIGHUP, or a 401 that a rotated token may explain). True if it changed.
  bool reload_token() {
    if (token_file_.empty()) {
      return false;
    }
    auto t = read_token();
    if (!t) {
      host().warn(t.error().message + "; keeping the previous token");
      return false;
    }
    bool changed = *t != token_;
    token_ = *t;
    if (changed) {
      host().info("bearer token reloaded from " + token_file_);
    }
    return changed;
  }

  // Sleeps unless stop() comes first. False when stopped.
  bool pause(milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    return !wake_.wait_for(lock, d, [&] { return stopping_.load(); });
  }

  void went_down(const std::string& why) {
    last_error_ = why;
    if (!down_) {
      host().warn(why + "; retrying");
      down_ = true;
    }
  }

  Outcome post(std::span<const std::string_view> chunk) {
    body_.clear();
    nh::build_body(chunk, format_, body_);
    req_.content_type = content_type_;
    req_.gzip = gzip_;
    req_.headers = headers_;
    if (!token_.empty()) {
      req_.headers.emplace_back("Authorization", "Bearer " + token_);
    }
    if (gzip_) {
      if (!nh::gzip(body_, req_.body, 1)) {
        last_error_ = url_.text + ": gzip failed";
        return Outcome::kRefused;
      }
    } else {
      req_.body.swap(body_);
    }
    bool reconnected = false;
    auto r = client_->post(req_, reconnected);
    if (reconnected) {
      host().add(reconnects_);
    }
    if (!r) {
      host().add(retries_);
      went_down(r.error().message);
      pause(jitter());
      return Outcome::kRetry;
    }
    host().add(requests_);
    unsigned status = r->status;
    if (status >= 200 && status <= 299) {
      failures_ = 0;
      if (down_) {
        host().info(url_.text + ": delivering again");
        down_ = false;
      }
      return Outcome::kAccepted;
    }
    std::string why =
        url_.text + ": HTTP " + std::to_string(status) + (r->body.empty() ? "" : " " + r->body);
    if (status == 401 && reload_token()) {
      host().add(retries_);
      last_error_ = why;
      return Outcome::kRetry;  // a rotated token: try again with the new one
    }
    if (!nh::status_is_transient(status)) {
      last_error_ = why;
      if (refused_logged_++ % 100 == 0) {
        host().error(why + " (events dropped; logged once per 100)");
      }
      return Outcome::kRefused;
    }
    host().add(retries_);
    went_down(why);
    milliseconds wait = nh::parse_retry_after(r->retry_after, std::time(nullptr));
    pause(wait.count() >= 0 ? std::min(wait, retry_max_) : jitter());
    return Outcome::kRetry;
  }

  // The sink's part of the backoff: a random share of an exponential step (capped like the
  // core's), added to the core's own (100 ms doubling to 5 s), so that many sensors do not
  // retry in step and a backend that comes back is found within about 10 s.
  milliseconds jitter() {
    ++failures_;
    std::uniform_real_distribution<double> u(0.0, 1.0);
    return nh::backoff(failures_ - 1, milliseconds(100), std::min(retry_max_, kJitterCap), u(rng_));
  }

  static constexpr milliseconds kJitterCap{5000};

  nh::Url url_;
  nh::TlsOptions tls_;
  nh::BodyFormat format_ = nh::BodyFormat::kNdjson;
  std::string content_type_;
  bool gzip_ = false;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string token_file_;
  std::string token_;
  std::atomic<bool> reload_token_{false};
  milliseconds timeout_{10000};
  milliseconds retry_max_{30000};
  size_t batch_events_ = 500;
  size_t batch_bytes_ = 1 << 20;
  std::unique_ptr<nh::Client> client_;
  nh::Request req_;
  std::string body_;
  needle::sinks::BatchCursor cursor_;
  std::mt19937_64 rng_{std::random_device{}()};
  unsigned failures_ = 0;
  bool down_ = false;
  uint64_t refused_logged_ = 0;
  std::string last_error_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  uint32_t sent_ = 0;
  uint32_t failed_ = 0;
  uint32_t retries_ = 0;
  uint32_t reconnects_ = 0;
  uint32_t requests_ = 0;
};

constexpr needle_config_key kKeys[] = {
    needle::key_required(NEEDLE_CFG_STRING, "url", "http://HOST[:PORT]/PATH or https://..."),
    needle::key_string("format", "\"json\"", "json (NDJSON body) or msgpack (maps back to back)"),
    needle::key_bool("gzip", "false", "compress bodies (Content-Encoding: gzip)"),
    needle::key_strings("headers", "[]", "extra request headers, \"Name: value\""),
    needle::key_path("bearer_token_file", "\"\"",
                     "file whose content is sent as 'Authorization: Bearer'; re-read on SIGHUP"),
    needle::key_path("ca_file", "\"\"", "https: CA certificates (PEM); empty: the system's"),
    needle::key_path("cert_file", "\"\"", "https: client certificate chain (PEM), optional"),
    needle::key_path("key_file", "\"\"", "https: the client certificate's key (PEM)"),
    needle::key_int("timeout_ms", "10000", "bound on connect, handshake, send and answer"),
    needle::key_int("batch_events", "500", "most events per POST"),
    needle::key_int("batch_bytes", "1048576", "most body bytes per POST (before gzip)"),
    needle::key_int("retry_max_ms", "30000", "cap on a Retry-After wait (and the backoff step)"),
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, HttpSink, "http", "0.1.0",
              "POSTs batches of events (NDJSON or msgpack, gzip) to an HTTP(S) endpoint", "alpha",
              kKeys)
