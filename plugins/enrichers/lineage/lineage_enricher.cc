#include "lineage_enricher.h"

namespace needle::lineage {

LineageEnricher::Fields::Fields(const needle_host_api* api)
    : process(api, "process"), type(api, "type"), pid(api, "pid"), ppid(api, "ppid"),
      uid(api, "uid"), comm(api, "comm"), entity_id(api, "entity_id"), exe(api, "exe"),
      args(api, "args"), parent(api, "parent"), ancestors(api, "ancestors") {}

LineageEnricher::LineageEnricher(Host host, LineageOptions options)
    : Enricher(host),
      options_(options),
      f_(host.api()),
      table_(options.limits),
      c_evictions_(host.counter("evictions",
                                "processes dropped from the table to stay within "
                                "max_processes")),
      c_expired_(host.counter("expired", "exited processes dropped after exit_grace_ms")),
      c_unknown_parent_(host.counter("unknown_parent",
                                     "events whose parent was not in the "
                                     "table")) {
  scratch_.reserve(options_.limits.max_arg_bytes + 256);
}

LineageEnricher::~LineageEnricher() = default;

void LineageEnricher::chain_of(uint32_t pid, uint32_t depth, Chain& out) {
  // The entries fill_lineage reads for a child of `pid`: pid, then its ancestors up to depth.
  out.clear();
  uint32_t cur = pid;
  for (uint32_t i = 0; i <= depth && cur != 0; ++i) {
    const ProcessInfo* p = table_.find(cur, false);
    out.emplace_back(cur, p != nullptr ? p->version : 0);
    if (p == nullptr || p->ppid == cur) {
      break;
    }
    cur = p->ppid;
  }
}

template <typename Fill>
const LineageEnricher::Template* LineageEnricher::template_of(Templates& cache, uint32_t key,
                                                              uint32_t depth, Fill fill) {
  auto it = cache.find(key);
  if (it != cache.end() && it->second.generation != generation_ && it->second.tmpl) {
    chain_of(key, depth, chain_scratch_);
    if (chain_scratch_ == it->second.chain) {
      it->second.generation = generation_;   // what it was built from has not changed
    }
  }
  if (it == cache.end() || it->second.generation != generation_) {
    // First event for this key since the table changed: the caller sets the fields. A template
    // is built only when a second one comes before the next change, so a stream where process
    // events interleave with the rest (each one changes the table) pays nothing for it.
    if (it == cache.end() && cache.size() >= kTemplateCache) {
      // Full: one entry makes room (dropping them all would rebuild every template when more
      // keys than it holds take turns).
      cache.erase(cache.begin());
    }
    Template& t = cache[key];
    t.tmpl.reset();
    t.generation = generation_;
    return nullptr;
  }
  Template& t = it->second;
  if (!t.tmpl) {
    t.tmpl = TemplateEvent(api(), host().raw());
    if (!t.tmpl) {
      return nullptr;   // no templates from this host: the caller sets the fields itself
    }
    fill(t.tmpl.view(), t);
    chain_of(key, depth, t.chain);
  }
  return &t;
}

LineageEnricher::Kind LineageEnricher::kind_of(std::string_view type) {
  if (!type.starts_with("process.")) {
    return Kind::kOther;
  }
  type.remove_prefix(8);
  if (type == "exec") {
    return Kind::kExec;
  }
  if (type == "fork") {
    return Kind::kFork;
  }
  if (type == "exit") {
    return Kind::kExit;
  }
  if (type == "snapshot") {
    return Kind::kSnapshot;
  }
  return Kind::kOther;
}

void LineageEnricher::copy_task_fields(Event proc, ProcessInfo& info) {
  if (auto ppid = proc.get_uint(f_.ppid)) {
    info.ppid = static_cast<uint32_t>(*ppid);
  }
  if (auto uid = proc.get_uint(f_.uid)) {
    info.uid = static_cast<uint32_t>(*uid);
    info.has_uid = true;
  }
  if (auto comm = proc.get_str(f_.comm)) {
    info.set_comm(*comm);
  }
  if (auto entity = proc.get_str(f_.entity_id)) {
    info.set_entity(*entity);
  }
}

void LineageEnricher::read_args(Event proc, ProcessInfo& info) {
  Event args = proc.find(f_.args);
  if (args.type() != NEEDLE_NODE_ARRAY) {
    return;
  }
  // Stop at the byte bound: members are reached by index, so a long vector costs only what
  // is kept.
  scratch_.clear();
  const size_t limit = options_.limits.max_arg_bytes;
  const size_t n = args.size();
  bool truncated = false;
  for (size_t i = 0; i < n; ++i) {
    if (scratch_.size() >= limit) {
      truncated = true;
      break;
    }
    if (i != 0) {
      scratch_.push_back('\0');
    }
    scratch_.append(args.child(i).str().value_or(""));
  }
  info.set_args(scratch_, limit, truncated);
}

ProcessInfo& LineageEnricher::learn(Event& ev, Event proc, Kind kind, uint32_t pid) {
  bool evicted = false;
  ProcessInfo* info = nullptr;
  auto entity = proc.get_str(f_.entity_id);
  if (kind == Kind::kFork) {
    info = &table_.fresh(pid, evicted);
  } else {
    info = table_.find(pid);
    if (info != nullptr && entity && info->has_entity && info->entity_view() != *entity) {
      info = nullptr;  // the pid was reused and we missed the new process's fork
    }
    if (info == nullptr) {
      info = &table_.fresh(pid, evicted);
    } else if (kind == Kind::kOther) {
      return *info;  // known: other sources' events do not change it
    }
  }
  ++generation_;   // the table changes below: every cached lineage may be stale
  info->version = ++versions_;
  if (evicted) {
    host().add(c_evictions_);
  }
  copy_task_fields(proc, *info);
  if (auto exe = proc.get_str(f_.exe)) {
    info->exe.assign(exe->data(), exe->size());
  }
  if (kind == Kind::kExec || kind == Kind::kSnapshot) {
    read_args(proc, *info);
  } else if (kind == Kind::kFork && info->ppid != 0) {
    // A forked child runs its parent's program with its parent's arguments until it execs.
    if (const ProcessInfo* parent = table_.find(info->ppid, false)) {
      if (parent->args_known) {
        info->args.assign(parent->args);
        info->args_known = true;
        info->args_truncated = parent->args_truncated;
      }
    }
  }
  (void)ev;
  return *info;
}

void LineageEnricher::push_args(Event obj, const Field& field, const ProcessInfo& info) {
  Event arr = obj.array(field);
  std::string_view rest = info.args;
  if (rest.empty()) {
    return;
  }
  while (true) {
    size_t nul = rest.find('\0');
    arr.push(rest.substr(0, nul));
    if (nul == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(nul + 1);
  }
}

void LineageEnricher::give_context(Event proc, uint32_t pid, const ProcessInfo& info, Event& ev) {
  // What the table knows and the event may lack (exe, args, ppid) is built once per process into
  // a template and merged in one call: the event's own fields stay.
  const auto fill = [&](Event t, Template&) {
    Event p = t.object(f_.process);
    if (!info.exe.empty()) {
      p.set(f_.exe, info.exe);
    }
    if (info.args_known) {
      push_args(p, f_.args, info);
    }
    if (info.ppid != 0) {
      p.set(f_.ppid, info.ppid);
    }
  };
  if (const Template* t = template_of(contexts_, pid, 0, fill)) {
    // Truncated args are marked only when they are the ones given.
    const bool mark = info.args_truncated && !proc.find(f_.args).valid();
    ev.merge(f_.process, t->tmpl.find(f_.process));
    if (mark) {
      ev.mark_truncated("process.args");
    }
    return;
  }
  if (!info.exe.empty() && !proc.find(f_.exe).valid()) {
    proc.set(f_.exe, info.exe);
  }
  if (info.args_known && !proc.find(f_.args).valid()) {
    push_args(proc, f_.args, info);
    if (info.args_truncated) {
      ev.mark_truncated("process.args");
    }
  }
  if (info.ppid != 0 && !proc.find(f_.ppid).valid()) {
    proc.set(f_.ppid, info.ppid);
  }
}

void LineageEnricher::give_parent(Event& ev, uint32_t ppid) {
  bool unknown = false;
  bool truncated = false;
  const auto fill = [&](Event t, Template& l) {
    fill_lineage(t, ppid, l.unknown, l.args_truncated);
  };
  if (const Template* l = template_of(lineages_, ppid, options_.depth, fill)) {
    (void)table_.find(ppid);   // the parent stays recently used, as when read from the table
    ev.copy(f_.parent, l->tmpl.find(f_.parent));
    if (options_.depth != 0) {
      ev.copy(f_.ancestors, l->tmpl.find(f_.ancestors));
    }
    unknown = l->unknown;
    truncated = l->args_truncated;
  } else {
    fill_lineage(ev, ppid, unknown, truncated);
  }
  if (unknown) {
    host().add(c_unknown_parent_);
  }
  if (truncated) {
    ev.mark_truncated("parent.args");
  }
}

void LineageEnricher::fill_lineage(Event& target, uint32_t ppid, bool& unknown,
                                   bool& args_truncated) {
  Event parent = target.object(f_.parent);
  parent.set(f_.pid, ppid);
  const ProcessInfo* p = table_.find(ppid);
  unknown = p == nullptr;
  args_truncated = false;
  if (p != nullptr) {
    if (!p->exe.empty()) {
      parent.set(f_.exe, p->exe);
    }
    if (p->args_known) {
      push_args(parent, f_.args, *p);
      args_truncated = p->args_truncated;
    }
    if (p->has_uid) {
      parent.set(f_.uid, p->uid);
    }
    if (p->comm_len != 0) {
      parent.set(f_.comm, p->comm_view());
    }
    if (p->has_entity) {
      parent.set(f_.entity_id, p->entity_view());
    }
  }
  if (options_.depth == 0) {
    return;
  }
  // ancestors[0] is the parent, then its parent, up to `depth` entries or the first process
  // the table does not know (listed by pid only).
  Event ancestors = target.array(f_.ancestors);
  uint32_t cur = ppid;
  for (uint32_t i = 0; i < options_.depth && cur != 0; ++i) {
    Event a = ancestors.push_object();
    a.set(f_.pid, cur);
    const ProcessInfo* info = i == 0 ? p : table_.find(cur, false);
    if (info == nullptr) {
      break;
    }
    if (!info->exe.empty()) {
      a.set(f_.exe, info->exe);
    }
    if (info->ppid == cur) {
      break;
    }
    cur = info->ppid;
  }
}

needle_rc LineageEnricher::enrich(Event& ev, uint64_t& deadline_ns) {
  (void)deadline_ns;
  Event proc = ev.find(f_.process);
  auto pid_v = proc.get_uint(f_.pid);
  if (!pid_v || *pid_v == 0) {
    return NEEDLE_OK;
  }
  const auto pid = static_cast<uint32_t>(*pid_v);
  const Kind kind = kind_of(ev.get_str(f_.type).value_or(""));
  uint64_t now = 0;   // the clock is read only when the table has a use for it
  if (table_.exits_pending() || kind == Kind::kExit) {
    now = host().now_boot_ns();
    if (size_t n = table_.expire(now); n != 0) {
      host().add(c_expired_, n);
      ++generation_;
    }
  }
  ProcessInfo& info = learn(ev, proc, kind, pid);
  if (kind == Kind::kOther) {
    give_context(proc, pid, info, ev);
  }
  uint32_t ppid = info.ppid;
  if (auto event_ppid = proc.get_uint(f_.ppid)) {
    ppid = static_cast<uint32_t>(*event_ppid);
  }
  if (ppid != 0) {
    give_parent(ev, ppid);
  }
  if (kind == Kind::kExit) {
    table_.exited(pid, now);
    ++generation_;
  }
  return NEEDLE_OK;
}

}  // namespace needle::lineage
