#include "runtime.h"

#include <bpf/libbpf.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "caps.h"
#include "clock.h"
#include "config.h"
#include "encode.h"
#include "host.h"
#include "metrics.h"
#include "metrics_server.h"
#include "needle/bpf/record.h"
#include "plugin_loader.h"
#include "probes.h"
#include "queues.h"
#include "spill.h"

namespace needle::core {

namespace {

using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

constexpr size_t kPipelineQueue = 4096;
constexpr size_t kPipelineBatch = 256;   // events the pipeline thread takes per wakeup
// Events waiting for an enricher (hash, cri) at most; beyond it they go on with the missing
// fields under `incomplete`. 16384 let a storm hold 160 MiB of parked events, more than the
// unit's MemoryMax.
constexpr size_t kMaxParked = 4096;
constexpr size_t kSinkBatch = 512;
// How often the ring thread reads the kernel's drop counters (ring_loop): the latency of a
// kernel needle.gap event.
constexpr auto kDropCheckInterval = std::chrono::milliseconds(20);

// Names the calling thread for top -H, perf and /proc/PID/task/*/comm (at most 15 bytes).
void name_thread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

void sd_notify_ready() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') {
    return;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) {
    close(fd);
    return;
  }
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') {
    addr.sun_path[0] = '\0';   // abstract socket
  }
  const char msg[] = "READY=1";
  sendto(fd, msg, sizeof msg - 1, MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
         static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  close(fd);
}

int64_t rss_field(const char* name) {
  std::ifstream in("/proc/self/status");
  std::string line;
  size_t n = std::strlen(name);
  while (std::getline(in, line)) {
    if (line.compare(0, n, name) == 0 && line.size() > n && line[n] == ':') {
      return std::stoll(line.substr(n + 1)) * 1024;
    }
  }
  return 0;
}

struct SourceState {
  Instance* inst = nullptr;
  std::atomic<uint64_t>* decoded = nullptr;
  std::atomic<uint64_t>* decode_errors = nullptr;
  std::atomic<uint64_t>* kernel_dropped = nullptr;
  std::vector<std::pair<std::string, std::atomic<uint64_t>*>> by_type;   // ring thread only
  uint64_t last_kernel_drops = 0;   // ring thread only
  uint64_t unreported_decode_errors = 0;
};

struct SinkState {
  Instance* inst = nullptr;
  uint32_t format = NEEDLE_FORMAT_JSON;
  EventFilter filter;
  std::unique_ptr<SinkQueue> queue;
  std::thread thread;
  std::atomic<bool> done{false};
  std::atomic<bool> abandon{false};
  std::atomic<uint64_t>* queued = nullptr;
  std::atomic<uint64_t>* sent = nullptr;
  std::atomic<uint64_t>* failed = nullptr;
  std::atomic<uint64_t>* retried = nullptr;
  std::atomic<uint64_t>* dropped = nullptr;
};

struct Parked {
  Event* ev;
  size_t enricher;
  uint64_t deadline_ns;
};

class Runtime final : public EventIntake {
 public:
  Runtime(Config cfg, const Options& opts) : cfg_(std::move(cfg)), opts_(opts) {}
  ~Runtime() override = default;

  int run();
  int check();

  Event* acquire_event() override { return pool_.acquire(); }
  void submit_event(needle_host* from, Event* ev) override;
  void release_event(Event* ev) override { pool_.release(ev); }

 private:
  void create_instances();
  void destroy_instances();
  void prepare(Event* ev, std::string_view source, uint64_t boot_ns);
  void decode_record(SourceState& src, std::span<const std::byte> rec, bool defer_wake = false);
  static int on_ring_record(void* ctx, void* data, size_t size);
  void ring_loop();
  void check_kernel_drops();
  void emit_gap(const char* stage, const std::string& source, const std::string& sink,
                uint64_t count);
  void pipeline_loop();
  void handle(Event* ev);
  bool run_enrichers(Event* ev, size_t from, uint64_t& deadline, size_t& at);
  void service_parked(bool force);
  void route(Event* ev);
  void sink_loop(SinkState* s);
  bool write_batch(SinkState* s, const std::string_view* batch, size_t n);
  int serve(Clock::time_point t0);
  void abort_startup();
  void shutdown();
  void print_summary(bool clean);
  bool wait_until(const std::function<bool()>& pred, Clock::time_point deadline);

  Config cfg_;
  Options opts_;
  Metrics metrics_;
  EventPool pool_;
  std::unique_ptr<PluginLoader> loader_;
  std::deque<Instance> instances_;
  std::vector<SourceState> sources_;
  std::vector<Instance*> enrichers_;
  std::vector<std::unique_ptr<SinkState>> sinks_;
  std::vector<const Entry*> spill_entries_;
  std::unique_ptr<ProbeManager> probes_;

  std::unique_ptr<EventQueue> pipeline_in_;
  std::thread ring_thread_;
  std::thread pipeline_thread_;
  std::atomic<bool> ring_stop_{false};
  std::atomic<bool> ring_done_{false};
  std::atomic<bool> pipeline_done_{false};
  std::atomic<uint64_t> seq_{0};
  std::mutex decode_mu_;
  uint64_t start_ns_ = 0;
  bool sinks_json_ = false;
  bool sinks_msgpack_ = false;

  std::unordered_map<uint64_t, std::deque<Parked>> parked_;
  size_t parked_total_ = 0;

  std::atomic<uint64_t>* pipeline_dropped_ = nullptr;
  std::atomic<uint64_t>* enrich_timeouts_ = nullptr;
  std::atomic<uint64_t>* enrich_errors_ = nullptr;
  std::atomic<uint64_t>* emitted_ = nullptr;
  std::atomic<uint64_t>* snapshot_records_ = nullptr;
};

void Runtime::create_instances() {
  loader_ = std::make_unique<PluginLoader>(cfg_.needle.plugin_dirs, opts_.insecure_plugin_dirs);
  for (const Entry& e : cfg_.entries) {
    instances_.emplace_back();
    Instance& inst = instances_.back();
    inst.kind = e.kind;
    inst.id = e.id;
    inst.plugin = e.plugin;
    inst.metrics = &metrics_;
    inst.intake = this;
    inst.state_dir = cfg_.needle.state_dir + "/" + e.kind + "-" + e.id;
    try {
      inst.lp = &loader_->load(e.kind, e.plugin);
    } catch (const PluginError& err) {
      throw PluginError(cfg_.file + ":" + std::to_string(e.line) + ": " + err.what());
    }
    const needle_plugin_descriptor* d = inst.lp->desc;
    inst.cfg = validate_entry(cfg_, e, d->keys, d->keys ? d->key_count : 0, d->key_size);
    needle_rc rc = inst.lp->slots.create(host_api(), &inst, &inst.cfg, &inst.self);
    if (rc == NEEDLE_INVALID) {
      int line = e.line;
      auto it = e.keys.find(inst.error_key);
      if (it != e.keys.end()) {
        line = it->second.line;
      }
      throw ConfigError(cfg_.file, line, inst.error_key,
                        inst.error + " (" + e.kind + " '" + e.id + "', plugin " + inst.lp->path +
                            ")");
    }
    if (rc != NEEDLE_OK || inst.self == nullptr) {
      inst.self = nullptr;
      throw PluginError(describe_error(inst, "create failed"));
    }
    if (e.kind == "source") {
      inst.source_index = static_cast<uint32_t>(sources_.size());
      SourceState s;
      s.inst = &inst;
      sources_.push_back(std::move(s));
    } else if (e.kind == "enricher") {
      enrichers_.push_back(&inst);
    } else {
      auto s = std::make_unique<SinkState>();
      s->inst = &inst;
      s->filter = EventFilter(e.events);
      auto it = inst.cfg.values.find("format");
      if (it != inst.cfg.values.end()) {
        if (auto* f = std::get_if<std::string>(&it->second)) {
          if (*f == "msgpack") {
            s->format = NEEDLE_FORMAT_MSGPACK;
          } else if (*f != "json") {
            auto k = e.keys.find("format");
            throw ConfigError(cfg_.file, k != e.keys.end() ? k->second.line : e.line, "format",
                              "must be json or msgpack");
          }
        }
      }
      if (e.on_full == "spill") {
        spill_entries_.push_back(&e);
        s->queue = nullptr;   // made in run(): opening the spill is I/O, which check skips
      } else {
        s->queue = std::make_unique<SinkQueue>(static_cast<size_t>(e.queue_size),
                                               e.on_full == "drop_oldest" ? OnFull::kDropOldest
                                                                          : OnFull::kBlock);
      }
      sinks_.push_back(std::move(s));
    }
  }
  if (sources_.size() > 64) {
    throw ConfigError(cfg_.file, 0, "source", "at most 64 sources");
  }
}

void Runtime::destroy_instances() {
  for (auto it = instances_.rbegin(); it != instances_.rend(); ++it) {
    if (it->self != nullptr) {
      it->lp->slots.destroy(it->self);
      it->self = nullptr;
    }
  }
}

int Runtime::check() {
  create_instances();
  int rc = kExitOk;
  if (opts_.connect) {
    for (auto& inst : instances_) {
      if (inst.lp->slots.check_connect != nullptr &&
          inst.lp->slots.check_connect(inst.self) != NEEDLE_OK) {
        spdlog::error("{}", describe_error(inst, "cannot connect"));
        rc = kExitRuntime;
      }
    }
    probes_ = std::make_unique<ProbeManager>(cfg_.needle, metrics_, cfg_.file);
    probes_->create_shared_maps();
    for (auto& s : sources_) {
      for (auto& e : cfg_.entries) {
        if (e.kind == "source" && e.id == s.inst->id) {
          probes_->add_source(s.inst, e, /*attach=*/false);
        }
      }
    }
  }
  destroy_instances();
  return rc;
}

void Runtime::prepare(Event* ev, std::string_view source, uint64_t boot_ns) {
  stamp_event(*ev, start_ns_, seq_.fetch_add(1) + 1, boot_ns, source);
}

void Runtime::submit_event(needle_host* from, Event* ev) {
  // An event a plugin built in user space: give it the common fields it lacks.
  if (ev->find(NEEDLE_ROOT, "id") == Event::kNone) {
    stamp_event(*ev, start_ns_, seq_.fetch_add(1) + 1, ev->boot_ns, from->id);
  }
  if (!pipeline_in_ || !pipeline_in_->push(ev)) {
    pipeline_dropped_->fetch_add(1, std::memory_order_relaxed);
    pool_.release(ev);
  }
}

void Runtime::decode_record(SourceState& src, std::span<const std::byte> rec,
                            bool defer_wake) {
  // The ring thread and the start snapshot both decode; a source's decode is never concurrent.
  std::lock_guard<std::mutex> lock(decode_mu_);
  Event* ev = pool_.acquire();
  const auto* hdr = reinterpret_cast<const needle_record_header*>(rec.data());
  prepare(ev, src.inst->id, hdr->boot_ns);
  ev->source_index = src.inst->source_index;
  ev->cgroup_id = hdr->task.cgroup_id;
  needle_rc rc = src.inst->lp->slots.decode(src.inst->self, rec.data(), rec.size(), as_abi(ev));
  std::string_view type;
  if (rc == NEEDLE_OK && (type = event_type(*ev)).empty()) {
    src.inst->error = "decode produced an event without a type";
    rc = NEEDLE_ERROR;
  }
  if (rc != NEEDLE_OK) {
    if (rc != NEEDLE_SKIP) {
      src.decode_errors->fetch_add(1, std::memory_order_relaxed);
      src.unreported_decode_errors++;
      static std::atomic<uint64_t> warned{0};
      if (warned.fetch_add(1) < 10) {
        spdlog::warn("source '{}': record of kind {} (size {}) not decoded: {}", src.inst->id,
                     hdr->kind, rec.size(), src.inst->error);
      }
    }
    pool_.release(ev);
    return;
  }
  src.decoded->fetch_add(1, std::memory_order_relaxed);
  std::atomic<uint64_t>* counter = nullptr;
  for (auto& [t, c] : src.by_type) {
    if (t == type) {
      counter = c;
      break;
    }
  }
  if (counter == nullptr) {
    counter = metrics_.counter("needle_events_total",
                               {{"stage", "decode"}, {"source", src.inst->id},
                                {"type", std::string(type)}},
                               "events decoded per source and type");
    src.by_type.emplace_back(std::string(type), counter);
  }
  counter->fetch_add(1, std::memory_order_relaxed);
  if (!pipeline_in_->push(ev, defer_wake)) {
    pipeline_dropped_->fetch_add(1, std::memory_order_relaxed);
    pool_.release(ev);
  }
}

int Runtime::on_ring_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<Runtime*>(ctx);
  if (size < NEEDLE_RECORD_HEADER_SIZE) {
    return 0;
  }
  const auto* hdr = static_cast<const needle_record_header*>(data);
  if (hdr->source >= self->sources_.size() || hdr->size > size) {
    static std::atomic<uint64_t> warned{0};
    if (warned.fetch_add(1) < 10) {
      spdlog::warn("ring record with source index {} and size {} (of {}) dropped", hdr->source,
                   hdr->size, size);
    }
    return 0;
  }
  // The ring thread wakes the pipeline once per burst of records (ring_loop), not per record.
  self->decode_record(self->sources_[hdr->source],
                      std::span<const std::byte>(static_cast<const std::byte*>(data), size),
                      true);
  return 0;
}

void Runtime::emit_gap(const char* stage, const std::string& source, const std::string& sink,
                       uint64_t count) {
  Event* ev = pool_.acquire();
  prepare(ev, "needle", boot_ns_now());
  ev->set_str(NEEDLE_ROOT, "type", "needle.gap");
  ev->set_str(NEEDLE_ROOT, "gap.stage", stage);
  if (!source.empty()) {
    ev->set_str(NEEDLE_ROOT, "gap.source", source);
  }
  if (!sink.empty()) {
    ev->set_str(NEEDLE_ROOT, "gap.sink", sink);
  }
  ev->set_uint(NEEDLE_ROOT, "gap.count", count);
  if (!pipeline_in_->push(ev)) {
    pool_.release(ev);
  }
}

void Runtime::check_kernel_drops() {
  for (auto& s : sources_) {
    uint64_t d = probes_->kernel_drops(s.inst->source_index);
    if (d > s.last_kernel_drops) {
      uint64_t delta = d - s.last_kernel_drops;
      s.last_kernel_drops = d;
      s.kernel_dropped->fetch_add(delta, std::memory_order_relaxed);
      emit_gap("kernel", s.inst->id, "", delta);
      static std::atomic<uint64_t> warned{0};
      if (warned.fetch_add(1) < 20) {
        spdlog::warn("source '{}': the ring buffer was full, {} records lost in the kernel "
                     "(signalled as needle.gap)",
                     s.inst->id, delta);
      }
    }
    if (s.unreported_decode_errors > 0) {
      emit_gap("decode", s.inst->id, "", s.unreported_decode_errors);
      s.unreported_decode_errors = 0;
    }
  }
}

void Runtime::ring_loop() {
  ring_buffer* rb = ring_buffer__new(probes_->ring_fd(), &Runtime::on_ring_record, this, nullptr);
  if (rb == nullptr) {
    spdlog::error("cannot read the ring buffer: {}", std::strerror(errno));
    ring_done_ = true;
    return;
  }
  auto flush = static_cast<int>(cfg_.needle.ring_flush_ms);
  // The kernel's drop counters cost a bpf() syscall per source to read. Under a flood the poll
  // returns every few records, and reading them after each one took a fifth of this thread's
  // time; they are read at most every kDropCheckInterval, and once more after the last drain.
  auto next_check = Clock::now();
  while (!ring_stop_.load()) {
    int n = ring_buffer__poll(rb, flush);
    if (n < 0 && n != -EINTR) {
      spdlog::error("ring buffer poll failed: {}", std::strerror(-n));
      break;
    }
    // Records are submitted without a wakeup until enough wait; this consume bounds their
    // latency to ring_flush_ms.
    ring_buffer__consume(rb);
    pipeline_in_->wake();
    if (const auto now = Clock::now(); now >= next_check) {
      check_kernel_drops();
      next_check = now + kDropCheckInterval;
    }
  }
  // Drain what the kernel wrote before the links went away.
  while (ring_buffer__consume(rb) > 0) {
  }
  check_kernel_drops();
  ring_buffer__free(rb);
  ring_done_ = true;
}

bool Runtime::run_enrichers(Event* ev, size_t from, uint64_t& deadline, size_t& at) {
  // 1: the event goes on now (shutdown, too many parked), so every enricher must finish, not
  // only the one it waited for: one asked to park again is skipped, and the event it had
  // registered was never finished there.
  const bool finish = deadline == 1;
  for (size_t i = from; i < enrichers_.size(); ++i) {
    Instance* e = enrichers_[i];
    // A resumed enricher gets its own deadline back (1, long past, when it must finish now).
    uint64_t d = finish ? 1 : i == from ? deadline : 0;
    needle_rc rc = e->lp->slots.enrich(e->self, as_abi(ev), &d);
    if (rc == NEEDLE_PENDING) {
      deadline = d;
      at = i;
      return false;
    }
    if (rc != NEEDLE_OK) {
      enrich_errors_->fetch_add(1, std::memory_order_relaxed);
    }
  }
  return true;
}

void Runtime::handle(Event* ev) {
  auto it = parked_.find(ev->cgroup_id);
  if (it != parked_.end() && !it->second.empty()) {
    // Keep order within a cgroup: wait behind the parked event. Those waiting count towards
    // the bound too, or a cgroup whose head waits (a hash of every new process in a storm)
    // would hold every later event of the cgroup in memory.
    it->second.push_back(Parked{ev, 0, 0});
    ++parked_total_;
    if (parked_total_ > kMaxParked) {
      service_parked(true);
    }
    return;
  }
  uint64_t deadline = 0;
  size_t at = 0;
  if (run_enrichers(ev, 0, deadline, at)) {
    route(ev);
    return;
  }
  parked_[ev->cgroup_id].push_back(Parked{ev, at, deadline});
  ++parked_total_;
  if (parked_total_ > kMaxParked) {
    service_parked(true);
  }
}

void Runtime::service_parked(bool force) {
  uint64_t now = boot_ns_now();
  for (auto it = parked_.begin(); it != parked_.end();) {
    auto& q = it->second;
    while (!q.empty()) {
      Parked& p = q.front();
      bool overdue = force || (p.deadline_ns != 0 && now >= p.deadline_ns);
      uint64_t deadline = force ? 1 : p.deadline_ns;
      size_t at = p.enricher;
      bool done = run_enrichers(p.ev, p.enricher, deadline, at);
      while (!done && overdue) {
        // Past its deadline the enricher had its chance; go on without it.
        enrich_timeouts_->fetch_add(1, std::memory_order_relaxed);
        deadline = force ? 1 : 0;   // the next enricher starts afresh (or must finish at once)
        done = run_enrichers(p.ev, at + 1, deadline, at);
        overdue = force;
      }
      if (!done) {
        if (p.deadline_ns == 0 || p.enricher != at) {
          p.deadline_ns = deadline;
        }
        p.enricher = at;
        break;
      }
      route(p.ev);
      q.pop_front();
      --parked_total_;
    }
    it = q.empty() ? parked_.erase(it) : std::next(it);
  }
}

void Runtime::route(Event* ev) {
  thread_local std::string json;
  thread_local std::string mp;
  thread_local std::vector<SinkState*> to;
  const std::string_view type = event_type(*ev);
  to.clear();
  for (auto& s : sinks_) {
    if (s->filter.matches(type)) {
      to.push_back(s.get());
    }
  }
  bool have_json = false;
  bool have_mp = false;
  for (size_t i = 0; i < to.size(); ++i) {
    SinkState* s = to[i];
    std::string* data = nullptr;
    if (s->format == NEEDLE_FORMAT_MSGPACK) {
      if (!have_mp) {
        mp.clear();
        encode_msgpack(*ev, mp);
        have_mp = true;
      }
      data = &mp;
    } else {
      if (!have_json) {
        json.clear();
        encode_json(*ev, json);
        have_json = true;
      }
      data = &json;
    }
    // The last sink to want this encoding takes its buffer; the others get copies.
    const bool msgpack = s->format == NEEDLE_FORMAT_MSGPACK;
    bool last = true;
    for (size_t j = i + 1; j < to.size(); ++j) {
      if ((to[j]->format == NEEDLE_FORMAT_MSGPACK) == msgpack) {
        last = false;
      }
    }
    if (last ? s->queue->push_take(*data, true) : s->queue->push(*data, true)) {
      s->queued->fetch_add(1, std::memory_order_relaxed);
    }
  }
  emitted_->fetch_add(1, std::memory_order_relaxed);
  pool_.release(ev);
}

void Runtime::pipeline_loop() {
  std::vector<Event*> batch;
  while (true) {
    auto wait = parked_total_ > 0 ? std::chrono::milliseconds(5) : std::chrono::milliseconds(100);
    size_t n = pipeline_in_->pop_batch(batch, kPipelineBatch, Clock::now() + wait);
    for (Event* ev : batch) {
      handle(ev);
    }
    if (parked_total_ > 0) {
      service_parked(pipeline_in_->closed_and_empty());
    }
    // route() defers the sinks' wakeups; one per batch lets each sink take a batch at once.
    for (auto& s : sinks_) {
      s->queue->wake();
    }
    if (n == 0 && pipeline_in_->closed_and_empty() && parked_total_ == 0) {
      break;
    }
  }
  pipeline_done_ = true;
}

bool Runtime::write_batch(SinkState* s, const std::string_view* batch, size_t n) {
  thread_local std::vector<const void*> ptrs;
  thread_local std::vector<size_t> lens;
  ptrs.clear();
  lens.clear();
  for (size_t i = 0; i < n; ++i) {
    ptrs.push_back(batch[i].data());
    lens.push_back(batch[i].size());
  }
  auto backoff = std::chrono::milliseconds(100);
  while (true) {
    needle_rc rc = s->inst->lp->slots.write(s->inst->self, ptrs.data(), lens.data(), n);
    if (rc == NEEDLE_OK) {
      s->sent->fetch_add(n, std::memory_order_relaxed);
      return true;
    }
    if (rc != NEEDLE_RETRY || s->abandon.load()) {
      s->failed->fetch_add(n, std::memory_order_relaxed);
      static std::atomic<uint64_t> warned{0};
      if (warned.fetch_add(1) < 20) {
        spdlog::error("{}", describe_error(*s->inst, "write failed, " + std::to_string(n) +
                                                          " events lost"));
      }
      return false;
    }
    s->retried->fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

void Runtime::sink_loop(SinkState* s) {
  SinkBatch batch;
  std::string gap;
  Event gap_ev;
  auto last_flush = Clock::now();
  while (!s->abandon.load()) {
    size_t n = s->queue->peek_batch(batch, kSinkBatch, Clock::now() + std::chrono::seconds(1));
    uint64_t drops = s->queue->take_new_drops();
    if (drops > 0 && !s->abandon.load()) {
      // Tell this sink's reader what it did not get.
      s->dropped->fetch_add(drops, std::memory_order_relaxed);
      gap_ev.clear();
      prepare(&gap_ev, "needle", boot_ns_now());
      gap_ev.set_str(NEEDLE_ROOT, "type", "needle.gap");
      gap_ev.set_str(NEEDLE_ROOT, "gap.stage", "queue");
      gap_ev.set_str(NEEDLE_ROOT, "gap.sink", s->inst->id);
      gap_ev.set_uint(NEEDLE_ROOT, "gap.count", drops);
      gap.clear();
      if (s->format == NEEDLE_FORMAT_MSGPACK) {
        encode_msgpack(gap_ev, gap);
      } else {
        encode_json(gap_ev, gap);
      }
      const std::string_view one[] = {gap};
      write_batch(s, one, 1);
    }
    if (n > 0) {
      // A batch given up only because of abandon stays queued (a spilling queue keeps it).
      if (write_batch(s, batch.items.data(), n) || !s->abandon.load()) {
        s->queue->commit();
      }
    }
    if (Clock::now() - last_flush > std::chrono::seconds(1)) {
      if (s->inst->lp->slots.flush) {
        s->inst->lp->slots.flush(s->inst->self);
      }
      last_flush = Clock::now();
    }
    if (n == 0 && s->queue->input_closed() && s->queue->drained()) {
      break;
    }
  }
  if (s->inst->lp->slots.flush && !s->abandon.load()) {
    s->inst->lp->slots.flush(s->inst->self);
  }
  s->done = true;
}

bool Runtime::wait_until(const std::function<bool()>& pred, Clock::time_point deadline) {
  while (!pred()) {
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void Runtime::shutdown() {
  auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(cfg_.needle.shutdown_timeout_s));
  auto deadline = Clock::now() + timeout;
  spdlog::info("stopping: detaching probes, draining (at most {} s)",
               cfg_.needle.shutdown_timeout_s);
  probes_->detach_all();
  for (auto& s : sources_) {
    if (s.inst->lp->slots.stop) {
      s.inst->lp->slots.stop(s.inst->self);
    }
  }
  ring_stop_ = true;
  bool clean = wait_until([&] { return ring_done_.load(); }, deadline);
  if (clean) {
    pipeline_in_->close();
    clean = wait_until([&] { return pipeline_done_.load(); }, deadline);
  }
  if (clean) {
    for (auto& s : sinks_) {
      s->queue->close_input();
    }
    clean = wait_until(
        [&] {
          for (auto& s : sinks_) {
            if (!s->done.load()) {
              return false;
            }
          }
          return true;
        },
        deadline);
  }
  if (!clean) {
    spdlog::warn("shutdown_timeout reached: abandoning what is still queued");
    pipeline_in_->close();
    for (auto& s : sinks_) {
      s->abandon = true;
      size_t lost = s->queue->abandon();
      s->dropped->fetch_add(lost, std::memory_order_relaxed);
      if (s->inst->lp->slots.stop) {
        s->inst->lp->slots.stop(s->inst->self);
      }
    }
    ring_stop_ = true;
    wait_until([&] { return ring_done_.load() && pipeline_done_.load(); },
               Clock::now() + std::chrono::milliseconds(200));
  }
  for (Instance* e : enrichers_) {
    if (e->lp->slots.stop) {
      e->lp->slots.stop(e->self);
    }
  }
  bool joined = ring_done_.load() && pipeline_done_.load();
  for (auto& s : sinks_) {
    joined = joined && s->done.load();
  }
  print_summary(clean);
  if (!joined) {
    // A plugin thread is stuck (a stalled peer). Do not wait for it: the bounded shutdown is
    // the contract.
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(kExitOk);
  }
  ring_thread_.join();
  pipeline_thread_.join();
  for (auto& s : sinks_) {
    if (s->inst->lp->slots.stop) {
      s->inst->lp->slots.stop(s->inst->self);
    }
    s->thread.join();
  }
}

void Runtime::print_summary(bool clean) {
  std::string out = "needle summary (" + std::string(clean ? "clean" : "timed out") + "):\n";
  char line[512];
  for (auto& s : sources_) {
    std::snprintf(line, sizeof line,
                  "  source %-20s decoded %llu, decode errors %llu, kernel drops %llu\n",
                  s.inst->id.c_str(), static_cast<unsigned long long>(s.decoded->load()),
                  static_cast<unsigned long long>(s.decode_errors->load()),
                  static_cast<unsigned long long>(s.kernel_dropped->load()));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "  pipeline %-18s emitted %llu, enrich timeouts %llu, enrich errors %llu, "
                "dropped %llu\n",
                "", static_cast<unsigned long long>(emitted_->load()),
                static_cast<unsigned long long>(enrich_timeouts_->load()),
                static_cast<unsigned long long>(enrich_errors_->load()),
                static_cast<unsigned long long>(pipeline_dropped_->load()));
  out += line;
  for (auto& s : sinks_) {
    std::snprintf(line, sizeof line,
                  "  sink   %-20s queued %llu, sent %llu, failed %llu, retries %llu, queue drops "
                  "%llu\n",
                  s->inst->id.c_str(), static_cast<unsigned long long>(s->queued->load()),
                  static_cast<unsigned long long>(s->sent->load()),
                  static_cast<unsigned long long>(s->failed->load()),
                  static_cast<unsigned long long>(s->retried->load()),
                  static_cast<unsigned long long>(s->queue->dropped()));
    out += line;
  }
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

int Runtime::run() {
  auto t0 = Clock::now();
  resample_clock_offset();
  start_ns_ = boot_ns_now();
  if (!cfg_.needle.host_name.empty()) {
    set_host_name(cfg_.needle.host_name);
  }
  pipeline_dropped_ = metrics_.counter("needle_dropped_total", {{"stage", "pipeline"}},
                                       "events lost, by stage, source and sink");
  enrich_timeouts_ = metrics_.counter("needle_enrich_timeouts_total", {},
                                      "events that went on after an enricher's deadline");
  enrich_errors_ = metrics_.counter("needle_enrich_errors_total", {}, "enricher failures");
  emitted_ = metrics_.counter("needle_events_total", {{"stage", "emit"}},
                              "events decoded per source and type");
  create_instances();
  for (auto& s : sources_) {
    s.decoded = metrics_.counter("needle_source_decoded_total", {{"source", s.inst->id}});
    s.decode_errors =
        metrics_.counter("needle_dropped_total", {{"stage", "decode"}, {"source", s.inst->id}});
    s.kernel_dropped =
        metrics_.counter("needle_dropped_total", {{"stage", "kernel"}, {"source", s.inst->id}});
  }
  for (auto& s : sinks_) {
    const std::string& id = s->inst->id;
    s->queued = metrics_.counter("needle_sink_events_total", {{"sink", id}, {"result", "queued"}});
    s->sent = metrics_.counter("needle_sink_events_total", {{"sink", id}, {"result", "sent"}});
    s->failed = metrics_.counter("needle_sink_events_total", {{"sink", id}, {"result", "failed"}});
    s->retried = metrics_.counter("needle_sink_retries_total", {{"sink", id}});
    s->dropped = metrics_.counter("needle_dropped_total", {{"stage", "queue"}, {"sink", id}});
    SinkState* st = s.get();
    metrics_.gauge_fn("needle_sink_queue_depth", {{"sink", id}},
                      [st] { return st->queue ? static_cast<double>(st->queue->depth()) : 0.0; },
                      "events waiting per sink (memory and spill)");
  }
  metrics_.gauge_fn("needle_rss_bytes", {{"kind", "anon"}},
                    [] { return static_cast<double>(rss_field("RssAnon")); },
                    "resident memory of needle");
  metrics_.gauge_fn("needle_rss_bytes", {{"kind", "file"}},
                    [] { return static_cast<double>(rss_field("RssFile")); });
  metrics_.gauge_fn("needle_rss_bytes", {{"kind", "shmem"}},
                    [] { return static_cast<double>(rss_field("RssShmem")); });

  pipeline_in_ = std::make_unique<EventQueue>(kPipelineQueue);
  try {
    return serve(t0);
  } catch (...) {
    abort_startup();
    throw;
  }
}

void Runtime::abort_startup() {
  // Start-up failed after some threads began: stop them before the error leaves run().
  if (probes_) {
    probes_->detach_all();
  }
  ring_stop_ = true;
  if (ring_thread_.joinable()) {
    ring_thread_.join();
  }
  pipeline_in_->close();
  if (pipeline_thread_.joinable()) {
    pipeline_thread_.join();
  }
  for (auto& s : sinks_) {
    if (s->queue) {
      s->queue->close_input();
    }
    if (s->thread.joinable()) {
      s->thread.join();
    }
  }
  destroy_instances();
}

int Runtime::serve(Clock::time_point t0) {
  for (const Entry* e : spill_entries_) {
    for (auto& s : sinks_) {
      if (s->inst->id != e->id) {
        continue;
      }
      std::string dir = cfg_.needle.state_dir + "/spill/" + e->id;
      auto spill = DiskSpill::open(dir, static_cast<uint64_t>(e->buffer_max_mib) << 20);
      if (!spill) {
        throw std::runtime_error("sink '" + e->id + "': " + spill.error().message);
      }
      s->queue = std::make_unique<SinkQueue>(static_cast<size_t>(e->queue_size), OnFull::kSpill,
                                             *spill);
      SinkQueue* q = s->queue.get();
      metrics_.gauge_fn("needle_sink_spill_bytes", {{"sink", e->id}},
                        [q] { return static_cast<double>(q->spill_bytes()); },
                        "bytes spilled to disk per sink");
    }
  }
  // Sinks first, so nothing decoded waits for an unopened sink.
  for (auto& s : sinks_) {
    if (s->inst->lp->slots.start && s->inst->lp->slots.start(s->inst->self) != NEEDLE_OK) {
      throw std::runtime_error(describe_error(*s->inst, "start failed"));
    }
    s->thread = std::thread([this, p = s.get()] {
      name_thread("sink:" + p->inst->id);
      sink_loop(p);
    });
  }
  pipeline_thread_ = std::thread([this] {
    name_thread("needle-pipeline");
    pipeline_loop();
  });
  for (Instance* e : enrichers_) {
    if (e->lp->slots.start && e->lp->slots.start(e->self) != NEEDLE_OK) {
      throw std::runtime_error(describe_error(*e, "start failed"));
    }
  }
  probes_ = std::make_unique<ProbeManager>(cfg_.needle, metrics_, cfg_.file);
  probes_->create_shared_maps();
  metrics_.gauge_fn("needle_ring_bytes", {}, [this] { return double(probes_->ring_bytes()); },
                    "size of the ring buffer (its pages count twice in RSS)");
  metrics_.gauge_fn("needle_ring_fill_bytes", {}, [this] { return double(probes_->ring_fill()); },
                    "bytes in the ring not yet read");
  ring_thread_ = std::thread([this] {
    name_thread("needle-ring");
    ring_loop();
  });
  for (auto& s : sources_) {
    for (auto& e : cfg_.entries) {
      if (e.kind == "source" && e.id == s.inst->id) {
        probes_->add_source(s.inst, e);
      }
    }
    if (s.inst->lp->slots.start && s.inst->lp->slots.start(s.inst->self) != NEEDLE_OK) {
      throw std::runtime_error(describe_error(*s.inst, "start failed"));
    }
  }
  snapshot_records_ = metrics_.counter("needle_snapshot_records_total", {});
  probes_->run_snapshots([this](Instance* inst, std::span<const std::byte> rec) {
    snapshot_records_->fetch_add(1, std::memory_order_relaxed);
    decode_record(sources_[inst->source_index], rec);
  });

  asio::io_context io;
  std::unique_ptr<MetricsServer> server;
  if (!cfg_.needle.metrics_listen.empty()) {
    server = std::make_unique<MetricsServer>(io, metrics_);
    std::string err = server->listen(cfg_.needle.metrics_listen);
    if (!err.empty()) {
      throw std::runtime_error("metrics_listen " + cfg_.needle.metrics_listen + ": " + err);
    }
  }
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) {
          return;
        }
        if (sig == SIGHUP) {
          spdlog::info("SIGHUP: reopening sink files");
          for (auto& s : sinks_) {
            if (s->inst->lp->slots.reopen) {
              s->inst->lp->slots.reopen(s->inst->self);
            }
          }
          signals.async_wait(on_signal);
          return;
        }
        spdlog::info("{} received", sig == SIGINT ? "SIGINT" : "SIGTERM");
        io.stop();
      };
  signals.async_wait(on_signal);
  asio::steady_timer resample(io);
  std::function<void(const boost::system::error_code&)> on_tick =
      [&](const boost::system::error_code& ec) {
        if (ec) {
          return;
        }
        resample_clock_offset();
        resample.expires_after(std::chrono::seconds(60));
        resample.async_wait(on_tick);
      };
  resample.expires_after(std::chrono::seconds(60));
  resample.async_wait(on_tick);

  drop_capabilities_after_attach();   // probes in place: keep only what reading /proc needs
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  spdlog::info("needle running: {} sources attached", sources_.size());
  spdlog::debug("start took {} ms, {} snapshot records", ms, snapshot_records_->load());
  sd_notify_ready();
  io.run();
  if (server) {
    server->close();
  }
  shutdown();
  destroy_instances();
  return kExitOk;
}

template <typename F>
int guarded(F&& f) {
  try {
    return f();
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    return kExitConfig;
  } catch (const PluginError& e) {
    spdlog::error("{}", e.what());
    return kExitPlugin;
  } catch (const BpfError& e) {
    spdlog::error("{}", e.what());
    return kExitBpf;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return kExitRuntime;
  }
}

}  // namespace

void setup_logging(const std::string& level) {
  static bool done = false;
  if (!done) {
    auto logger = spdlog::stderr_color_mt("needle");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
    spdlog::set_default_logger(logger);
    done = true;
  }
  spdlog::set_level(spdlog::level::from_str(level));
}

int run_needle(const Options& opts) {
  return guarded([&] {
    Config cfg = load_config(opts.config);
    setup_logging(cfg.needle.log_level);
    Runtime rt(std::move(cfg), opts);
    return rt.run();
  });
}

int check_needle(const Options& opts) {
  return guarded([&] {
    Config cfg = load_config(opts.config);
    setup_logging(cfg.needle.log_level == "info" ? "warn" : cfg.needle.log_level);
    Runtime rt(std::move(cfg), opts);
    int rc = rt.check();
    if (rc == kExitOk) {
      std::fprintf(stdout, "%s: configuration is valid\n", opts.config.c_str());
    }
    return rc;
  });
}

}  // namespace needle::core
