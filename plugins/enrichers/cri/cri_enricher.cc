#include "cri_enricher.h"

#include <pthread.h>

#include <algorithm>

#include "cri_format.h"

namespace needle::cri {

namespace {

// The fields this enricher fills, listed under `incomplete` while they are missing.
constexpr std::string_view kFields[] = {"container.name", "container.image",
                                        "container.image_digest", "pod.name", "pod.namespace"};

bool is_cri_runtime(std::string_view runtime) {
  return runtime == "containerd" || runtime == "cri-o";
}

}  // namespace

CriEnricher::CriEnricher(Host host, CriOptions options)
    : Enricher(host),
      options_(std::move(options)),
      cache_(options_.cache_entries),
      c_lookups_(host.counter("lookups", "containers looked up in the CRI runtime")),
      c_unknown_(host.counter("unknown_containers", "containers the runtime did not know")),
      c_errors_(host.counter("lookup_errors", "lookups that failed or timed out")),
      c_timeouts_(host.counter("timeouts",
                               "events that went on before their lookup "
                               "answered")),
      c_runtime_down_(host.counter("runtime_down",
                                   "events that went on at once because no "
                                   "runtime answered")),
      c_reconnects_(host.counter("connects", "times a runtime was (re)connected")),
      c_queue_full_(host.counter("queue_full", "lookups refused because the queue was full")) {
  for (const std::string& e : options_.endpoints) {
    clients_.push_back(
        std::make_unique<CriClient>(e, std::chrono::milliseconds(options_.rpc_timeout_ms)));
  }
}

CriEnricher::~CriEnricher() {
  stop();
}

Result<void> CriEnricher::start() {
  thread_ = std::thread([this] { worker(); });
  return {};
}

void CriEnricher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

Result<void> CriEnricher::check_connect() {
  std::string failures;
  for (auto& c : clients_) {
    std::string what;
    std::string error;
    if (c->version(what, error) == CallStatus::kOk) {
      return {};
    }
    failures += (failures.empty() ? "" : "; ") + c->endpoint() + ": " + error;
  }
  return make_error("no CRI runtime answers: " + failures);
}

void CriEnricher::fill(Event& ev, const Entry& e) {
  const ContainerInfo& i = e.info;
  if (!i.name.empty()) {
    ev.set("container.name", i.name);
  }
  if (!i.image.empty()) {
    ev.set("container.image", i.image);
  }
  if (!i.image_digest.empty()) {
    ev.set("container.image_digest", i.image_digest);
  }
  if (!i.labels.empty()) {
    Event labels = ev.object("container.labels");
    for (const auto& [k, v] : i.labels) {
      labels.set(dedot(k), v);
    }
  }
  if (i.pod_found) {
    ev.set("pod.uid", i.pod_uid);
    ev.set("pod.name", i.pod_name);
    ev.set("pod.namespace", i.pod_namespace);
  }
}

void CriEnricher::mark_missing(Event& ev) {
  for (std::string_view f : kFields) {
    ev.mark_incomplete(f);
  }
}

void CriEnricher::unmark_missing(Event& ev) {
  if (!ev.find("incomplete").valid()) {
    return;
  }
  for (std::string_view f : kFields) {
    enrich::unmark_incomplete(ev, f);
  }
}

needle_rc CriEnricher::enrich(Event& ev, uint64_t& deadline_ns) {
  // Every event asks; most (host processes) stop here.
  static const Field container_id(host().api(), "container.id");
  auto id = ev.get_str(container_id);
  if (!id || id->empty()) {
    return NEEDLE_OK;
  }
  // container.create (the container source) prefetches, so the first exec inside a new
  // container finds its pod already cached.
  const bool create = ev.get_str("type") == std::string_view("container.create");
  if (!create && !is_cri_runtime(ev.get_str("container.runtime").value_or(""))) {
    return NEEDLE_OK;  // docker and podman containers have no CRI runtime
  }
  const uint64_t key = enrich::fnv1a(*id);
  const uint64_t now = host().now_boot_ns();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Entry* e = cache_.find(key); e != nullptr && e->id == *id) {
      if (e->known) {
        fill(ev, *e);
        unmark_missing(ev);
        pending_.done(ev);
        return NEEDLE_OK;
      }
      if (now < e->expires_ns) {
        unmark_missing(ev);  // the runtime said it has no such container: nothing is missing
        pending_.done(ev);
        return NEEDLE_OK;
      }
    }
  }
  if (state_.load() == State::kDown) {
    mark_missing(ev);
    host().add(c_runtime_down_);
    pending_.done(ev);
    return NEEDLE_OK;
  }
  const uint64_t deadline = pending_.deadline(ev, now, options_.timeout_ms * 1'000'000ull,
                                              deadline_ns);
  if (now >= deadline) {
    mark_missing(ev);
    host().add(c_timeouts_);
    pending_.done(ev);
    return NEEDLE_OK;
  }
  bool queued = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_.count(key) == 0) {
      if (queue_.size() >= CriOptions::kQueueLimit) {
        queued = false;
      } else {
        in_flight_.insert(key);
        queue_.push_back(Request{key, std::string(*id)});
        cv_.notify_one();
      }
    }
  }
  mark_missing(ev);  // until filled: an event sent on without another call says what it lacks
  if (!queued) {
    host().add(c_queue_full_);
    pending_.done(ev);
    return NEEDLE_OK;
  }
  deadline_ns = deadline;
  return NEEDLE_PENDING;
}

void CriEnricher::wait_for(uint64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

bool CriEnricher::probe() {
  std::string errors;
  for (auto& c : clients_) {
    std::string what;
    std::string error;
    if (c->version(what, error) == CallStatus::kOk) {
      active_ = c.get();
      host().info("connected to " + c->endpoint() + ": " + what);
      host().add(c_reconnects_);
      return true;
    }
    errors += (errors.empty() ? "" : "; ") + c->endpoint() + ": " + error;
  }
  if (state_.load() != State::kDown) {
    host().warn("no CRI runtime answers (" + errors +
                "); events go on without pod metadata, retrying with backoff");
  }
  return false;
}

void CriEnricher::worker() {
  pthread_setname_np(pthread_self(), "needle-cri");   // shown by top -H and in /proc
  uint64_t backoff = CriOptions::kMinBackoffMs;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        return;
      }
    }
    if (state_.load() != State::kUp) {
      if (probe()) {
        state_ = State::kUp;
        backoff = CriOptions::kMinBackoffMs;
      } else {
        state_ = State::kDown;
        {
          // Queued lookups cannot be answered: their events go on when called again.
          std::lock_guard<std::mutex> lock(mu_);
          queue_.clear();
          in_flight_.clear();
        }
        wait_for(backoff);
        backoff = std::min(backoff * 2, CriOptions::kMaxBackoffMs);
        continue;
      }
    }
    Request r;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        return;
      }
      r = std::move(queue_.front());
      queue_.pop_front();
    }
    ContainerInfo info;
    std::string error;
    CallStatus st = active_->lookup(r.id, info, error);
    host().add(c_lookups_);
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.erase(r.key);
    switch (st) {
      case CallStatus::kOk: {
        Entry e;
        e.id = r.id;
        e.known = true;
        e.info = std::move(info);
        cache_.put(r.key, std::move(e));
        break;
      }
      case CallStatus::kNotFound: {
        host().add(c_unknown_);
        Entry e;
        e.id = r.id;
        e.expires_ns = host().now_boot_ns() + options_.unknown_ttl_ms * 1'000'000ull;
        cache_.put(r.key, std::move(e));
        break;
      }
      case CallStatus::kUnavailable:
        host().add(c_errors_);
        host().warn("CRI runtime at " + active_->endpoint() + " went away: " + error);
        state_ = State::kDown;
        break;
      case CallStatus::kTimeout:
      case CallStatus::kError:
        host().add(c_errors_);
        host().debug("CRI lookup of " + r.id + " failed: " + error);
        break;
    }
  }
}

}  // namespace needle::cri
