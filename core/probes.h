// The probe manager: the only code in needle that calls libbpf. It creates the maps every
// object shares (the one ring buffer, the per-CPU drop counters, the filters), loads each
// source's object, finds each hook's rung by loading and attaching the real programs, and owns
// every object and link until detach.
#ifndef NEEDLE_CORE_PROBES_H
#define NEEDLE_CORE_PROBES_H

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "config.h"
#include "host.h"

namespace needle::core {

class Metrics;

/// A BPF object could not load or attach (exit code 4).
class BpfError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ObjectClose {
  void operator()(bpf_object* o) const { bpf_object__close(o); }
};
struct LinkDestroy {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using BpfObject = std::unique_ptr<bpf_object, ObjectClose>;
using BpfLink = std::unique_ptr<bpf_link, LinkDestroy>;

/// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

struct ProgramInfo {
  std::string program;
  std::string hook;
  std::string rung;
  uint32_t flags = 0;
  bool required = false;
};

struct HookRung {
  std::string hook;
  std::string rung;     // empty when no rung of an optional hook worked
  bool required = false;
};

/// One syscall a source's hook handles through the shared dispatcher (abi.h needle_syscall).
struct SyscallClaim {
  uint32_t abi = 0;     // NEEDLE_SYSCALL_*
  uint32_t nr = 0;
  std::string hook;
};

/// Tail-call slots a source's syscall handlers occupy in the dispatcher's prog arrays; emptied
/// on destruction. The dispatcher (which owns the arrays) outlives every source.
class ProgSlots {
 public:
  ProgSlots() = default;
  ProgSlots(ProgSlots&& o) noexcept : slots_(std::move(o.slots_)) { o.slots_.clear(); }
  ProgSlots& operator=(ProgSlots&& o) noexcept;
  ProgSlots(const ProgSlots&) = delete;
  ProgSlots& operator=(const ProgSlots&) = delete;
  ~ProgSlots() { clear(); }
  /// Puts `prog_fd` at `key` of the prog array `map_fd`; false with errno set on failure.
  bool put(int map_fd, uint32_t key, int prog_fd);
  void clear();

 private:
  std::vector<std::pair<int, uint32_t>> slots_;
};

class ProbeManager {
 public:
  ProbeManager(const NeedleSettings& settings, Metrics& metrics, std::string config_file);
  ~ProbeManager();

  /// Creates the shared maps and fills the filters. Throws BpfError.
  void create_shared_maps();
  /// Loads `inst`'s object, finds every hook's rung, attaches (or, with attach = false, only
  /// loads: `needle check --connect`). Throws BpfError naming the program, with the
  /// verifier's last lines.
  void add_source(Instance* inst, const Entry& entry, bool attach = true);
  /// Runs each source's snapshot iterator and hands every record to `fn`.
  void run_snapshots(const std::function<void(Instance*, std::span<const std::byte>)>& fn);
  /// Destroys every link (no new records); objects stay until destruction.
  void detach_all();

  int ring_fd() const { return ring_.get(); }
  /// Bytes written to the ring and not yet consumed (read from its position pages).
  uint64_t ring_fill() const;
  uint64_t ring_bytes() const { return ring_bytes_; }
  /// Records the kernel dropped for `source_index` since load.
  uint64_t kernel_drops(uint32_t source_index) const;
  const std::vector<HookRung>& rungs(const Instance* inst) const;
  size_t attached_sources() const { return sources_.size(); }

 private:
  struct Source {
    Instance* inst = nullptr;
    std::vector<ProgramInfo> programs;
    BpfObject obj;
    std::vector<BpfLink> links;
    std::vector<std::pair<bpf_program*, BpfLink>> iters;
    std::vector<HookRung> rungs;
    ProgSlots slots;
  };
  struct Attempt {
    BpfObject obj;
    std::vector<BpfLink> links;
    std::vector<std::pair<bpf_program*, BpfLink>> iters;
    ProgSlots slots;
    std::string error;   // empty on success
  };
  /// The shared syscall dispatcher (bpf/syscalls.bpf.c), loaded on the first source that
  /// declares syscall handlers; its rung is then the rung of every source's syscall hooks.
  struct Dispatcher {
    BpfObject obj;
    std::vector<BpfLink> links;
    std::string rung;
    std::string chosen_for;   // the source whose start chose the rung
    int enter_progs = -1;     // owned by obj
    int exit_progs = -1;
    int args = -1;
    int bits = -1;            // the .bss map holding the bitmaps
    bool enter_attached = false;   // sys_enter runs only on the tp rung or for enter handlers
    std::vector<uint64_t> bitmap;
    std::map<std::pair<uint32_t, uint32_t>, std::string> owners;   // (abi, nr) -> who
  };
  Attempt try_load(Instance* inst, std::span<const unsigned char> bytes,
                   const std::vector<ProgramInfo>& programs,
                   const std::map<std::string, std::string>& choice, bool attach,
                   const std::vector<SyscallClaim>& claims = {});
  void ensure_tracefs();
  /// Loads (and with attach, attaches) the dispatcher at `rung`; returns an error text or "".
  std::string load_dispatcher(const std::string& rung, bool attach);
  /// Attaches the dispatcher's sys_enter program (once); returns an error text or "".
  std::string attach_dispatcher_enter();
  /// Reads and checks the spec's syscall table; restricts the ladders of the syscall hooks to the
  /// dispatcher's rung, loading the dispatcher first if needed. Throws BpfError or ConfigError.
  std::vector<SyscallClaim> prepare_syscalls(Instance* inst, const Entry& entry,
                                             const needle_bpf_spec& spec,
                                             const std::vector<ProgramInfo>& programs,
                                             std::map<std::string, std::vector<std::string>>& ladder,
                                             bool attach);
  /// Sets the claimed syscalls' bits for the hooks that got a rung and publishes the bitmap.
  void claim_syscalls(Instance* inst, const std::vector<SyscallClaim>& claims,
                      const std::map<std::string, std::string>& chosen);

  const NeedleSettings& settings_;
  std::string entry_file_;
  Metrics& metrics_;
  Fd ring_;
  Fd drops_;
  Fd filter_exe_;
  Fd filter_cgroup_;
  uint64_t ring_bytes_ = 0;
  const volatile uint64_t* ring_consumer_ = nullptr;   // mapped read-only
  const volatile uint64_t* ring_producer_ = nullptr;
  int ncpus_ = 1;
  bool tracefs_checked_ = false;
  std::unique_ptr<Dispatcher> sys_;   // before sources_: destroyed after every source
  std::vector<std::unique_ptr<Source>> sources_;
};

/// Mounts what a rung needs, if missing: tracefs at /sys/kernel/tracing. Returns an error text
/// or empty.
std::string mount_tracefs();
/// The cgroup v2 mount point ("" when none).
std::string cgroup2_mount();
/// Resolves a cgroup path (absolute, or relative to the cgroup2 mount) to its id.
bool cgroup_id_of(const std::string& path, uint64_t& id, std::string& error);
/// ".rodata", ".data" or ".bss" for an internal map's name, else nullptr.
const char* datasec_of_map(const char* map_name);

}  // namespace needle::core

// Host API slots for needle_bpf (see abi.h); implemented in probes.cc.
needle_rc needle_bpf_set_global(needle_bpf* bpf, const char* name, const void* value, size_t len);
needle_rc needle_bpf_map_update(needle_bpf* bpf, const char* map, const void* key, size_t key_len,
                         const void* value, size_t value_len);
int needle_bpf_map_fd(needle_bpf* bpf, const char* map);

#endif  // NEEDLE_CORE_PROBES_H
