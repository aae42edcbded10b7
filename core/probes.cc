#include "probes.h"

#include <bpf/btf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "metrics.h"
#include "needle/bpf/record.h"
#include "needle/bpf_object.h"
#include "plugin_loader.h"

NEEDLE_BPF_OBJECT(syscalls)

/// A source's object as the host API slots see it.
struct needle_bpf {
  bpf_object* obj = nullptr;
  bool loaded = false;
};

namespace needle::core {

namespace {

std::mutex g_print_mu;
std::string* g_capture = nullptr;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  char buf[8192];
  int n = vsnprintf(buf, sizeof buf, fmt, args);
  if (n <= 0) {
    return 0;
  }
  std::lock_guard<std::mutex> lock(g_print_mu);
  if (g_capture != nullptr) {
    g_capture->append(buf);
    return 0;
  }
  std::string_view line(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  while (!line.empty() && line.back() == '\n') {
    line.remove_suffix(1);
  }
  if (level == LIBBPF_WARN) {
    spdlog::debug("libbpf: {}", line);
  } else {
    spdlog::trace("libbpf: {}", line);
  }
  return 0;
}

/// Captures libbpf's output (the verifier log among it) while alive.
class LogCapture {
 public:
  LogCapture() {
    std::lock_guard<std::mutex> lock(g_print_mu);
    g_capture = &text_;
  }
  ~LogCapture() {
    std::lock_guard<std::mutex> lock(g_print_mu);
    g_capture = nullptr;
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

std::string last_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string l;
  while (std::getline(ss, l)) {
    if (!l.empty()) {
      lines.push_back(l);
    }
  }
  std::string out;
  size_t start = lines.size() > n ? lines.size() - n : 0;
  for (size_t i = start; i < lines.size(); ++i) {
    out += "    " + lines[i] + "\n";
  }
  return out;
}

std::once_flag g_print_once;

// Layout of the dispatcher (bpf/syscalls.bpf.c, needle/bpf/syscalls.h): slot abi * kSysNrMax +
// nr of each prog array; the .bss bitmap is any[kSysWords] then abi[2][kSysWords].
constexpr uint32_t kSysNrMax = 1024;
constexpr uint32_t kSysAbis = 2;
constexpr size_t kSysWords = kSysNrMax / 64;

const char* abi_name(uint32_t abi) { return abi == NEEDLE_SYSCALL_COMPAT ? "ia32" : "x86_64"; }

std::string syscall_name(const SyscallClaim& c) {
  return "syscall " + std::to_string(c.nr) + " (" + abi_name(c.abi) + ")";
}

// A syscall handler's rung is the dispatcher's ("tp_btf") or a variant of it ("tp_btf+typed": the
// same program type, built for newer kernels); the dispatcher part is what tail calls need.
std::string dispatcher_part(const std::string& rung) { return rung.substr(0, rung.find('+')); }

bool is_dispatcher_rung(const std::string& rung) {
  const std::string d = dispatcher_part(rung);
  return d == "tp_btf" || d == "raw_tp" || d == "tp";
}

}  // namespace

ProgSlots& ProgSlots::operator=(ProgSlots&& o) noexcept {
  if (this != &o) {
    clear();
    slots_ = std::move(o.slots_);
    o.slots_.clear();
  }
  return *this;
}

bool ProgSlots::put(int map_fd, uint32_t key, int prog_fd) {
  if (bpf_map_update_elem(map_fd, &key, &prog_fd, BPF_ANY) != 0) {
    return false;
  }
  slots_.emplace_back(map_fd, key);
  return true;
}

void ProgSlots::clear() {
  for (auto& [fd, key] : slots_) {
    bpf_map_delete_elem(fd, &key);
  }
  slots_.clear();
}

const char* datasec_of_map(const char* map_name) {
  for (const char* s : {".rodata", ".data", ".bss"}) {
    const char* p = std::strstr(map_name, s);
    if (p != nullptr && std::strcmp(p, s) == 0) {
      return s;
    }
  }
  return nullptr;
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) {
      close(fd_);
    }
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) {
    close(fd_);
  }
}

std::string mount_tracefs() {
  if (access("/sys/kernel/tracing/events", F_OK) == 0 ||
      access("/sys/kernel/debug/tracing/events", F_OK) == 0) {
    return {};
  }
  if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
    return std::string("cannot mount tracefs at /sys/kernel/tracing: ") + std::strerror(errno);
  }
  spdlog::info("mounted tracefs at /sys/kernel/tracing for tracepoint rungs");
  return {};
}

std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // ... mount_point ... - fstype source options
    auto sep = line.find(" - ");
    if (sep == std::string::npos) {
      continue;
    }
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") {
      continue;
    }
    std::istringstream head(line.substr(0, sep));
    std::string id, parent, devno, root, mnt;
    head >> id >> parent >> devno >> root >> mnt;
    return mnt;
  }
  return {};
}

bool cgroup_id_of(const std::string& path, uint64_t& id, std::string& error) {
  std::string full = path;
  struct stat st {};
  if (stat(full.c_str(), &st) != 0) {
    std::string mnt = cgroup2_mount();
    if (mnt.empty()) {
      error = "no cgroup2 file system is mounted";
      return false;
    }
    full = mnt + (path.empty() || path[0] != '/' ? "/" : "") + path;
    if (stat(full.c_str(), &st) != 0) {
      error = full + ": " + std::strerror(errno);
      return false;
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    error = full + " is not a cgroup folder";
    return false;
  }
  // On 64-bit kernels a cgroup2 folder's inode number is the cgroup id BPF reports.
  id = st.st_ino;
  return true;
}

ProbeManager::ProbeManager(const NeedleSettings& settings, Metrics& metrics,
                           std::string config_file)
    : settings_(settings), entry_file_(std::move(config_file)), metrics_(metrics) {
  std::call_once(g_print_once, [] { libbpf_set_print(libbpf_print); });
  int n = libbpf_num_possible_cpus();
  ncpus_ = n > 0 ? n : 1;
}

ProbeManager::~ProbeManager() {
  detach_all();
  long page = sysconf(_SC_PAGESIZE);
  if (ring_consumer_ != nullptr) {
    munmap(const_cast<uint64_t*>(ring_consumer_), static_cast<size_t>(page));
  }
  if (ring_producer_ != nullptr) {
    munmap(const_cast<uint64_t*>(ring_producer_), static_cast<size_t>(page));
  }
}

uint64_t ProbeManager::ring_fill() const {
  if (ring_consumer_ == nullptr || ring_producer_ == nullptr) {
    return 0;
  }
  uint64_t prod = *ring_producer_;
  uint64_t cons = *ring_consumer_;
  return prod > cons ? prod - cons : 0;
}

void ProbeManager::create_shared_maps() {
  ring_bytes_ = static_cast<uint64_t>(settings_.ring_kib) * 1024;
  int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "needle_ring", 0, 0,
                          static_cast<uint32_t>(ring_bytes_), nullptr);
  if (fd < 0) {
    throw BpfError(std::string("cannot create the ring buffer (") +
                   std::to_string(settings_.ring_kib) + " KiB): " + std::strerror(errno) +
                   (errno == EPERM ? " (needle needs root or CAP_BPF + CAP_PERFMON)" : ""));
  }
  ring_ = Fd(fd);
  // The ring's first two pages hold the consumer and producer positions: map them read-only
  // to report how full the ring is.
  long page = sysconf(_SC_PAGESIZE);
  void* c = mmap(nullptr, static_cast<size_t>(page), PROT_READ, MAP_SHARED, ring_.get(), 0);
  void* p = mmap(nullptr, static_cast<size_t>(page), PROT_READ, MAP_SHARED, ring_.get(), page);
  if (c != MAP_FAILED) {
    ring_consumer_ = static_cast<const volatile uint64_t*>(c);
  }
  if (p != MAP_FAILED) {
    ring_producer_ = static_cast<const volatile uint64_t*>(p);
  }
  fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "needle_drops", sizeof(uint32_t),
                      sizeof(uint64_t), 64, nullptr);
  if (fd < 0) {
    throw BpfError(std::string("cannot create the drop counters: ") + std::strerror(errno));
  }
  drops_ = Fd(fd);
  fd = bpf_map_create(BPF_MAP_TYPE_HASH, "needle_f_exe", 16, 1, 1024, nullptr);
  if (fd < 0) {
    throw BpfError(std::string("cannot create the exe filter: ") + std::strerror(errno));
  }
  filter_exe_ = Fd(fd);
  fd = bpf_map_create(BPF_MAP_TYPE_HASH, "needle_f_cgrp", 8, 1, 1024, nullptr);
  if (fd < 0) {
    throw BpfError(std::string("cannot create the cgroup filter: ") + std::strerror(errno));
  }
  filter_cgroup_ = Fd(fd);
  uint8_t one = 1;
  for (auto& exe : settings_.exclude_exe) {
    struct stat st {};
    if (stat(exe.c_str(), &st) != 0) {
      spdlog::warn("exclude_exe: {}: {} (not excluded)", exe, std::strerror(errno));
      continue;
    }
    struct {
      uint64_t dev;
      uint64_t ino;
    } key{(static_cast<uint64_t>(major(st.st_dev)) << 20) | minor(st.st_dev), st.st_ino};
    bpf_map_update_elem(filter_exe_.get(), &key, &one, BPF_ANY);
  }
  for (auto& cg : settings_.exclude_cgroups) {
    uint64_t id = 0;
    std::string err;
    if (!cgroup_id_of(cg, id, err)) {
      spdlog::warn("exclude_cgroups: {}: {} (not excluded)", cg, err);
      continue;
    }
    bpf_map_update_elem(filter_cgroup_.get(), &id, &one, BPF_ANY);
  }
}

void ProbeManager::ensure_tracefs() {
  if (tracefs_checked_) {
    return;
  }
  tracefs_checked_ = true;
  std::string err = mount_tracefs();
  if (!err.empty()) {
    spdlog::warn("{}", err);
  }
}

/// NEEDLE_PROG_CGROUP: attaches a cgroup program (cgroup_skb, cgroup/connect4, ...) to the root
/// of the cgroup2 hierarchy, where it sees every process; the link keeps the cgroup alive.
static bpf_link* attach_cgroup_root(bpf_program* prog) {
  std::string root = cgroup2_mount();
  if (root.empty()) {
    errno = ENOENT;   // "no cgroup2 file system is mounted"
    return nullptr;
  }
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return nullptr;
  }
  bpf_link* link = bpf_program__attach_cgroup(prog, fd);
  int err = errno;
  close(fd);
  errno = err;
  return link;
}

ProbeManager::Attempt ProbeManager::try_load(Instance* inst, std::span<const unsigned char> bytes,
                                             const std::vector<ProgramInfo>& programs,
                                             const std::map<std::string, std::string>& choice,
                                             bool attach, const std::vector<SyscallClaim>& claims) {
  Attempt a;
  std::string names;
  for (auto& p : programs) {
    auto it = choice.find(p.hook);
    if (it != choice.end() && it->second == p.rung) {
      names += (names.empty() ? "" : ", ") + p.program;
      if (dispatcher_part(p.rung) == "tp") {
        ensure_tracefs();
      }
    }
  }
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = inst->id.c_str());
  bpf_object* o = bpf_object__open_mem(bytes.data(), bytes.size(), &opts);
  if (o == nullptr) {
    a.error = std::string("cannot open the BPF object: ") + std::strerror(errno);
    return a;
  }
  a.obj.reset(o);
  struct Shared {
    const char* name;
    int fd;
  };
  for (Shared s : {Shared{"needle_ring", ring_.get()}, Shared{"needle_drops", drops_.get()},
                   Shared{"needle_filter_exe", filter_exe_.get()},
                   Shared{"needle_filter_cgroup", filter_cgroup_.get()}}) {
    bpf_map* m = bpf_object__find_map_by_name(o, s.name);
    if (m == nullptr) {
      a.error = std::string("the object does not declare map ") + s.name +
                " (build it against needle/bpf/needle.bpf.h)";
      return a;
    }
    if (bpf_map__reuse_fd(m, s.fd) != 0) {
      a.error = std::string("cannot share map ") + s.name + ": " + std::strerror(errno);
      return a;
    }
  }
  // Syscall handlers read the arguments the dispatcher saved: its per-thread map, shared.
  if (bpf_map* m = bpf_object__find_map_by_name(o, "needle_sys_args_map"); m != nullptr && sys_) {
    if (bpf_map__reuse_fd(m, sys_->args) != 0) {
      a.error = std::string("cannot share map needle_sys_args_map: ") + std::strerror(errno);
      return a;
    }
  }
  needle_bpf handle{o, false};
  uint32_t self = static_cast<uint32_t>(getpid());
  uint64_t wake = std::max<uint64_t>(ring_bytes_ / 8, 4096);
  uint32_t exe_on = settings_.exclude_exe.empty() ? 0 : 1;
  uint32_t cg_on = settings_.exclude_cgroups.empty() ? 0 : 1;
  if (needle_bpf_set_global(&handle, "needle_source_index", &inst->source_index, 4) != NEEDLE_OK ||
      needle_bpf_set_global(&handle, "needle_self_tgid", &self, 4) != NEEDLE_OK ||
      needle_bpf_set_global(&handle, "needle_wakeup_bytes", &wake, 8) != NEEDLE_OK ||
      needle_bpf_set_global(&handle, "needle_filter_exe_on", &exe_on, 4) != NEEDLE_OK ||
      needle_bpf_set_global(&handle, "needle_filter_cgroup_on", &cg_on, 4) != NEEDLE_OK) {
    a.error = "the object lacks needle's globals (build it against needle/bpf/needle.bpf.h)";
    return a;
  }
  if (inst->lp->slots.bpf_configure != nullptr &&
      inst->lp->slots.bpf_configure(inst->self, &handle) != NEEDLE_OK) {
    a.error = describe_error(*inst, "bpf_configure failed");
    return a;
  }
  std::set<std::string> listed;
  for (auto& p : programs) {
    listed.insert(p.program);
    bpf_program* prog = bpf_object__find_program_by_name(o, p.program.c_str());
    if (prog == nullptr) {
      a.error = "program " + p.program + " of the program table is not in the object";
      return a;
    }
    auto it = choice.find(p.hook);
    bpf_program__set_autoload(prog, it != choice.end() && it->second == p.rung);
  }
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, o) {
    if (!listed.count(bpf_program__name(prog))) {
      bpf_program__set_autoload(prog, false);   // not in the table: never loaded
    }
  }
  {
    LogCapture cap;
    if (bpf_object__load(o) != 0) {
      int err = errno;
      a.error = "the verifier or the kernel refused program(s) " + names + ": " +
                std::strerror(err) + "\n  last lines of the log:\n" + last_lines(cap.text(), 20);
      return a;
    }
  }
  handle.loaded = true;
  if (inst->lp->slots.bpf_loaded != nullptr &&
      inst->lp->slots.bpf_loaded(inst->self, &handle) != NEEDLE_OK) {
    a.error = describe_error(*inst, "bpf_loaded failed");
    return a;
  }
  if (!attach) {
    return a;
  }
  // Syscall handlers are not attached: they go into the dispatcher's tail-call slots.
  for (auto& c : claims) {
    auto it = choice.find(c.hook);
    if (it == choice.end() || !sys_) {
      continue;
    }
    for (auto& p : programs) {
      if (p.hook != c.hook || p.rung != it->second || !(p.flags & NEEDLE_PROG_SYSCALL)) {
        continue;
      }
      bool enter = (p.flags & NEEDLE_PROG_SYSCALL_ENTER) != 0;
      if (enter) {
        if (std::string err = attach_dispatcher_enter(); !err.empty()) {
          a.error = describe_error(*inst, "enter handler " + p.program + ": " + err);
          return a;
        }
      }
      bpf_program* pr = bpf_object__find_program_by_name(o, p.program.c_str());
      if (!a.slots.put(enter ? sys_->enter_progs : sys_->exit_progs,
                       c.abi * kSysNrMax + c.nr, bpf_program__fd(pr))) {
        a.error = "cannot give " + syscall_name(c) + " to program " + p.program + " (hook " +
                  p.hook + ", rung " + p.rung + ") in the syscall dispatcher: " +
                  std::strerror(errno);
        return a;
      }
    }
  }
  for (auto& p : programs) {
    auto it = choice.find(p.hook);
    if (it == choice.end() || it->second != p.rung || (p.flags & NEEDLE_PROG_SYSCALL)) {
      continue;
    }
    bpf_program* pr = bpf_object__find_program_by_name(o, p.program.c_str());
    LogCapture cap;
    bpf_link* link = (p.flags & NEEDLE_PROG_ITER)     ? bpf_program__attach_iter(pr, nullptr)
                     : (p.flags & NEEDLE_PROG_CGROUP) ? attach_cgroup_root(pr)
                                                      : bpf_program__attach(pr);
    if (link == nullptr) {
      int err = errno;
      a.error = "cannot attach program " + p.program + " (hook " + p.hook + ", rung " + p.rung +
                "): " + std::strerror(err) + "\n" + last_lines(cap.text(), 5);
      return a;
    }
    if (p.flags & NEEDLE_PROG_ITER) {
      a.iters.emplace_back(pr, BpfLink(link));
    } else {
      a.links.emplace_back(link);
    }
  }
  return a;
}

void ProbeManager::add_source(Instance* inst, const Entry& entry, bool attach) {
  needle_bpf_spec spec{};
  spec.struct_size = sizeof spec;
  if (inst->lp->slots.bpf_spec == nullptr) {
    return;
  }
  if (inst->lp->slots.bpf_spec(inst->self, &spec) != NEEDLE_OK) {
    throw BpfError(describe_error(*inst, "bpf_spec failed"));
  }
  if (spec.object == nullptr || spec.object_size == 0) {
    return;   // a source with no kernel side
  }
  auto src = std::make_unique<Source>();
  src->inst = inst;
  size_t stride = spec.program_size ? spec.program_size : sizeof(needle_bpf_program);
  if (stride < offsetof(needle_bpf_program, required) + sizeof(uint32_t)) {
    throw BpfError(describe_error(*inst, "program table entries are too small"));
  }
  std::vector<std::string> hooks;
  std::map<std::string, std::vector<std::string>> ladder;
  std::map<std::string, bool> required;
  const auto* base = static_cast<const unsigned char*>(static_cast<const void*>(spec.programs));
  for (size_t i = 0; i < spec.program_count; ++i) {
    const auto* p = reinterpret_cast<const needle_bpf_program*>(base + i * stride);
    if (!p->program || !p->hook || !p->rung) {
      throw BpfError(describe_error(*inst, "program table entry " + std::to_string(i) +
                                               " lacks a program, hook or rung"));
    }
    ProgramInfo pi{p->program, p->hook, p->rung, p->flags, p->required != 0};
    if (!ladder.count(pi.hook)) {
      hooks.push_back(pi.hook);
    }
    auto& l = ladder[pi.hook];
    if (std::find(l.begin(), l.end(), pi.rung) == l.end()) {
      l.push_back(pi.rung);
    }
    required[pi.hook] = required[pi.hook] || pi.required;
    src->programs.push_back(std::move(pi));
  }
  // Pins from the config: rung = "x" pins every hook offering x; rung.<hook> = "x" one hook.
  std::string where = "source '" + inst->id + "': ";
  if (!entry.rung.empty()) {
    bool any = false;
    for (auto& h : hooks) {
      auto& l = ladder[h];
      if (std::find(l.begin(), l.end(), entry.rung) != l.end()) {
        l = {entry.rung};
        any = true;
      }
    }
    if (!any) {
      throw ConfigError(entry_file_, entry.line, "rung",
                        where + "no hook offers rung '" + entry.rung + "'");
    }
  }
  for (auto& [hook, rung] : entry.hook_rungs) {
    if (!ladder.count(hook)) {
      throw ConfigError(entry_file_, entry.line, "rung." + hook, where + "no hook named " + hook);
    }
    auto& l = ladder[hook];
    if (std::find(l.begin(), l.end(), rung) == l.end()) {
      std::string offered;
      for (auto& r : l) {
        offered += (offered.empty() ? "" : ", ") + r;
      }
      throw ConfigError(entry_file_, entry.line, "rung." + hook,
                        where + "hook " + hook + " has no rung '" + rung + "' (it has " + offered +
                            ")");
    }
    l = {rung};
  }
  std::vector<SyscallClaim> claims =
      prepare_syscalls(inst, entry, spec, src->programs, ladder, attach);
  std::span<const unsigned char> bytes(static_cast<const unsigned char*>(spec.object),
                                       spec.object_size);
  // Fast path: every hook's best rung at once; usually all of them work.
  std::map<std::string, std::string> best;
  for (auto& h : hooks) {
    best[h] = ladder[h].front();
  }
  Attempt a = try_load(inst, bytes, src->programs, best, attach, claims);
  std::map<std::string, std::string> chosen = best;
  if (!a.error.empty()) {
    spdlog::debug("{}best rungs together failed, probing hook by hook: {}", where, a.error);
    // Empty the failed attempt's tail-call slots now: the probes below reuse the same slots, and
    // clearing them later (when `a` is replaced) would empty the chosen handlers' slots.
    a.slots.clear();
    chosen.clear();
    for (auto& h : hooks) {
      std::string errors;
      for (auto& r : ladder[h]) {
        Attempt t = try_load(inst, bytes, src->programs, {{h, r}}, attach, claims);
        if (t.error.empty()) {
          chosen[h] = r;
          break;
        }
        spdlog::info("{}hook {} cannot use rung {} here; trying the next one", where, h, r);
        errors += "  rung " + r + ": " + t.error + "\n";
      }
      if (!chosen.count(h)) {
        if (required[h]) {
          throw BpfError(describe_error(*inst, "no rung of hook " + h + " works on this kernel") +
                         "\n" + errors);
        }
        spdlog::warn("{}optional hook {} is unavailable on this kernel:\n{}", where, h, errors);
      }
    }
    a = try_load(inst, bytes, src->programs, chosen, attach, claims);
    if (!a.error.empty()) {
      throw BpfError(describe_error(*inst, "loading the chosen rungs failed") + ": " + a.error);
    }
  }
  for (auto& h : hooks) {
    HookRung hr{h, chosen.count(h) ? chosen[h] : std::string(), required[h]};
    if (!hr.rung.empty()) {
      spdlog::info("{}hook {} runs on rung {}", where, h, hr.rung);
      metrics_.gauge("needle_hook_rung", {{"source", inst->id}, {"hook", h}, {"rung", hr.rung}},
                     "1 for the rung each hook runs on")
          ->store(1);
    }
    src->rungs.push_back(hr);
  }
  claim_syscalls(inst, claims, chosen);
  src->obj = std::move(a.obj);
  src->links = std::move(a.links);
  src->iters = std::move(a.iters);
  src->slots = std::move(a.slots);
  sources_.push_back(std::move(src));
}

std::string ProbeManager::attach_dispatcher_enter() {
  if (!sys_ || sys_->enter_attached) {
    return {};
  }
  const std::string name = "needle_sys_enter_" + sys_->rung;
  bpf_program* pr = bpf_object__find_program_by_name(sys_->obj.get(), name.c_str());
  LogCapture cap;
  bpf_link* link = pr != nullptr ? bpf_program__attach(pr) : nullptr;
  if (link == nullptr) {
    int err = errno;
    return "cannot attach the dispatcher's " + name + ": " + std::strerror(err) + "\n" +
           last_lines(cap.text(), 5);
  }
  sys_->links.emplace_back(link);
  sys_->enter_attached = true;
  spdlog::info("the syscall dispatcher also runs sys_enter (a source has enter handlers)");
  return {};
}

std::string ProbeManager::load_dispatcher(const std::string& rung, bool attach) {
  if (rung == "tp") {
    ensure_tracefs();
  }
  const auto bytes = needle_bpf_syscalls_bytes();
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "needle_syscalls");
  bpf_object* o = bpf_object__open_mem(bytes.data(), bytes.size(), &opts);
  if (o == nullptr) {
    return std::string("cannot open the dispatcher's object: ") + std::strerror(errno);
  }
  auto d = std::make_unique<Dispatcher>();
  d->obj.reset(o);
  d->rung = rung;
  const std::string names[2] = {"needle_sys_enter_" + rung, "needle_sys_exit_" + rung};
  int found = 0;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, o) {
    bool mine = names[0] == bpf_program__name(prog) || names[1] == bpf_program__name(prog);
    bpf_program__set_autoload(prog, mine);
    found += mine ? 1 : 0;
  }
  if (found != 2) {
    return "the dispatcher has no rung " + rung;
  }
  {
    LogCapture cap;
    if (bpf_object__load(o) != 0) {
      int err = errno;
      return "the verifier or the kernel refused the dispatcher: " + std::string(std::strerror(err)) +
             "\n  last lines of the log:\n" + last_lines(cap.text(), 20);
    }
  }
  bpf_map* enter = bpf_object__find_map_by_name(o, "needle_sys_enter_progs");
  bpf_map* exit = bpf_object__find_map_by_name(o, "needle_sys_exit_progs");
  bpf_map* args = bpf_object__find_map_by_name(o, "needle_sys_args_map");
  if (enter == nullptr || exit == nullptr || args == nullptr ||
      bpf_map__max_entries(enter) != kSysAbis * kSysNrMax ||
      bpf_map__max_entries(exit) != kSysAbis * kSysNrMax) {
    return "the dispatcher's maps do not match the core's layout";
  }
  d->enter_progs = bpf_map__fd(enter);
  d->exit_progs = bpf_map__fd(exit);
  d->args = bpf_map__fd(args);
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, o) {
    const char* sec = datasec_of_map(bpf_map__name(map));
    if (bpf_map__is_internal(map) && sec != nullptr && std::strcmp(sec, ".bss") == 0) {
      d->bits = bpf_map__fd(map);
      if (bpf_map__value_size(map) != (1 + kSysAbis) * kSysWords * sizeof(uint64_t)) {
        return "the dispatcher's bitmap does not match the core's layout";
      }
    }
  }
  if (d->bits < 0) {
    return "the dispatcher's object has no bitmap";
  }
  d->bitmap.assign((1 + kSysAbis) * kSysWords, 0);
  if (attach) {
    // On tp_btf and raw_tp the exit program reads the arguments from pt_regs itself, so every
    // syscall on the host runs one program, not two; the tp rung's records have no pt_regs.
    for (const auto& name : names) {
      if (name == names[0] && rung != "tp") {
        continue;
      }
      bpf_program* pr = bpf_object__find_program_by_name(o, name.c_str());
      LogCapture cap;
      bpf_link* link = bpf_program__attach(pr);
      if (link == nullptr) {
        int err = errno;
        return "cannot attach " + name + ": " + std::strerror(err) + "\n" + last_lines(cap.text(), 5);
      }
      d->links.emplace_back(link);
    }
    d->enter_attached = rung == "tp";
  }
  sys_ = std::move(d);
  spdlog::info("the syscall dispatcher runs on rung {} ({})", rung,
               sys_->enter_attached ? "sys_enter and sys_exit" : "sys_exit only");
  metrics_.gauge("needle_hook_rung", {{"source", "needle"}, {"hook", "syscalls"}, {"rung", rung}},
                 "1 for the rung each hook runs on")
      ->store(1);
  return {};
}

std::vector<SyscallClaim> ProbeManager::prepare_syscalls(
    Instance* inst, const Entry& entry, const needle_bpf_spec& spec,
    const std::vector<ProgramInfo>& programs,
    std::map<std::string, std::vector<std::string>>& ladder, bool attach) {
  std::vector<SyscallClaim> claims;
  std::vector<std::string> sys_hooks;   // in program-table order
  std::set<std::string> other_hooks;
  for (auto& p : programs) {
    if (!(p.flags & NEEDLE_PROG_SYSCALL)) {
      other_hooks.insert(p.hook);
    } else if (std::find(sys_hooks.begin(), sys_hooks.end(), p.hook) == sys_hooks.end()) {
      sys_hooks.push_back(p.hook);
    }
  }
  for (auto& h : sys_hooks) {
    if (other_hooks.count(h)) {
      throw BpfError(describe_error(*inst, "hook " + h +
                                               " mixes syscall handlers with programs that "
                                               "attach by themselves"));
    }
  }
  constexpr size_t kTableEnd = offsetof(needle_bpf_spec, syscall_size) + sizeof(uint32_t);
  if (spec.struct_size >= kTableEnd && spec.syscalls != nullptr && spec.syscall_count > 0) {
    size_t stride = spec.syscall_size ? spec.syscall_size : sizeof(needle_syscall);
    if (stride < offsetof(needle_syscall, hook) + sizeof(const char*)) {
      throw BpfError(describe_error(*inst, "syscall table entries are too small"));
    }
    const auto* base = static_cast<const unsigned char*>(static_cast<const void*>(spec.syscalls));
    std::map<std::pair<uint32_t, uint32_t>, std::string> mine;
    for (size_t i = 0; i < spec.syscall_count; ++i) {
      const auto* s = reinterpret_cast<const needle_syscall*>(base + i * stride);
      std::string at = "syscall table entry " + std::to_string(i);
      if (s->hook == nullptr) {
        throw BpfError(describe_error(*inst, at + " lacks a hook"));
      }
      if (s->abi >= kSysAbis || s->nr >= kSysNrMax) {
        throw BpfError(describe_error(*inst, at + " has abi " + std::to_string(s->abi) +
                                                 " and number " + std::to_string(s->nr) +
                                                 "; the dispatcher covers abi 0-1, numbers 0-" +
                                                 std::to_string(kSysNrMax - 1)));
      }
      if (std::find(sys_hooks.begin(), sys_hooks.end(), s->hook) == sys_hooks.end()) {
        throw BpfError(describe_error(*inst, at + " names hook " + s->hook +
                                                 ", which has no syscall handler program"));
      }
      SyscallClaim c{s->abi, s->nr, s->hook};
      auto [it, fresh] = mine.emplace(std::make_pair(c.abi, c.nr), c.hook);
      if (!fresh) {
        throw BpfError(describe_error(*inst, syscall_name(c) + " is listed for hook " + it->second +
                                                 " and hook " + c.hook));
      }
      if (sys_) {
        auto owner = sys_->owners.find({c.abi, c.nr});
        if (owner != sys_->owners.end()) {
          throw ConfigError(entry_file_, entry.line, "plugin",
                            "source '" + inst->id + "' (hook " + c.hook + ") and " +
                                owner->second + " both handle " + syscall_name(c) +
                                "; each syscall has one owner: configure only one of them");
        }
      }
      claims.push_back(std::move(c));
    }
  }
  if (sys_hooks.empty()) {
    return claims;
  }
  std::string where = "source '" + inst->id + "': ";
  if (!sys_) {
    // The dispatcher takes the best rung that every syscall hook of this source offers (in one
    // of its variants).
    auto offers = [&](const std::string& h, const std::string& d) {
      return std::any_of(ladder[h].begin(), ladder[h].end(), [&](const std::string& r) {
        return dispatcher_part(r) == d;
      });
    };
    std::vector<std::string> candidates;
    for (auto& r : ladder[sys_hooks.front()]) {
      const std::string d = dispatcher_part(r);
      bool everywhere = is_dispatcher_rung(r) &&
                        std::find(candidates.begin(), candidates.end(), d) == candidates.end();
      for (auto& h : sys_hooks) {
        everywhere = everywhere && offers(h, d);
      }
      if (everywhere) {
        candidates.push_back(d);
      }
    }
    if (candidates.empty()) {
      throw BpfError(describe_error(*inst, "the syscall hooks share no rung the dispatcher "
                                           "offers (tp_btf, raw_tp, tp)"));
    }
    std::string errors;
    for (auto& r : candidates) {
      std::string err = load_dispatcher(r, attach);
      if (err.empty()) {
        sys_->chosen_for = inst->id;
        break;
      }
      spdlog::info("the syscall dispatcher cannot use rung {}; trying the next one", r);
      errors += "  rung " + r + ": " + err + "\n";
    }
    if (!sys_) {
      throw BpfError(describe_error(*inst, "the syscall dispatcher runs on no rung here") + "\n" +
                     errors);
    }
  }
  for (auto& h : sys_hooks) {
    auto& l = ladder[h];
    std::vector<std::string> on_dispatcher;   // its variants on the dispatcher's rung, best first
    for (auto& r : l) {
      if (dispatcher_part(r) == sys_->rung) {
        on_dispatcher.push_back(r);
      }
    }
    if (on_dispatcher.empty()) {
      std::string offered;
      for (auto& r : l) {
        offered += (offered.empty() ? "" : ", ") + r;
      }
      std::string msg = where + "syscall hook " + h + " may use rung(s) " + offered +
                        " but the shared syscall dispatcher runs on rung " + sys_->rung +
                        " (chosen for source '" + sys_->chosen_for + "')";
      if (!entry.rung.empty() || !entry.hook_rungs.empty()) {
        throw ConfigError(entry_file_, entry.line, entry.rung.empty() ? "rung." + h : "rung", msg);
      }
      throw BpfError(msg);
    }
    l = std::move(on_dispatcher);
  }
  return claims;
}

void ProbeManager::claim_syscalls(Instance* inst, const std::vector<SyscallClaim>& claims,
                                  const std::map<std::string, std::string>& chosen) {
  if (!sys_ || claims.empty()) {
    return;
  }
  for (auto& c : claims) {
    if (!chosen.count(c.hook)) {
      continue;   // an optional hook that found no rung
    }
    sys_->owners[{c.abi, c.nr}] = "source '" + inst->id + "' (hook " + c.hook + ")";
    uint64_t bit = uint64_t{1} << (c.nr % 64);
    sys_->bitmap[c.nr / 64] |= bit;
    sys_->bitmap[kSysWords * (1 + c.abi) + c.nr / 64] |= bit;
  }
  uint32_t zero = 0;
  if (bpf_map_update_elem(sys_->bits, &zero, sys_->bitmap.data(), BPF_ANY) != 0) {
    throw BpfError(describe_error(*inst, std::string("cannot update the syscall dispatcher's "
                                                     "bitmap: ") +
                                             std::strerror(errno)));
  }
}

void ProbeManager::run_snapshots(
    const std::function<void(Instance*, std::span<const std::byte>)>& fn) {
  for (auto& src : sources_) {
    for (auto& [prog, link] : src->iters) {
      int fd = bpf_iter_create(bpf_link__fd(link.get()));
      if (fd < 0) {
        spdlog::warn("source '{}': cannot run the snapshot iterator {}: {}", src->inst->id,
                     bpf_program__name(prog), std::strerror(errno));
        continue;
      }
      Fd iter(fd);
      std::vector<std::byte> all;
      std::vector<std::byte> buf(1 << 16);
      while (true) {
        ssize_t n = read(iter.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n < 0) {
          spdlog::warn("source '{}': snapshot iterator read failed: {}", src->inst->id,
                       std::strerror(errno));
          break;
        }
        if (n == 0) {
          break;
        }
        all.insert(all.end(), buf.begin(), buf.begin() + n);
      }
      size_t off = 0;
      while (off + NEEDLE_RECORD_HEADER_SIZE <= all.size()) {
        uint32_t size = 0;
        std::memcpy(&size, all.data() + off + 4, sizeof size);
        if (size < NEEDLE_RECORD_HEADER_SIZE || off + size > all.size()) {
          spdlog::warn("source '{}': malformed snapshot record at offset {} (size {}); {} bytes "
                       "of the snapshot skipped",
                       src->inst->id, off, size, all.size() - off);
          break;
        }
        fn(src->inst, std::span<const std::byte>(all.data() + off, size));
        off += size;
      }
    }
    src->iters.clear();
  }
}

void ProbeManager::detach_all() {
  for (auto& src : sources_) {
    src->links.clear();
    src->iters.clear();
  }
  if (sys_) {
    sys_->links.clear();
  }
}

uint64_t ProbeManager::kernel_drops(uint32_t source_index) const {
  std::vector<uint64_t> values(static_cast<size_t>(ncpus_));
  if (bpf_map_lookup_elem(drops_.get(), &source_index, values.data()) != 0) {
    return 0;
  }
  uint64_t sum = 0;
  for (uint64_t v : values) {
    sum += v;
  }
  return sum;
}

const std::vector<HookRung>& ProbeManager::rungs(const Instance* inst) const {
  static const std::vector<HookRung> kNone;
  for (auto& s : sources_) {
    if (s->inst == inst) {
      return s->rungs;
    }
  }
  return kNone;
}

}  // namespace needle::core

using needle::core::as_core;

needle_rc needle_bpf_set_global(needle_bpf* b, const char* name, const void* value, size_t len) {
  if (b == nullptr || b->loaded || name == nullptr) {
    return NEEDLE_INVALID;
  }
  const btf* btf = bpf_object__btf(b->obj);
  if (btf == nullptr) {
    return NEEDLE_INVALID;
  }
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, b->obj) {
    if (!bpf_map__is_internal(map)) {
      continue;
    }
    const char* sec = needle::core::datasec_of_map(bpf_map__name(map));
    if (sec == nullptr) {
      continue;
    }
    int id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
    if (id < 0) {
      continue;
    }
    const btf_type* t = btf__type_by_id(btf, static_cast<__u32>(id));
    const btf_var_secinfo* vs = btf_var_secinfos(t);
    for (unsigned i = 0; i < btf_vlen(t); ++i) {
      const btf_type* var = btf__type_by_id(btf, vs[i].type);
      if (std::strcmp(btf__name_by_offset(btf, var->name_off), name) != 0) {
        continue;
      }
      if (vs[i].size != len) {
        return NEEDLE_INVALID;
      }
      size_t size = 0;
      const void* data = bpf_map__initial_value(map, &size);
      if (data == nullptr || vs[i].offset + len > size) {
        return NEEDLE_INVALID;
      }
      std::vector<char> copy(static_cast<const char*>(data), static_cast<const char*>(data) + size);
      std::memcpy(copy.data() + vs[i].offset, value, len);
      return bpf_map__set_initial_value(map, copy.data(), size) == 0 ? NEEDLE_OK : NEEDLE_ERROR;
    }
  }
  return NEEDLE_INVALID;
}

needle_rc needle_bpf_map_update(needle_bpf* b, const char* name, const void* key, size_t key_len,
                                const void* value, size_t value_len) {
  if (b == nullptr || !b->loaded) {
    return NEEDLE_INVALID;
  }
  bpf_map* m = bpf_object__find_map_by_name(b->obj, name);
  if (m == nullptr) {
    return NEEDLE_INVALID;
  }
  return bpf_map__update_elem(m, key, key_len, value, value_len, BPF_ANY) == 0 ? NEEDLE_OK
                                                                                : NEEDLE_ERROR;
}

int needle_bpf_map_fd(needle_bpf* b, const char* name) {
  if (b == nullptr || !b->loaded) {
    return -1;
  }
  bpf_map* m = bpf_object__find_map_by_name(b->obj, name);
  return m ? bpf_map__fd(m) : -1;
}
