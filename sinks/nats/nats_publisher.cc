#include "nats_publisher.h"

#include <charconv>

#include "event_head.h"
#include "needle/abi.h"

namespace needle::nats {

namespace {

std::string status_text(natsStatus s) {
  std::string t = natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0' && t.find(last) == std::string::npos) {
    t += " (";
    t += last;
    t += ")";
  }
  return t;
}

bool subject_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

Result<SubjectTemplate> SubjectTemplate::parse(std::string_view text) {
  SubjectTemplate t;
  size_t open = text.find('{');
  if (open == std::string_view::npos) {
    t.prefix_ = std::string(text);
  } else {
    size_t close = text.find('}', open);
    if (close == std::string_view::npos) {
      return make_error("'" + std::string(text) + "': unbalanced '{'");
    }
    std::string_view name = text.substr(open + 1, close - open - 1);
    if (name != "type") {
      return make_error("'" + std::string(text) + "': unknown placeholder {" + std::string(name) +
                        "} (only {type} is known)");
    }
    t.prefix_ = std::string(text.substr(0, open));
    t.suffix_ = std::string(text.substr(close + 1));
    t.has_type_ = true;
  }
  for (const std::string* part : {&t.prefix_, &t.suffix_}) {
    for (char c : *part) {
      if (!subject_char(c)) {
        return make_error("'" + std::string(text) +
                          "': a subject takes letters, digits, '.', "
                          "'_', '-' and one {type}, not '" +
                          std::string(1, c) + "'");
      }
    }
  }
  std::string whole = t.prefix_ + (t.has_type_ ? "x" : "") + t.suffix_;
  if (whole.empty() || whole.front() == '.' || whole.back() == '.' ||
      whole.find("..") != std::string::npos) {
    return make_error("'" + std::string(text) + "': empty subject token");
  }
  return t;
}

void SubjectTemplate::expand(std::string_view type, std::string& out) const {
  out.append(prefix_);
  if (has_type_) {
    if (type.empty()) {
      type = "unknown";
    }
    for (char c : type) {
      out.push_back(subject_char(c) ? c : '_');
    }
  }
  out.append(suffix_);
}

std::string SubjectTemplate::stream_filter() const {
  if (!has_type_) {
    return prefix_ + suffix_;
  }
  // Everything from the first token that holds {type} on is a wildcard.
  size_t dot = prefix_.rfind('.');
  std::string head = dot == std::string::npos ? std::string() : prefix_.substr(0, dot + 1);
  return head + ">";
}

Result<void> check_server_url(std::string_view url) {
  std::string u(url);
  std::string_view rest = url;
  if (rest.substr(0, 7) == "nats://") {
    rest.remove_prefix(7);
  } else if (rest.substr(0, 6) == "tls://") {
    rest.remove_prefix(6);
  } else {
    return make_error("'" + u + "': expected nats://HOST:PORT or tls://HOST:PORT");
  }
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    rest.remove_prefix(at + 1);
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error("'" + u + "': expected HOST:PORT after the scheme");
  }
  std::string_view port = rest.substr(colon + 1);
  unsigned v = 0;
  auto r = std::from_chars(port.data(), port.data() + port.size(), v);
  if (port.empty() || r.ec != std::errc() || r.ptr != port.data() + port.size() || v == 0 ||
      v > 65535) {
    return make_error("'" + u + "': the port must be a number from 1 to 65535");
  }
  return {};
}

Publisher::Publisher(Settings settings, Logger log)
    : s_(std::move(settings)), log_(std::move(log)), shared_(new Shared) {
  shared_->log = log_;
  shared_->servers = servers_text();
}

Publisher::~Publisher() {
  close();
  if (js_ != nullptr) {
    jsCtx_Destroy(js_);
  }
  if (nc_ != nullptr) {
    natsConnection_Destroy(nc_);
  }
  if (opts_ != nullptr) {
    natsOptions_Destroy(opts_);
  }
}

std::string Publisher::servers_text() const {
  std::string out;
  for (const auto& s : s_.servers) {
    out += (out.empty() ? "" : ",") + s;
  }
  return out;
}

void Publisher::on_pub_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* sh = static_cast<Shared*>(closure);
  if (pa != nullptr) {
    sh->acked.fetch_add(1, std::memory_order_relaxed);
    if (pa->Duplicate) {
      sh->duplicates.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (pae != nullptr) {
    sh->errors.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(sh->mu);
    if (sh->first_error.empty()) {
      sh->first_error = pae->ErrText != nullptr && *pae->ErrText != '\0'
                            ? std::string(pae->ErrText)
                            : std::string(natsStatus_GetText(pae->Err));
      if (pae->ErrCode != 0) {
        sh->first_error += " (JetStream error " + std::to_string(int(pae->ErrCode)) + ")";
      }
    }
  }
  natsMsg_Destroy(msg);
}

void Publisher::on_disconnected(natsConnection*, void* closure) {
  auto* sh = static_cast<Shared*>(closure);
  sh->disconnects.fetch_add(1, std::memory_order_relaxed);
  if (!sh->muted.load()) {
    sh->log(NEEDLE_LOG_WARN, "nats: disconnected; reconnecting to one of " + sh->servers);
  }
}

void Publisher::on_reconnected(natsConnection* nc, void* closure) {
  auto* sh = static_cast<Shared*>(closure);
  sh->reconnects.fetch_add(1, std::memory_order_relaxed);
  char url[256] = {};
  natsConnection_GetConnectedUrl(nc, url, sizeof url);
  if (!sh->muted.load()) {
    sh->log(NEEDLE_LOG_INFO, std::string("nats: connected to ") + url);
  }
}

Result<void> Publisher::connect(bool keep_trying) {
  if (nc_ != nullptr) {
    return {};
  }
  if (opts_ != nullptr) {
    natsOptions_Destroy(opts_);
    opts_ = nullptr;
  }
  natsStatus s = natsOptions_Create(&opts_);
  std::vector<const char*> urls;
  for (const auto& u : s_.servers) {
    urls.push_back(u.c_str());
  }
  auto set = [&](natsStatus st, const char* what) {
    if (s == NATS_OK && st != NATS_OK) {
      s = st;
      log_(NEEDLE_LOG_ERROR, std::string("nats: ") + what + ": " + status_text(st));
    }
  };
  if (s != NATS_OK) {
    return make_error("nats: cannot create options: " + status_text(s));
  }
  set(natsOptions_SetServers(opts_, urls.data(), static_cast<int>(urls.size())), "servers");
  set(natsOptions_SetName(opts_, s_.name.c_str()), "name");
  set(natsOptions_SetTimeout(opts_, s_.connect_timeout.count()), "timeout");
  set(natsOptions_SetMaxReconnect(opts_, -1), "max reconnect");
  set(natsOptions_SetReconnectWait(opts_, s_.reconnect_wait.count()), "reconnect wait");
  set(natsOptions_SetDisconnectedCB(opts_, &Publisher::on_disconnected, shared_), "callback");
  set(natsOptions_SetReconnectedCB(opts_, &Publisher::on_reconnected, shared_), "callback");
  if (keep_trying) {
    set(natsOptions_SetRetryOnFailedConnect(opts_, true, &Publisher::on_reconnected, shared_),
        "retry on failed connect");
  }
  if (!s_.creds_file.empty()) {
    set(natsOptions_SetUserCredentialsFromFiles(opts_, s_.creds_file.c_str(), nullptr),
        "creds_file");
  }
  if (!s_.token.empty()) {
    set(natsOptions_SetToken(opts_, s_.token.c_str()), "token");
  }
  if (!s_.user.empty()) {
    set(natsOptions_SetUserInfo(opts_, s_.user.c_str(), s_.password.c_str()), "user");
  }
  if (s_.tls) {
    set(natsOptions_SetSecure(opts_, true), "tls");
  }
  if (!s_.ca_file.empty()) {
    set(natsOptions_LoadCATrustedCertificates(opts_, s_.ca_file.c_str()), "ca_file");
  }
  if (!s_.cert_file.empty()) {
    set(natsOptions_LoadCertificatesChain(opts_, s_.cert_file.c_str(), s_.key_file.c_str()),
        "cert_file/key_file");
  }
  if (s != NATS_OK) {
    return make_error("nats: bad connection options: " + status_text(s));
  }
  s = natsConnection_Connect(&nc_, opts_);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    nc_ = nullptr;
    return make_error("nats: cannot connect to any of " + servers_text() + ": " + status_text(s));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = s_.ack_timeout.count();
  jo.PublishAsync.MaxPending = s_.max_pending;
  jo.PublishAsync.AckHandler = &Publisher::on_pub_ack;
  jo.PublishAsync.AckHandlerClosure = shared_;
  jo.PublishAsync.StallWait = s_.ack_timeout.count();
  natsStatus js = natsConnection_JetStream(&js_, nc_, &jo);
  if (js != NATS_OK) {
    return make_error("nats: cannot create a JetStream context: " + status_text(js));
  }
  if (s == NATS_NOT_YET_CONNECTED) {
    return make_error("nats: no server of " + servers_text() +
                      " answers yet; still trying in the background");
  }
  char url[256] = {};
  natsConnection_GetConnectedUrl(nc_, url, sizeof url);
  log_(NEEDLE_LOG_INFO, std::string("nats: connected to ") + url);
  return {};
}

Result<void> Publisher::ensure_stream() {
  if (stream_ready_ || s_.stream.empty()) {
    stream_ready_ = true;
    return {};
  }
  if (js_ == nullptr) {
    return make_error("nats: not connected");
  }
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, s_.stream.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    stream_ready_ = true;
    return {};
  }
  if (s != NATS_NOT_FOUND) {
    return make_error("nats: cannot look up stream " + s_.stream + ": " + status_text(s));
  }
  if (!s_.create_stream) {
    return make_error("nats: stream " + s_.stream +
                      " does not exist (create it, or set create_stream = true)");
  }
  std::vector<std::string> subjects = s_.stream_subjects;
  if (subjects.empty()) {
    subjects.push_back(s_.subject.stream_filter());
  }
  std::vector<const char*> subj;
  for (const auto& x : subjects) {
    subj.push_back(x.c_str());
  }
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = s_.stream.c_str();
  cfg.Subjects = subj.data();
  cfg.SubjectsLen = static_cast<int>(subj.size());
  cfg.Storage = js_FileStorage;
  cfg.Replicas = s_.stream_replicas;
  jerr = static_cast<jsErrCode>(0);
  s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
  if (s != NATS_OK) {
    return make_error("nats: cannot create stream " + s_.stream + ": " + status_text(s) +
                      (jerr != 0 ? " (JetStream error " + std::to_string(int(jerr)) + ")" : ""));
  }
  jsStreamInfo_Destroy(si);
  log_(NEEDLE_LOG_INFO, "nats: created stream " + s_.stream + " (" + subjects.front() +
                            (subjects.size() > 1 ? ", ..." : "") + ", " +
                            std::to_string(s_.stream_replicas) + " replicas)");
  stream_ready_ = true;
  return {};
}

Result<void> Publisher::publish(std::span<const std::string_view> events) {
  if (js_ == nullptr) {
    auto c = connect(true);
    if (js_ == nullptr) {
      return c;
    }
  }
  if (!stream_ready_) {
    auto r = ensure_stream();
    if (!r) {
      return r;
    }
  }
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->first_error.clear();
  }
  uint64_t errors_before = shared_->errors.load();
  jsPubOptions po;
  jsPubOptions_Init(&po);
  if (!s_.stream.empty()) {
    po.ExpectStream = s_.stream.c_str();
  }
  std::string failure;
  sinks::EventHead head;
  for (std::string_view ev : events) {
    if (s_.json) {
      (void)sinks::json_head(ev, head);
    } else {
      (void)sinks::msgpack_head(ev, head);
    }
    subject_.clear();
    s_.subject.expand(head.type, subject_);
    po.MsgId = nullptr;
    if (!head.id.empty()) {
      msg_id_.assign(s_.msg_id_prefix).append(head.id);
      po.MsgId = msg_id_.c_str();
    }
    natsStatus s =
        js_PublishAsync(js_, subject_.c_str(), ev.data(), static_cast<int>(ev.size()), &po);
    if (s != NATS_OK) {
      failure = "publish on " + subject_ + " failed: " + status_text(s);
      break;
    }
  }
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = s_.ack_timeout.count();
  natsStatus s = js_PublishAsyncComplete(js_, &wait);
  if (s != NATS_OK) {
    int missing = 0;
    natsMsgList pending{};
    if (js_PublishAsyncGetPendingList(&pending, js_) == NATS_OK) {
      missing = pending.Count;
      natsMsgList_Destroy(&pending);
    }
    ++ack_timeouts_;
    return make_error("nats: no publish ack for " + std::to_string(missing) + " of " +
                      std::to_string(events.size()) + " events within " +
                      std::to_string(s_.ack_timeout.count()) + " ms (" + status_text(s) +
                      "; servers " + servers_text() + ")");
  }
  if (!failure.empty()) {
    return make_error("nats: " + failure);
  }
  uint64_t refused = shared_->errors.load() - errors_before;
  if (refused > 0) {
    std::lock_guard<std::mutex> lock(shared_->mu);
    return make_error("nats: JetStream refused " + std::to_string(refused) + " of " +
                      std::to_string(events.size()) + " events: " + shared_->first_error);
  }
  return {};
}

void Publisher::close() {
  shared_->muted = true;
  if (nc_ != nullptr) {
    natsConnection_Close(nc_);
  }
}

PublisherStats Publisher::stats() const {
  PublisherStats st;
  st.acked = shared_->acked.load();
  st.duplicates = shared_->duplicates.load();
  st.publish_errors = shared_->errors.load();
  st.ack_timeouts = ack_timeouts_;
  st.disconnects = shared_->disconnects.load();
  st.reconnects = shared_->reconnects.load();
  return st;
}

}  // namespace needle::nats
