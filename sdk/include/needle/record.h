// User-space side of the common record header: layout checks and the helpers every source uses
// to turn a record's task context into the event's `process` fields.
#ifndef NEEDLE_RECORD_H
#define NEEDLE_RECORD_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "needle/abi.h"
#include "needle/bpf/record.h"
#include "needle/event.h"

static_assert(sizeof(needle_task_ctx) == 64, "needle_task_ctx layout");
static_assert(offsetof(needle_task_ctx, cgroup_id) == 32, "needle_task_ctx layout");
static_assert(offsetof(needle_task_ctx, comm) == 48, "needle_task_ctx layout");
static_assert(sizeof(needle_record_header) == NEEDLE_RECORD_HEADER_SIZE, "header layout");
static_assert(offsetof(needle_record_header, boot_ns) == 8, "header layout");
static_assert(offsetof(needle_record_header, source) == 16, "header layout");
static_assert(offsetof(needle_record_header, task) == 24, "header layout");

namespace needle {

/// Reads a fixed-size record of type T from raw ring bytes, or nullptr when `raw` is too short
/// or its header claims another size. T must start with needle_record_header.
template <typename T>
bool read_record(std::span<const std::byte> raw, T& out) {
  if (raw.size() < sizeof(T)) {
    return false;
  }
  std::memcpy(&out, raw.data(), sizeof(T));
  return out.hdr.size <= raw.size();
}

/// Length of a NUL-terminated string inside a fixed buffer.
inline std::string_view fixed_str(const char* buf, size_t cap) {
  return std::string_view(buf, strnlen(buf, cap));
}

/// entity_id: a stable hash of host id, tgid and start time (FNV-1a 64, as 16 hex digits).
/// Every plugin that names a process (its own or a parent) uses this one function.
inline void entity_id(std::string_view host_id, uint32_t tgid, uint64_t start_ns, char out[17]) {
  uint64_t h = 14695981039346656037ull;   // FNV-1a 64 offset basis
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  mix(host_id.data(), host_id.size());
  mix(&tgid, sizeof tgid);
  mix(&start_ns, sizeof start_ns);
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[h & 0xf];
    h >>= 4;
  }
  out[16] = '\0';
}

/// The fields fill_process sets, resolved once.
struct ProcessFields {
  explicit ProcessFields(const needle_host_api* api)
      : process(api, "process"), pid(api, "pid"), tid(api, "tid"), vpid(api, "vpid"),
        ppid(api, "ppid"), uid(api, "uid"), gid(api, "gid"), euid(api, "euid"),
        comm(api, "comm"), cgroup_id(api, "cgroup_id"), start_time(api, "start_time"),
        entity_id(api, "entity_id") {}
  Field process, pid, tid, vpid, ppid, uid, gid, euid, comm, cgroup_id, start_time, entity_id;
};

inline const ProcessFields& process_fields(const needle_host_api* api) {
  static const ProcessFields f(api);
  return f;
}

/// Fills `process.*` from a record's task context: pid, tid, ppid, uid, gid, euid, comm,
/// cgroup_id, start_time, entity_id, and vpid when the task is in a child PID namespace.
inline void fill_process(const needle_host_api* api, Event ev, const needle_task_ctx& t) {
  const ProcessFields& f = process_fields(api);
  Event p = ev.object(f.process);
  p.set(f.pid, t.tgid);
  p.set(f.tid, t.pid);
  if (t.vtgid != 0 && t.vtgid != t.tgid) {
    p.set(f.vpid, t.vtgid);
  }
  p.set(f.ppid, t.ppid);
  p.set(f.uid, t.uid);
  p.set(f.gid, t.gid);
  p.set(f.euid, t.euid);
  p.set(f.comm, fixed_str(t.comm, sizeof t.comm));
  p.set(f.cgroup_id, t.cgroup_id);
  char when[40];
  size_t n = api->format_time(t.start_ns, when, sizeof when);
  p.set(f.start_time, std::string_view(when, n));
  char id[17];
  entity_id(api->host_id(), t.tgid, t.start_ns, id);
  p.set(f.entity_id, std::string_view(id, 16));
}

/// What ProcessContexts and FieldTemplates make their templates with: the host (not copied),
/// and the slot logic they share.
class TemplateMaker {
 public:
  TemplateMaker(const needle_host_api* api, needle_host* host) : api_(api), host_(host) {}
  TemplateMaker(const TemplateMaker&) = delete;
  TemplateMaker& operator=(const TemplateMaker&) = delete;

 protected:
  /// The template of a value made from a key, one per slot: none on a key's first time
  /// (`again` false: the slot's template, if any, is dropped), built by fill(Event) on its
  /// second, kept while the key recurs. nullptr when the caller makes the value directly (a
  /// first time, or no templates from this host).
  template <typename Fill>
  const TemplateEvent* recurring(TemplateEvent& tmpl, bool again, Fill fill) const {
    if (!again) {
      tmpl.reset();   // another key now: set directly, a template if it comes again
      return nullptr;
    }
    if (!tmpl) {
      tmpl = TemplateEvent(api_, host_);
      if (!tmpl) {
        return nullptr;   // no templates from this host
      }
      fill(tmpl.view());
    }
    return &tmpl;
  }

  const needle_host_api* api_;
  needle_host* host_;
};

/// fill_process for a source whose events come in runs from one task (a file or network flood):
/// the `process` object of a task context seen a second time is built once into a template
/// event (the host's event_new, never submitted) and copied from then on, which the core turns
/// into one subtree shared by the events and encoded once (ABI 1.2's ev_copy_f). Other
/// enrichers' additions to `process` (the lineage enricher's exe and args) are shared too when
/// they repeat. A direct-mapped table of kSlots task contexts by thread id; decode thread only.
class ProcessContexts : public TemplateMaker {
 public:
  static constexpr size_t kSlots = 64;
  using TemplateMaker::TemplateMaker;

  /// As fill_process(api, ev, t). An event that already has `process` fields gets them set
  /// among those, as fill_process does.
  void fill(Event ev, const needle_task_ctx& t) {
    const ProcessFields& f = process_fields(api_);
    Slot& s = slots_[(t.pid * 0x9e3779b1u) >> (32 - kSlotBits)];
    const bool again = s.seen && std::memcmp(&s.ctx, &t, sizeof t) == 0;
    s.ctx = t;
    s.seen = true;
    const TemplateEvent* tmpl =
        recurring(s.tmpl, again, [&](Event v) { fill_process(api_, v, t); });
    // An event with process fields already gets them set among those (a copy would replace).
    if (tmpl == nullptr || ev.find(f.process).valid()) {
      fill_process(api_, ev, t);
      return;
    }
    ev.copy(f.process, tmpl->find(f.process));
  }

 private:
  static constexpr unsigned kSlotBits = 6;
  static_assert(kSlots == size_t{1} << kSlotBits);
  struct Slot {
    needle_task_ctx ctx{};
    TemplateEvent tmpl;
    bool seen = false;
  };

  std::array<Slot, kSlots> slots_{};
};

/// A field whose value recurs, made from a key (a flag word's `flags` array from the word): made
/// by `fill` into a template event from the key's second time on and copied from there, which
/// the core turns into one subtree shared by the events and encoded once (ABI 1.2's ev_copy_f).
/// kSlots direct-mapped slots by key; decode thread only.
class FieldTemplates : public TemplateMaker {
 public:
  static constexpr size_t kSlots = 16;
  using TemplateMaker::TemplateMaker;

  /// What fill(obj, field) sets, for the value made from `key`: fill must depend on nothing
  /// else (it may set nothing; then nothing is copied either).
  template <typename Fill>
  void set(Event obj, const Field& field, uint64_t key, Fill fill) {
    Slot& s = slots_[(key * 0x9e3779b97f4a7c15ull) >> (64 - kSlotBits)];
    const bool again = s.seen && s.key == key;
    s.key = key;
    s.seen = true;
    const TemplateEvent* tmpl = recurring(s.tmpl, again, [&](Event v) { fill(v, field); });
    if (tmpl == nullptr) {
      fill(obj, field);
      return;
    }
    if (Event made = tmpl->find(field); made.valid()) {
      obj.copy(field, made);
    }
  }

 private:
  static constexpr unsigned kSlotBits = 4;
  static_assert(kSlots == size_t{1} << kSlotBits);
  struct Slot {
    uint64_t key = 0;
    bool seen = false;
    TemplateEvent tmpl;
  };

  std::array<Slot, kSlots> slots_{};
};

/// fill_process through `contexts` when there is one.
inline void fill_process(const needle_host_api* api, Event ev, const needle_task_ctx& t,
                         ProcessContexts* contexts) {
  if (contexts != nullptr) {
    contexts->fill(ev, t);
  } else {
    fill_process(api, ev, t);
  }
}

}  // namespace needle

#endif  // NEEDLE_RECORD_H
