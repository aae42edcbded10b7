#include "dns_source.h"

#include "dns_record.h"
#include "needle/bpf_object.h"
#include "needle/record.h"

NEEDLE_BPF_OBJECT(dns)

namespace needle::dns {
namespace {

// Program names as in bpf/dns.bpf.c. Every program attaches to the cgroup2 root. The packet
// hooks are required; the owner hooks are optional (without them events carry no process).
constexpr needle_bpf_program kPrograms[] = {
    hook_program("dns_egress", "egress", "cgroup_skb", 1, NEEDLE_PROG_CGROUP),
    hook_program("dns_ingress", "ingress", "cgroup_skb", 1, NEEDLE_PROG_CGROUP),
    hook_program("dns_connect4", "connect4", "cgroup_sock_addr", 0, NEEDLE_PROG_CGROUP),
    hook_program("dns_connect6", "connect6", "cgroup_sock_addr", 0, NEEDLE_PROG_CGROUP),
    hook_program("dns_sendmsg4", "sendmsg4", "cgroup_sock_addr", 0, NEEDLE_PROG_CGROUP),
    hook_program("dns_sendmsg6", "sendmsg6", "cgroup_sock_addr", 0, NEEDLE_PROG_CGROUP),
};

}  // namespace

PortBitmap port_bitmap(std::span<const uint16_t> ports) {
  PortBitmap bits{};
  for (uint16_t p : ports) {
    bits[p >> 6] |= uint64_t{1} << (p & 63);
  }
  return bits;
}

DnsSource::DnsSource(Host host, DnsOptions options)
    : Source(host),
      options_(std::move(options)),
      malformed_counter_(
          host.counter("malformed_records", "Ring records the dns decoder rejected")),
      parse_error_counter_(host.counter(
          "parse_errors", "DNS messages that were malformed (loops, truncated names, counts)")),
      unowned_counter_(
          host.counter("unowned_packets", "DNS packets of sockets whose process was not known")),
      msg_(std::make_unique<Message>()) {}

needle_bpf_spec DnsSource::bpf_spec() {
  return object_spec(needle_bpf_dns_bytes(), kPrograms);
}

Result<void> DnsSource::bpf_configure(Bpf& bpf) {
  return bpf.set_global("dns_ports", port_bitmap(options_.ports));
}

needle_rc DnsSource::decode(std::span<const std::byte> raw, Event& ev) {
  auto p = decode_packet(raw);
  if (!p) {
    host().add(malformed_counter_);
    host().set_error(p.error().message);
    return NEEDLE_ERROR;
  }
  Parsed parsed = parse_packet(*p, *msg_);
  if (parsed.error == ParseError::kShortHeader || parsed.error == ParseError::kTcpLength) {
    host().add(parse_error_counter_);  // not a DNS message we can tell anything about
    return NEEDLE_SKIP;
  }
  if (parsed.error == ParseError::kNone && parsed.truncated &&
      msg_->error == ParseError::kShortHeader) {
    return NEEDLE_SKIP;  // the capture holds less than a header
  }
  if (parsed.error != ParseError::kNone) {
    host().add(parse_error_counter_);
  }
  if (!p->has_process) {
    host().add(unowned_counter_);
  }
  fill_event(api(), *p, *msg_, parsed, ev, &contexts_);
  return NEEDLE_OK;
}

namespace {

// The fields of a DNS event, resolved once.
struct DnsFields {
  explicit DnsFields(const needle_host_api* api)
      : type(api, "type"), process_exe(api, "process.exe"), net(api, "net"),
        proto(api, "proto"), family(api, "family"), src_ip(api, "src_ip"),
        src_port(api, "src_port"), dst_ip(api, "dst_ip"), dst_port(api, "dst_port"),
        direction(api, "direction"), dns(api, "dns"), id(api, "id"), server_ip(api, "server_ip"),
        server_port(api, "server_port"), query(api, "query"), qtype(api, "qtype"),
        rcode(api, "rcode"), answers(api, "answers"), data(api, "data"), ttl(api, "ttl"),
        error(api, "error") {}
  Field type, process_exe, net, proto, family, src_ip, src_port, dst_ip, dst_port, direction, dns,
      id, server_ip, server_port, query, qtype, rcode, answers, data, ttl, error;
};

}  // namespace

void fill_event(const needle_host_api* api, const Packet& p, const Message& msg,
                const Parsed& parsed, Event& ev, ProcessContexts* contexts) {
  static const DnsFields k(api);
  ev.set(k.type, msg.response ? "dns.response" : "dns.query");
  if (p.has_process) {
    fill_process(api, ev, p.task, contexts);
    if (!p.exe.empty()) {
      ev.set(k.process_exe, p.exe);
      if (p.exe_truncated) {
        ev.mark_truncated("process.exe");
      }
    }
  }
  // The client is the initiator (net.src) and the DNS port's side the server, on both packets.
  const bool client_is_src = p.egress;
  std::array<char, 48> cbuf{};
  std::array<char, 48> sbuf{};
  std::string_view client_ip = format_ip(client_is_src ? p.saddr : p.daddr, p.ipv6, cbuf);
  std::string_view server_ip = format_ip(client_is_src ? p.daddr : p.saddr, p.ipv6, sbuf);
  uint16_t client_port = client_is_src ? p.sport : p.dport;
  uint16_t server_port = client_is_src ? p.dport : p.sport;

  Event net = ev.object(k.net);
  net.set(k.proto, p.tcp ? "tcp" : "udp");
  net.set(k.family, p.ipv6 ? "ipv6" : "ipv4");
  net.set(k.src_ip, client_ip);
  net.set(k.src_port, uint32_t{client_port});
  net.set(k.dst_ip, server_ip);
  net.set(k.dst_port, uint32_t{server_port});
  net.set(k.direction, "outbound");

  Event d = ev.object(k.dns);
  d.set(k.id, uint32_t{msg.id});
  d.set(k.server_ip, server_ip);
  d.set(k.server_port, uint32_t{server_port});
  std::array<char, 16> tbuf{};
  if (msg.has_question) {
    d.set(k.query, msg.qname.view());
    d.set(k.qtype, type_name(msg.qtype, tbuf));
  }
  if (msg.response) {
    d.set(k.rcode, rcode_name(msg.rcode, tbuf));
    Event answers = d.array(k.answers);
    for (size_t i = 0; i < msg.answer_count; ++i) {
      const Answer& a = msg.answers[i];
      Event o = answers.push_object();
      o.set(k.type, type_name(a.type, tbuf));
      if (a.has_data) {
        o.set(k.data, a.data.view());
      }
      o.set(k.ttl, a.ttl);
    }
    if (msg.answers_cut || parsed.truncated) {
      ev.mark_truncated("dns.answers");
    }
  } else if (parsed.truncated) {
    ev.mark_truncated("dns.query");
  }
  if (parsed.error != ParseError::kNone) {
    d.set(k.error, error_name(parsed.error));
  }
}

}  // namespace needle::dns
