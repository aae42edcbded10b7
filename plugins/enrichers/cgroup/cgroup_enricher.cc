#include "cgroup_enricher.h"

#include <pthread.h>

#include <fstream>
#include <sstream>

namespace needle::cgroup {

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// process.entity_id is 16 hex digits: a 64-bit hash of host, tgid and start time.
bool parse_hex64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 16) {
    return false;
  }
  uint64_t v = 0;
  for (char c : s) {
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
  }
  out = v;
  return true;
}

}  // namespace

CgroupEnricher::CgroupEnricher(Host host, CgroupOptions options)
    : Enricher(host),
      options_(std::move(options)),
      f_(host.api()),
      cache_(options_.cache_entries),
      c_lookups_(host.counter("lookups", "cgroup lookups done off the event path")),
      c_unresolved_(host.counter("unresolved",
                                 "lookups that found neither the process nor its "
                                 "cgroup")),
      c_timeouts_(host.counter("timeouts",
                               "events that went on with container fields "
                               "incomplete")),
      c_queue_full_(host.counter("queue_full",
                                 "lookups refused because the lookup queue was "
                                 "full")),
      c_evictions_(host.counter("evictions",
                                "cache entries evicted to stay within "
                                "cache_entries")),
      c_containers_(host.counter("container_events", "events given a container.id")) {}

CgroupEnricher::~CgroupEnricher() {
  stop();
}

Result<void> CgroupEnricher::start() {
  std::string root = options_.cgroup2_root;
  if (options_.detect_root && root.empty()) {
    root = cgroup2_mount_of(read_all(options_.proc_root + "/self/mountinfo"));
  }
  resolver_ =
      std::make_unique<CgroupResolver>(root, options_.containerd_namespaces, options_.proc_root);
  v2_ = resolver_->has_v2();
  root_id_ = resolver_->root_id();
  if (v2_) {
    host().info("cgroup2 at " + root + " (root id " + std::to_string(root_id_) +
                "); lookups by cgroup id");
  } else {
    host().info("no cgroup2 mount: lookups by process from /proc/<pid>/cgroup (v1)");
  }
  thread_ = std::thread([this] { worker(); });
  return {};
}

void CgroupEnricher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void CgroupEnricher::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return (queue_.empty() && !busy_) || stopping_; });
}

bool CgroupEnricher::key_of(const Event& ev, uint64_t cgid, uint64_t& key) const {
  if (v2_) {
    key = cgid;
    return true;
  }
  auto entity = ev.get_str(f_.entity_id);
  return entity && parse_hex64(*entity, key);
}

void CgroupEnricher::set_fields(Event& ev, const CgroupInfo& info) {
  ev.set(f_.container_id, info.id);
  ev.set(f_.container_runtime, runtime_name(info.runtime));
  if (!info.pod_uid.empty()) {
    ev.set(f_.pod_uid, info.pod_uid);
  }
}

void CgroupEnricher::fill(Event& ev, uint64_t key, const CgroupInfo& info) {
  if (info.runtime == ContainerRuntime::kNone) {
    return;
  }
  host().add(c_containers_);
  auto it = templates_.find(key);
  if (it == templates_.end()) {
    if (templates_.size() >= kMaxTemplates) {
      templates_.clear();   // more containers than that take turns: start again
    }
    it = templates_.emplace(key, Template{}).first;
  }
  Template& t = it->second;
  if (t.tmpl && (t.id != info.id || t.runtime != info.runtime || t.pod_uid != info.pod_uid)) {
    t = Template{};   // the cgroup was resolved again, differently
  }
  // A copy replaces the whole object: an event that already has container or pod fields (the
  // container source's) gets the three fields set among them instead.
  const bool merge = ev.find(f_.container).valid() || ev.find(f_.pod).valid();
  if (merge || (!t.tmpl && !t.seen)) {
    t.seen = true;
    set_fields(ev, info);
    return;
  }
  if (!t.tmpl) {
    t.tmpl = TemplateEvent(api(), host().raw());
    if (!t.tmpl) {
      set_fields(ev, info);   // no templates from this host
      return;
    }
    Event te = t.tmpl.view();
    set_fields(te, info);
    t.id = info.id;
    t.runtime = info.runtime;
    t.pod_uid = info.pod_uid;
  }
  ev.copy(f_.container, t.tmpl.find(f_.container));
  if (!info.pod_uid.empty()) {
    ev.copy(f_.pod, t.tmpl.find(f_.pod));
  }
}

bool CgroupEnricher::request(uint64_t key, uint64_t cgid, uint32_t pid) {
  // Caller holds mu_.
  if (in_flight_.count(key) != 0) {
    return true;
  }
  if (queue_.size() >= CgroupOptions::kQueueLimit) {
    return false;
  }
  in_flight_.insert(key);
  queue_.push_back(Request{key, cgid, pid});
  cv_.notify_one();
  return true;
}

needle_rc CgroupEnricher::enrich(Event& ev, uint64_t& deadline_ns) {
  auto cgid = ev.get_uint(f_.cgroup_id);
  if (!cgid) {
    return NEEDLE_OK;
  }
  if (v2_ && *cgid == root_id_) {
    return NEEDLE_OK;  // the root cgroup holds no container
  }
  uint64_t key = 0;
  if (!key_of(ev, *cgid, key)) {
    return NEEDLE_OK;
  }
  uint64_t now = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Entry* e = cache_.find(key)) {
      if (e->info.resolved) {
        fill(ev, key, e->info);
        enrich::unmark_incomplete(ev, f_.incomplete, "container.id");
        pending_.done(ev);
        return NEEDLE_OK;
      }
      now = host().now_boot_ns();   // read only off the common path above
      if (now < e->retry_at_ns) {
        // Looked up recently and not found: do not park every event of a vanished cgroup.
        ev.mark_incomplete("container.id");
        pending_.done(ev);
        return NEEDLE_OK;
      }
    }
  }
  if (now == 0) {
    now = host().now_boot_ns();
  }
  const uint64_t deadline = pending_.deadline(ev, now, options_.timeout_ms * 1'000'000ull,
                                              deadline_ns);
  if (now >= deadline) {
    ev.mark_incomplete("container.id");
    host().add(c_timeouts_);
    pending_.done(ev);
    return NEEDLE_OK;
  }
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto pid = ev.get_uint(f_.pid);
    queued = request(key, *cgid, pid ? static_cast<uint32_t>(*pid) : 0);
  }
  if (!queued) {
    host().add(c_queue_full_);
    ev.mark_incomplete("container.id");
    pending_.done(ev);
    return NEEDLE_OK;
  }
  ev.mark_incomplete("container.id");  // until filled: see unmark_incomplete
  deadline_ns = deadline;
  return NEEDLE_PENDING;
}

void CgroupEnricher::worker() {
  pthread_setname_np(pthread_self(), "needle-cgroup");   // shown by top -H and in /proc
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    idle_cv_.notify_all();
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      break;
    }
    Request r = queue_.front();
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    CgroupInfo info;
    try {
      info = resolver_->resolve(r.cgid, r.pid);
    } catch (const std::exception& e) {
      host().warn(std::string("cgroup lookup failed: ") + e.what());
    }
    host().add(c_lookups_);
    if (!info.resolved) {
      host().add(c_unresolved_);
    }
    lock.lock();
    Entry entry;
    entry.retry_at_ns =
        info.resolved ? 0 : host().now_boot_ns() + options_.retry_unresolved_ms * 1'000'000ull;
    entry.info = std::move(info);
    if (cache_.put(r.key, std::move(entry))) {
      host().add(c_evictions_);
    }
    in_flight_.erase(r.key);
    busy_ = false;
  }
  idle_cv_.notify_all();
}

}  // namespace needle::cgroup
