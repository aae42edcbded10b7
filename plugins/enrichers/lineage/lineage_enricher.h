// enricher/lineage: `parent` and `ancestors` of every event from a process table fed by the
// process source's events (exec, fork, exit and the start snapshot), and the process context
// (`process.exe`, `process.args`, `process.ppid`) of events whose source lacks it.
//
// Threads: everything runs on the pipeline thread, in event order (no worker, no lock). The
// table is bounded (max_processes, LRU eviction counted as `evictions`); an exited process stays
// `exit_grace_ms` so the late events of a short-lived process still find it and its parent.
#ifndef NEEDLE_ENRICHERS_LINEAGE_ENRICHER_H
#define NEEDLE_ENRICHERS_LINEAGE_ENRICHER_H

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "needle/plugin.h"
#include "process_table.h"

namespace needle::lineage {

struct LineageOptions {
  uint32_t depth = 8;  // ancestors listed (0: no `ancestors`)
  TableLimits limits;
};

class LineageEnricher : public Enricher {
 public:
  LineageEnricher(Host host, LineageOptions options);
  ~LineageEnricher() override;
  LineageEnricher(const LineageEnricher&) = delete;
  LineageEnricher& operator=(const LineageEnricher&) = delete;

  needle_rc enrich(Event& ev, uint64_t& deadline_ns) override;

  const ProcessTable& table() const { return table_; }

 private:
  enum class Kind { kOther, kExec, kFork, kExit, kSnapshot };
  static Kind kind_of(std::string_view type);

  ProcessInfo& learn(Event& ev, Event proc, Kind kind, uint32_t pid);
  void copy_task_fields(Event proc, ProcessInfo& info);
  void read_args(Event proc, ProcessInfo& info);
  void give_context(Event proc, uint32_t pid, const ProcessInfo& info, Event& ev);
  void give_parent(Event& ev, uint32_t ppid);
  // Writes `parent` and `ancestors` of a child of `ppid` into `target`; tells whether the parent
  // was unknown and its args truncated (the caller counts and marks).
  void fill_lineage(Event& target, uint32_t ppid, bool& unknown, bool& args_truncated);

  // Fields built once into a template event (from the host's event_new, never submitted) and
  // copied into each event while the table has not changed since: parent and ancestors by
  // parent pid, a process's exe, args and ppid by pid (merged: the event's own stay). Under a
  // flood of one process's file or network events this replaces some 30 field sets per event
  // with two copies and a merge, and from the second copy of
  // an unchanged template on the core shares the copied subtree (encoded once) instead of
  // copying it. Built on a key's second event after a change, not its first.
  // A template is checked against the table by generation first (nothing changed since); after
  // a change anywhere it stays when the entries it was built from (its key and, for a lineage,
  // the ancestors) are the same versions, so another process's exec or exit does not rebuild it.
  using Chain = std::vector<std::pair<uint32_t, uint64_t>>;   // pid, version (0: not in table)
  struct Template {
    TemplateEvent tmpl;
    uint64_t generation = 0;
    bool unknown = false;
    bool args_truncated = false;
    Chain chain;
  };
  void chain_of(uint32_t pid, uint32_t depth, Chain& out);
  using Templates = std::unordered_map<uint32_t, Template>;
  static constexpr size_t kTemplateCache = 1024;
  // The template for `key` in `cache`, built by fill(Event, Template&) when due; nullptr when
  // the caller sets the fields itself.
  template <typename Fill>
  const Template* template_of(Templates& cache, uint32_t key, uint32_t depth, Fill fill);
  void push_args(Event parent_obj, const Field& field, const ProcessInfo& info);

  // Every field this enricher reads or writes, resolved once.
  struct Fields {
    explicit Fields(const needle_host_api* api);
    Field process, type, pid, ppid, uid, comm, entity_id, exe, args, parent, ancestors;
  };

  LineageOptions options_;
  Fields f_;
  ProcessTable table_;
  std::string scratch_;
  Templates lineages_;   // by parent pid: parent, ancestors
  Templates contexts_;   // by pid: the process's exe, args and ppid, merged into `process`
  uint64_t generation_ = 1;   // bumped by every change to the table
  uint64_t versions_ = 0;     // ProcessInfo::version: bumped by each change to an entry
  Chain chain_scratch_;
  uint32_t c_evictions_;
  uint32_t c_expired_;
  uint32_t c_unknown_parent_;
};

}  // namespace needle::lineage

#endif  // NEEDLE_ENRICHERS_LINEAGE_ENRICHER_H
