#include "process_source.h"

#include <cstddef>

#include "needle/bpf_object.h"
#include "needle/record.h"
#include "process_record.h"

NEEDLE_BPF_OBJECT(process)

static_assert(needle::process::ProcessOptions::kMaxArgBytesLimit == PROCESS_ARGS_MAX,
              "max_arg_bytes is bounded by the kernel side's argument room");

namespace needle::process {
namespace {

// Each hook's rungs, best first (program names as in bpf/process.bpf.c). A "+typed" rung reads
// the task and its files with direct loads (bpf_rdonly_cast, Linux 6.2+); the plain one below
// it remains for older kernels.
constexpr needle_bpf_program kPrograms[] = {
    hook_program("process_exec_tp_btf_typed", "exec", "tp_btf+typed", 1),
    hook_program("process_exec_tp_btf", "exec", "tp_btf", 1),
    hook_program("process_exec_raw_tp_typed", "exec", "raw_tp+typed", 1),
    hook_program("process_exec_raw_tp", "exec", "raw_tp", 1),
    hook_program("process_exec_tp", "exec", "tp", 1),
    hook_program("process_fork_tp_btf_typed", "fork", "tp_btf+typed", 1),
    hook_program("process_fork_tp_btf", "fork", "tp_btf", 1),
    hook_program("process_fork_raw_tp_typed", "fork", "raw_tp+typed", 1),
    hook_program("process_fork_raw_tp", "fork", "raw_tp", 1),
    hook_program("process_fork_tp", "fork", "tp", 1),
    hook_program("process_exit_tp_btf", "exit", "tp_btf", 1),
    hook_program("process_exit_raw_tp", "exit", "raw_tp", 1),
    hook_program("process_exit_tp", "exit", "tp", 1),
    hook_program("process_snapshot_iter_s", "snapshot", "iter.s", 0, NEEDLE_PROG_ITER),
    hook_program("process_snapshot_iter", "snapshot", "iter", 0, NEEDLE_PROG_ITER),
};

}  // namespace

ProcessSource::ProcessSource(Host host, ProcessOptions options)
    : Source(host),
      options_(options),
      malformed_counter_(
          host.counter("malformed_records", "Ring records the process decoder rejected")) {}

needle_bpf_spec ProcessSource::bpf_spec() {
  return object_spec(needle_bpf_process_bytes(), kPrograms);
}

Result<void> ProcessSource::bpf_configure(Bpf& bpf) {
  if (auto r = bpf.set_global("max_args", options_.max_args); !r) {
    return r;
  }
  return bpf.set_global("max_arg_bytes", options_.max_arg_bytes);
}

needle_rc ProcessSource::decode(std::span<const std::byte> raw, Event& ev) {
  auto rec = decode_process(raw);
  if (!rec) {
    host().add(malformed_counter_);
    host().set_error(rec.error().message);
    return NEEDLE_ERROR;
  }
  fill_event(api(), *rec, ev, script_buf_);
  return NEEDLE_OK;
}

namespace {

// The fields of a process event, resolved once.
struct ProcFields {
  explicit ProcFields(const needle_host_api* api)
      : type(api, "type"), process(api, "process"), exit_signal(api, "exit_signal"),
        exit_code(api, "exit_code"), exe(api, "exe"), fileless(api, "fileless"),
        args(api, "args"), cwd(api, "cwd"), script(api, "script") {}
  Field type, process, exit_signal, exit_code, exe, fileless, args, cwd, script;
};

}  // namespace

void fill_event(const needle_host_api* api, const ProcessRecord& rec, Event& ev,
                std::string& script_buf) {
  static const ProcFields k(api);
  ev.set(k.type, event_type(rec.kind));
  fill_process(api, ev, rec.task);
  Event p = ev.object(k.process);
  if (rec.kind == Kind::kExit) {
    if (rec.exit_signal) {
      p.set(k.exit_signal, uint32_t{*rec.exit_signal});
    } else if (rec.exit_code) {
      p.set(k.exit_code, uint32_t{*rec.exit_code});
    }
    return;
  }
  if (!rec.exe.empty()) {
    p.set(k.exe, rec.exe);
    if (rec.exe_truncated) {
      ev.mark_truncated("process.exe");
    }
  }
  if (rec.fileless()) {
    p.set(k.fileless, true);
  }
  if (rec.kind == Kind::kFork) {
    return;
  }
  if (rec.args) {
    Event args = p.array(k.args);
    for (std::string_view arg : *rec.args) {
      args.push(arg);
    }
    if (rec.args_truncated) {
      ev.mark_truncated("process.args");
    }
  }
  if (rec.cwd && !rec.cwd->empty()) {
    p.set(k.cwd, *rec.cwd);
    if (rec.cwd_truncated) {
      ev.mark_truncated("process.cwd");
    }
  }
  if (!rec.script.empty()) {
    p.set(k.script, absolute_script(rec, script_buf));
    if (rec.script_truncated) {
      ev.mark_truncated("process.script");
    }
  }
}

}  // namespace needle::process
