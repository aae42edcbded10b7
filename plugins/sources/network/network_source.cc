#include "network_source.h"

#include "needle/bpf_object.h"
#include "needle/record.h"
#include "net_record.h"

NEEDLE_BPF_OBJECT(network)

namespace needle::network {
namespace {

// Program names as in bpf/network.bpf.c; io_uring is optional.
constexpr needle_bpf_program kPrograms[] = {
    NEEDLE_SYSCALL_HOOK_TYPED("net_connect_exit", "connect"),
    NEEDLE_SYSCALL_HOOK_TYPED("net_accept_exit", "accept"),
    NEEDLE_SYSCALL_HOOK_TYPED("net_listen_exit", "listen"),
    NEEDLE_SYSCALL_HOOK_TYPED("net_socketcall_exit", "socketcall"),
    hook_program("net_uring_complete_tp_btf", "io_uring", "tp_btf", 0, 0),
    hook_program("net_uring_complete_raw_tp", "io_uring", "raw_tp", 0, 0),
    hook_program("net_uring_complete_tp", "io_uring", "tp", 0, 0),
};

constexpr needle_syscall kSyscalls[] = {
    native_syscall(NET_NR64_CONNECT, "connect"),
    native_syscall(NET_NR64_ACCEPT, "accept"),
    native_syscall(NET_NR64_ACCEPT4, "accept"),
    native_syscall(NET_NR64_LISTEN, "listen"),
    compat_syscall(NET_NR32_CONNECT, "connect"),
    compat_syscall(NET_NR32_ACCEPT4, "accept"),
    compat_syscall(NET_NR32_LISTEN, "listen"),
    compat_syscall(NET_NR32_SOCKETCALL, "socketcall"),
};

}  // namespace

NetworkSource::NetworkSource(Host host)
    : Source(host),
      malformed_counter_(
          host.counter("malformed_records", "Ring records the network decoder rejected")) {}

needle_bpf_spec NetworkSource::bpf_spec() {
  return object_spec(needle_bpf_network_bytes(), kPrograms, kSyscalls);
}

needle_rc NetworkSource::decode(std::span<const std::byte> raw, Event& ev) {
  auto rec = decode_net(raw);
  if (!rec) {
    host().add(malformed_counter_);
    host().set_error(rec.error().message);
    return NEEDLE_ERROR;
  }
  fill_event(api(), *rec, ev, &contexts_);
  return NEEDLE_OK;
}

namespace {

// The fields of a network event, resolved once.
struct NetFields {
  explicit NetFields(const needle_host_api* api)
      : type(api, "type"), net(api, "net"), proto(api, "proto"), family(api, "family"),
        src_ip(api, "src_ip"), src_port(api, "src_port"), dst_ip(api, "dst_ip"),
        dst_port(api, "dst_port"), direction(api, "direction"), in_progress(api, "in_progress"),
        route(api, "route") {}
  Field type, net, proto, family, src_ip, src_port, dst_ip, dst_port, direction, in_progress,
      route;
};

}  // namespace

void fill_event(const needle_host_api* api, const NetRecord& rec, Event& ev,
                ProcessContexts* contexts) {
  static const NetFields k(api);
  ev.set(k.type, event_type(rec.kind));
  fill_process(api, ev, rec.task, contexts);
  Event n = ev.object(k.net);
  n.set(k.proto, proto_name(rec.protocol));
  n.set(k.family, family_name(rec.family));
  AddrBuf local, remote, route;
  Sides s = sides(rec, local, remote);
  if (s.src) {
    n.set(k.src_ip, s.src->ip);
    n.set(k.src_port, s.src->port);
  }
  if (s.dst) {
    n.set(k.dst_ip, s.dst->ip);
    n.set(k.dst_port, s.dst->port);
  }
  if (!s.direction.empty()) {
    n.set(k.direction, s.direction);
  }
  if ((rec.flags & NET_F_IN_PROGRESS) != 0) {
    n.set(k.in_progress, true);
  }
  n.set(k.route, route_name(rec, route));
}

}  // namespace needle::network
