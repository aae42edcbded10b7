#include "hash_enricher.h"

#include <pthread.h>

namespace needle::hash {

HashEnricher::HashEnricher(Host host, HashOptions options)
    : Enricher(host),
      options_(std::move(options)),
      f_(host.api()),
      hasher_(options_.max_file_bytes, options_.bytes_per_s, options_.cache_entries,
              options_.proc_root),
      results_(options_.cache_entries),
      c_hashed_(host.counter("files_hashed", "executables read and hashed")),
      c_bytes_(host.counter("bytes_hashed", "bytes read to hash executables")),
      c_too_large_(host.counter("too_large", "executables over max_file_mib, not hashed")),
      c_unreadable_(host.counter("unreadable", "executables that could not be opened or read")),
      c_timeouts_(host.counter("timeouts",
                               "events that went on before their digest was "
                               "ready")),
      c_queue_full_(host.counter("queue_full", "files not queued because the queue was full")) {}

HashEnricher::~HashEnricher() {
  stop();
}

Result<void> HashEnricher::start() {
  thread_ = std::thread([this] { worker(); });
  return {};
}

void HashEnricher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void HashEnricher::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return (queue_.empty() && !busy_) || stopping_; });
}

uint64_t HashEnricher::key_of(std::string_view entity, uint32_t pid,
                              std::string_view exe) const {
  // The digest belongs to this process's program: keyed by its entity and path, so a path
  // that names another file later, or a pid reused, never gets an old digest (the entry's
  // owner is compared too: the key only indexes).
  return enrich::hash64(exe, enrich::hash64(entity, pid)) & options_.key_mask;
}

const HashResult* HashEnricher::cached(uint64_t key, std::string_view entity, uint32_t pid,
                                       std::string_view exe) {
  // Caller holds mu_.
  const Cached* c = results_.find(key);
  return c != nullptr && c->owner.is(entity, pid, exe) ? &c->result : nullptr;
}

HashEnricher::Step HashEnricher::one(Event& ev, Event obj, std::string_view field,
                                     Event fork_parent) {
  if (!obj.valid()) {
    return Step::kNone;
  }
  auto exe = obj.get_str(f_.exe);
  if (!exe || exe->empty() || obj.find(f_.exe_sha256).valid()) {
    return Step::kNone;
  }
  const std::string_view entity = obj.get_str(f_.entity_id).value_or("");
  const auto pid = static_cast<uint32_t>(obj.get_uint(f_.pid).value_or(0));
  const uint64_t key = key_of(entity, pid, *exe);
  // A forked child runs the very file its parent runs: the parent's digest is the child's.
  const bool parents_file = fork_parent.valid() && fork_parent.get_str(f_.exe) == exe;
  const std::string_view parent_entity =
      parents_file ? fork_parent.get_str(f_.entity_id).value_or("") : std::string_view();
  const auto parent_pid =
      parents_file ? static_cast<uint32_t>(fork_parent.get_uint(f_.pid).value_or(0)) : 0u;
  std::lock_guard<std::mutex> lock(mu_);
  const HashResult* r = cached(key, entity, pid, *exe);
  if (r == nullptr && parents_file) {
    r = cached(key_of(parent_entity, parent_pid, *exe), parent_entity, parent_pid, *exe);
  }
  if (r != nullptr) {
    if (r->status == HashStatus::kOk) {
      obj.set(f_.exe_sha256, r->sha256);
      enrich::unmark_incomplete(ev, field);
    } else {
      ev.mark_incomplete(field);  // too large or unreadable: known, not waited for
    }
    return Step::kFilled;
  }
  if (in_flight_.count(key) != 0) {
    return Step::kQueued;
  }
  if (queue_.size() >= HashOptions::kQueueLimit) {
    host().add(c_queue_full_);
    ev.mark_incomplete(field);
    return Step::kFilled;
  }
  in_flight_.insert(key);
  queue_.push_back(Request{key, Owner{std::string(entity), pid, std::string(*exe)}});
  cv_.notify_one();
  return Step::kQueued;
}

needle_rc HashEnricher::enrich(Event& ev, uint64_t& deadline_ns) {
  const bool fork = ev.get_str(f_.type) == std::string_view("process.fork");
  const Step own = one(ev, ev.find(f_.process), "process.exe_sha256",
                       fork ? ev.find(f_.parent) : Event(api(), ev.raw(), NEEDLE_NO_NODE));
  const Step parent =
      one(ev, ev.find(f_.parent), "parent.exe_sha256", Event(api(), ev.raw(), NEEDLE_NO_NODE));
  if (own != Step::kQueued && parent != Step::kQueued) {
    pending_.done(ev);
    return NEEDLE_OK;
  }
  const uint64_t now = host().now_boot_ns();
  const uint64_t deadline = pending_.deadline(ev, now, options_.timeout_ms * 1'000'000ull,
                                              deadline_ns);
  if (now >= deadline) {
    if (own == Step::kQueued) {
      ev.mark_incomplete("process.exe_sha256");
    }
    if (parent == Step::kQueued) {
      ev.mark_incomplete("parent.exe_sha256");
    }
    host().add(c_timeouts_);
    pending_.done(ev);
    return NEEDLE_OK;
  }
  // Listed as incomplete until filled (see unmark_incomplete).
  if (own == Step::kQueued) {
    ev.mark_incomplete("process.exe_sha256");
  }
  if (parent == Step::kQueued) {
    ev.mark_incomplete("parent.exe_sha256");
  }
  deadline_ns = deadline;
  return NEEDLE_PENDING;
}

void HashEnricher::worker() {
  pthread_setname_np(pthread_self(), "needle-hash");   // shown by top -H and in /proc
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    idle_cv_.notify_all();
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      break;
    }
    Request r = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    const uint64_t files = hasher_.files_hashed();
    const uint64_t bytes = hasher_.bytes_hashed();
    HashResult res = hasher_.hash_exe(r.owner.pid, r.owner.exe, stopping_);
    host().add(c_hashed_, hasher_.files_hashed() - files);
    host().add(c_bytes_, hasher_.bytes_hashed() - bytes);
    if (res.status == HashStatus::kTooLarge) {
      host().add(c_too_large_);
    } else if (res.status == HashStatus::kUnreadable) {
      host().add(c_unreadable_);
    }
    lock.lock();
    if (res.status != HashStatus::kStopped) {
      results_.put(r.key, Cached{std::move(r.owner), std::move(res)});
    }
    in_flight_.erase(r.key);
    busy_ = false;
  }
  idle_cv_.notify_all();
}

}  // namespace needle::hash
