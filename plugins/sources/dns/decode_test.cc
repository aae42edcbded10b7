// The dns source's record decoder and event mapping, on records built the way bpf/dns.bpf.c
// writes them: fields, the client/server roles on both directions, a capture cut short (answers
// marked truncated, no error), a malformed message (event with dns.error) and malformed records.
#include "decode.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dns_record.h"
#include "dns_source.h"
#include "encode.h"
#include "event.h"
#include "host.h"

namespace needle::dns {
namespace {

std::vector<std::byte> dns_query(uint16_t id, const std::string& name, uint16_t type, bool response,
                                 const std::vector<uint32_t>& a_answers = {}) {
  std::vector<std::byte> b;
  auto u8 = [&](unsigned v) { b.push_back(static_cast<std::byte>(v)); };
  auto u16 = [&](unsigned v) {
    u8((v >> 8) & 0xff);
    u8(v & 0xff);
  };
  u16(id);
  u16(response ? 0x8183 : 0x0100);  // response: NXDOMAIN when no answers
  u16(1);
  u16(static_cast<unsigned>(a_answers.size()));
  u16(0);
  u16(0);
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    std::string label = name.substr(start, dot == std::string::npos ? dot : dot - start);
    u8(static_cast<unsigned>(label.size()));
    for (char c : label) {
      u8(static_cast<unsigned char>(c));
    }
    start = dot == std::string::npos ? name.size() : dot + 1;
  }
  u8(0);
  u16(type);
  u16(1);
  if (!a_answers.empty()) {
    b[3] = std::byte{0x80};  // NOERROR
  }
  for (uint32_t a : a_answers) {
    u16(0xc00c);
    u16(1);
    u16(1);
    u16(0);
    u16(30);
    u16(4);
    u16(a >> 16);
    u16(a & 0xffff);
  }
  return b;
}

struct RecordSpec {
  bool egress = true;
  bool tcp = false;
  bool process = true;
  std::string exe = "/usr/bin/needle-dig";
  uint32_t payload_len = 0;  // 0: the data's size
};

std::vector<std::byte> record(const std::vector<std::byte>& data, const RecordSpec& s) {
  dns_packet_record rec{};
  rec.hdr.kind = DNS_KIND_PACKET;
  rec.hdr.version = DNS_RECORD_VERSION;
  rec.hdr.boot_ns = 1'000'000'000;
  if (s.process) {
    rec.hdr.task.tgid = 4242;
    rec.hdr.task.pid = 4243;
    rec.hdr.task.ppid = 1;
    std::memcpy(rec.hdr.task.comm, "needle-dig", 10);
    rec.flags |= DNS_F_PROCESS;
  }
  uint32_t client = htonl(0x7f000001);
  uint32_t server = htonl(0x7f000035);
  std::memcpy(s.egress ? rec.saddr : rec.daddr, &client, 4);
  std::memcpy(s.egress ? rec.daddr : rec.saddr, &server, 4);
  rec.sport = s.egress ? 40000 : 53;
  rec.dport = s.egress ? 53 : 40000;
  rec.flags |= (s.egress ? DNS_F_EGRESS : 0) | (s.tcp ? DNS_F_TCP : 0);
  rec.payload_len = s.payload_len ? s.payload_len : static_cast<uint32_t>(data.size());
  std::string exe = s.process ? s.exe : "";
  rec.exe_len = static_cast<uint16_t>(exe.size());
  rec.data_len = static_cast<uint16_t>(data.size());
  rec.hdr.size = static_cast<uint32_t>(sizeof rec + exe.size() + data.size());
  std::vector<std::byte> out(sizeof rec);
  std::memcpy(out.data(), &rec, sizeof rec);
  for (char c : exe) {
    out.push_back(static_cast<std::byte>(c));
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

nlohmann::json to_event(const std::vector<std::byte>& raw, Parsed* parsed_out = nullptr) {
  auto p = decode_packet(raw);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  if (!p.ok()) {
    return {};
  }
  auto msg = std::make_unique<Message>();
  Parsed parsed = parse_packet(*p, *msg);
  if (parsed_out) {
    *parsed_out = parsed;
  }
  core::Event ev;
  Event view(core::host_api(), core::as_abi(&ev));
  fill_event(core::host_api(), *p, *msg, parsed, view);
  std::string json;
  core::encode_json(ev, json);
  return nlohmann::json::parse(json);
}

TEST(DnsDecode, QueryEventCarriesProcessDnsAndNetFields) {
  auto ev = to_event(record(dns_query(0x1234, "needle.test", 1, false), {}));
  EXPECT_EQ(ev["type"], "dns.query");
  EXPECT_EQ(ev["process"]["pid"], 4242);
  EXPECT_EQ(ev["process"]["tid"], 4243);
  EXPECT_EQ(ev["process"]["exe"], "/usr/bin/needle-dig");
  EXPECT_EQ(ev["process"]["comm"], "needle-dig");
  EXPECT_EQ(ev["dns"]["id"], 0x1234);
  EXPECT_EQ(ev["dns"]["query"], "needle.test");
  EXPECT_EQ(ev["dns"]["qtype"], "A");
  EXPECT_EQ(ev["dns"]["server_ip"], "127.0.0.53");
  EXPECT_EQ(ev["dns"]["server_port"], 53);
  EXPECT_FALSE(ev["dns"].contains("rcode"));  // only answers have one
  EXPECT_FALSE(ev["dns"].contains("answers"));
  EXPECT_EQ(ev["net"]["proto"], "udp");
  EXPECT_EQ(ev["net"]["family"], "ipv4");
  EXPECT_EQ(ev["net"]["src_ip"], "127.0.0.1");
  EXPECT_EQ(ev["net"]["src_port"], 40000);
  EXPECT_EQ(ev["net"]["dst_port"], 53);
  EXPECT_FALSE(ev.contains("truncated"));
}

TEST(DnsDecode, ResponseKeepsTheClientAsSourceAndListsAnswers) {
  RecordSpec s;
  s.egress = false;
  s.tcp = false;
  auto ev = to_event(record(dns_query(7, "two.test", 1, true, {0x0a000001, 0x0a000002}), s));
  EXPECT_EQ(ev["type"], "dns.response");
  EXPECT_EQ(ev["dns"]["rcode"], "NOERROR");
  EXPECT_EQ(ev["dns"]["server_ip"], "127.0.0.53");
  EXPECT_EQ(ev["net"]["src_ip"], "127.0.0.1");  // the initiator, on the answer too
  EXPECT_EQ(ev["net"]["src_port"], 40000);
  ASSERT_EQ(ev["dns"]["answers"].size(), 2u);
  EXPECT_EQ(ev["dns"]["answers"][0]["type"], "A");
  EXPECT_EQ(ev["dns"]["answers"][0]["data"], "10.0.0.1");
  EXPECT_EQ(ev["dns"]["answers"][0]["ttl"], 30);
  EXPECT_EQ(ev["dns"]["answers"][1]["data"], "10.0.0.2");
}

TEST(DnsDecode, NxdomainHasAnEmptyAnswerList) {
  RecordSpec s;
  s.egress = false;
  auto ev = to_event(record(dns_query(7, "nope.test", 28, true), s));
  EXPECT_EQ(ev["dns"]["rcode"], "NXDOMAIN");
  EXPECT_EQ(ev["dns"]["qtype"], "AAAA");
  EXPECT_TRUE(ev["dns"]["answers"].empty());
}

TEST(DnsDecode, TcpMessageIsReadAfterItsLengthPrefix) {
  auto msg = dns_query(99, "tcp.test", 16, false);
  std::vector<std::byte> seg{static_cast<std::byte>(msg.size() >> 8),
                             static_cast<std::byte>(msg.size() & 0xff)};
  seg.insert(seg.end(), msg.begin(), msg.end());
  RecordSpec s;
  s.tcp = true;
  auto ev = to_event(record(seg, s));
  EXPECT_EQ(ev["net"]["proto"], "tcp");
  EXPECT_EQ(ev["dns"]["id"], 99);
  EXPECT_EQ(ev["dns"]["query"], "tcp.test");
  EXPECT_EQ(ev["dns"]["qtype"], "TXT");
}

TEST(DnsDecode, AnswersCutByTheCaptureAreMarkedTruncatedNotAnError) {
  auto msg = dns_query(5, "big.test", 1, true, {1, 2, 3});
  size_t full = msg.size();
  msg.resize(full - 10);  // the kernel copied only a prefix
  RecordSpec s;
  s.egress = false;
  s.payload_len = static_cast<uint32_t>(full);
  Parsed parsed;
  auto ev = to_event(record(msg, s), &parsed);
  EXPECT_EQ(parsed.error, ParseError::kNone);
  EXPECT_TRUE(parsed.truncated);
  EXPECT_EQ(ev["dns"]["answers"].size(), 2u);
  EXPECT_EQ(ev["truncated"], nlohmann::json::array({"dns.answers"}));
  EXPECT_FALSE(ev["dns"].contains("error"));
}

TEST(DnsDecode, MessageEndingEarlyWithoutCaptureCutIsAnError) {
  auto msg = dns_query(5, "short.test", 1, true, {1, 2, 3});
  msg.resize(msg.size() - 10);  // the packet itself is short: a malformed message
  RecordSpec s;
  s.egress = false;
  Parsed parsed;
  auto ev = to_event(record(msg, s), &parsed);
  EXPECT_EQ(parsed.error, ParseError::kTruncatedRecord);
  EXPECT_EQ(ev["dns"]["error"], "truncated record");
  EXPECT_EQ(ev["dns"]["query"], "short.test");  // what parsed is kept
}

TEST(DnsDecode, UnknownOwnerGivesNoProcessFields) {
  RecordSpec s;
  s.process = false;
  auto ev = to_event(record(dns_query(1, "anon.test", 1, false), s));
  EXPECT_FALSE(ev.contains("process"));
  EXPECT_EQ(ev["dns"]["query"], "anon.test");
}

TEST(DnsDecode, MalformedRecordsAreRejectedWithAReason) {
  auto good = record(dns_query(1, "x.test", 1, false), {});
  auto short_rec = good;
  short_rec.resize(100);
  EXPECT_FALSE(decode_packet(short_rec).ok());

  auto bad_kind = good;
  bad_kind[0] = std::byte{9};
  auto r = decode_packet(bad_kind);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unknown kind 9"), std::string::npos);

  auto lying = good;
  dns_packet_record rec;
  std::memcpy(&rec, lying.data(), sizeof rec);
  rec.data_len = 4000;  // more than the record holds
  std::memcpy(lying.data(), &rec, sizeof rec);
  r = decode_packet(lying);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not hold"), std::string::npos);

  auto ring_short = good;
  ring_short.resize(good.size() - 1);  // header size claims more than the ring gave
  EXPECT_FALSE(decode_packet(ring_short).ok());
}

TEST(DnsDecode, PortBitmapSetsExactlyTheConfiguredPorts) {
  std::vector<uint16_t> ports{53, 5353, 65535};
  PortBitmap b = port_bitmap(ports);
  EXPECT_EQ(b[0], uint64_t{1} << 53);
  EXPECT_EQ(b[5353 / 64], uint64_t{1} << (5353 % 64));
  EXPECT_EQ(b[1023], uint64_t{1} << 63);
  size_t bits = 0;
  for (uint64_t w : b) {
    bits += static_cast<size_t>(__builtin_popcountll(w));
  }
  EXPECT_EQ(bits, 3u);
}

}  // namespace
}  // namespace needle::dns
