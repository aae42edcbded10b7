// The Forward protocol pieces without a network: framing decoded back with msgpack-c and zlib,
// the handshake digests checked from the server's side, and every bad input with its message.
#include "forward_proto.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <map>

#include "event_head.h"

namespace needle::forward {
namespace {

struct Buf {
  std::string* out;
  void write(const char* p, size_t n) { out->append(p, n); }
};

// A msgpack event shaped like the core's: id, time, type first.
std::string event(const std::string& id, const std::string& time, const std::string& type) {
  std::string out;
  Buf b{&out};
  msgpack::packer<Buf> pk(b);
  pk.pack_map(4);
  pk.pack(std::string("id"));
  pk.pack(id);
  pk.pack(std::string("time"));
  pk.pack(time);
  pk.pack(std::string("type"));
  pk.pack(type);
  pk.pack(std::string("process"));
  pk.pack_map(1);
  pk.pack(std::string("pid"));
  pk.pack(42);
  return out;
}

std::string gunzip(std::string_view in) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

msgpack::object_handle unpack(const std::string& s) {
  return msgpack::unpack(s.data(), s.size());
}

TEST(ForwardAddress, AcceptsTcpTlsUnixAndIpv6) {
  auto a = parse_address("tcp://127.0.0.1:24224");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->scheme, Scheme::kTcp);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 24224);
  a = parse_address("tls://logs.example:24284");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->scheme, Scheme::kTls);
  a = parse_address("tcp://[::1]:24224");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  a = parse_address("unix:///run/fluent/forward.sock");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->scheme, Scheme::kUnix);
  EXPECT_EQ(a->path, "/run/fluent/forward.sock");
}

TEST(ForwardAddress, MalformedAddressesSayWhatIsWrong) {
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"127.0.0.1:24224", "expected tcp://"}, {"http://h:1", "expected tcp://"},
      {"tcp://127.0.0.1", "port is missing"}, {"tcp://127.0.0.1:0", "1 to 65535"},
      {"tcp://h:70000", "1 to 65535"},        {"tcp://h:12x", "1 to 65535"},
      {"tcp://:24224", "host is missing"},    {"unix://relative.sock", "absolute"},
      {"tcp://[::1:24224", "[ADDR]:PORT"},
  };
  for (const auto& c : cases) {
    auto a = parse_address(c.text);
    ASSERT_FALSE(a) << c.text;
    EXPECT_NE(a.error().message.find(c.says), std::string::npos) << a.error().message;
    EXPECT_NE(a.error().message.find(c.text), std::string::npos) << "names the value";
  }
}

TEST(ForwardMode, KnowsThreeModes) {
  EXPECT_EQ(*parse_mode("packed"), Mode::kPacked);
  EXPECT_EQ(*parse_mode("compressed"), Mode::kCompressed);
  EXPECT_EQ(*parse_mode("stream"), Mode::kStream);
  EXPECT_FALSE(parse_mode("forward"));
}

TEST(ForwardTag, TypePlaceholderExpandsAndOthersAreRefused) {
  auto t = TagTemplate::parse("needle.{type}");
  ASSERT_TRUE(t);
  std::string out;
  t->expand("process.exec", out);
  EXPECT_EQ(out, "needle.process.exec");
  out.clear();
  t->expand("", out);
  EXPECT_EQ(out, "needle.unknown");
  auto fixed = TagTemplate::parse("security.events");
  ASSERT_TRUE(fixed);
  out.clear();
  fixed->expand("process.exec", out);
  EXPECT_EQ(out, "security.events");
  EXPECT_FALSE(TagTemplate::parse("needle.{host}"));
  EXPECT_FALSE(TagTemplate::parse("needle.{type"));
  EXPECT_FALSE(TagTemplate::parse("needle.}"));
  EXPECT_FALSE(TagTemplate::parse("{type}.{type}"));
  EXPECT_FALSE(TagTemplate::parse(""));
}

TEST(ForwardTime, Rfc3339WithNanosecondsAndOffsets) {
  int64_t s = 0;
  uint32_t ns = 0;
  ASSERT_TRUE(parse_rfc3339("2026-11-29T12:34:56.123456789Z", s, ns));
  EXPECT_EQ(s, 1795955696);
  EXPECT_EQ(ns, 123456789u);
  ASSERT_TRUE(parse_rfc3339("1970-01-01T00:00:00Z", s, ns));
  EXPECT_EQ(s, 0);
  EXPECT_EQ(ns, 0u);
  ASSERT_TRUE(parse_rfc3339("2000-02-29T01:00:00.5+01:00", s, ns));
  EXPECT_EQ(s, 951782400);
  EXPECT_EQ(ns, 500000000u);
  EXPECT_FALSE(parse_rfc3339("2026-11-29 12:34", s, ns));
  EXPECT_FALSE(parse_rfc3339("2026-13-01T00:00:00Z", s, ns));
  EXPECT_FALSE(parse_rfc3339("2026-11-29T12:34:56.Z", s, ns));
  EXPECT_FALSE(parse_rfc3339("2026-11-29T12:34:56", s, ns));
  EXPECT_FALSE(parse_rfc3339("", s, ns));
}

TEST(ForwardFraming, PackedForwardCarriesEventTimeAndTheRecordAsIs) {
  std::string e1 = event("a-1", "2026-11-29T12:34:56.000000007Z", "process.exec");
  std::string entries;
  append_entry(entries, 1795955696, 7, e1);
  append_entry(entries, 1795955697, 8, e1);
  std::string msg;
  append_packed_forward(msg, "needle.process.exec", entries, 2, "Y2h1bms=", false);
  auto oh = unpack(msg);
  const msgpack::object& o = oh.get();
  ASSERT_EQ(o.type, msgpack::type::ARRAY);
  ASSERT_EQ(o.via.array.size, 3u);
  EXPECT_EQ(o.via.array.ptr[0].as<std::string>(), "needle.process.exec");
  ASSERT_EQ(o.via.array.ptr[1].type, msgpack::type::BIN);
  auto opt = o.via.array.ptr[2].as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(opt.at("size").as<int>(), 2);
  EXPECT_EQ(opt.at("chunk").as<std::string>(), "Y2h1bms=");
  EXPECT_EQ(opt.count("compressed"), 0u);
  const auto& bin = o.via.array.ptr[1].via.bin;
  size_t off = 0;
  int n = 0;
  while (off < bin.size) {
    auto eh = msgpack::unpack(bin.ptr, bin.size, off);
    const msgpack::object& entry = eh.get();
    ASSERT_EQ(entry.via.array.size, 2u);
    const msgpack::object& t = entry.via.array.ptr[0];
    ASSERT_EQ(t.type, msgpack::type::EXT);
    EXPECT_EQ(t.via.ext.type(), 0);
    ASSERT_EQ(t.via.ext.size, 8u);
    const auto* b = reinterpret_cast<const unsigned char*>(t.via.ext.data());
    uint32_t sec = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
    uint32_t nsec = uint32_t(b[4]) << 24 | uint32_t(b[5]) << 16 | uint32_t(b[6]) << 8 | b[7];
    EXPECT_EQ(sec, 1795955696u + n);
    EXPECT_EQ(nsec, 7u + n);
    auto rec = entry.via.array.ptr[1].as<std::map<std::string, msgpack::object>>();
    EXPECT_EQ(rec.at("id").as<std::string>(), "a-1");
    ++n;
  }
  EXPECT_EQ(n, 2);
}

TEST(ForwardFraming, CompressedPackedForwardIsGzipOfTheEntries) {
  std::string entries;
  for (int i = 0; i < 100; ++i) {
    append_entry(entries, 1, 2, event("id-" + std::to_string(i), "", "t"));
  }
  std::string z;
  ASSERT_TRUE(gzip_append(entries, z, 6));
  EXPECT_LT(z.size(), entries.size());
  std::string msg;
  append_packed_forward(msg, "t", z, 100, "", true);
  auto oh = unpack(msg);
  const msgpack::object& o = oh.get();
  auto opt = o.via.array.ptr[2].as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(opt.at("compressed").as<std::string>(), "gzip");
  EXPECT_EQ(opt.count("chunk"), 0u) << "no chunk when no ack is wanted";
  const auto& bin = o.via.array.ptr[1].via.bin;
  EXPECT_EQ(gunzip(std::string_view(bin.ptr, bin.size)), entries);
}

TEST(ForwardFraming, StreamFrameIsBigEndianLengthThenEvent) {
  std::string out;
  append_stream_frame(out, std::string(300, 'x'));
  ASSERT_EQ(out.size(), 304u);
  EXPECT_EQ(static_cast<unsigned char>(out[0]), 0u);
  EXPECT_EQ(static_cast<unsigned char>(out[1]), 0u);
  EXPECT_EQ(static_cast<unsigned char>(out[2]), 1u);
  EXPECT_EQ(static_cast<unsigned char>(out[3]), 44u);
}

TEST(ForwardChunk, SameContentSameIdAndAcksParse) {
  EXPECT_EQ(chunk_id(7, "a|b|t|3"), chunk_id(7, "a|b|t|3"));
  EXPECT_NE(chunk_id(7, "a|b|t|3"), chunk_id(7, "a|b|t|4"));
  EXPECT_NE(chunk_id(7, "a|b|t|3"), chunk_id(8, "a|b|t|3"));
  EXPECT_EQ(chunk_id(7, "x").size(), 24u);
  std::map<std::string, std::string> ack{{"ack", "abc"}};
  msgpack::sbuffer sb;
  msgpack::pack(sb, ack);
  auto oh = msgpack::unpack(sb.data(), sb.size());
  auto a = parse_ack(oh.get());
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, "abc");
  msgpack::sbuffer other;
  msgpack::pack(other, std::vector<int>{1});
  auto oh2 = msgpack::unpack(other.data(), other.size());
  EXPECT_FALSE(parse_ack(oh2.get()));
}

// The server side of the handshake, as the protocol specification states it.
std::string helo(const std::string& nonce, const std::string& auth) {
  msgpack::sbuffer sb;
  msgpack::packer<msgpack::sbuffer> pk(sb);
  pk.pack_array(2);
  pk.pack(std::string("HELO"));
  pk.pack_map(3);
  pk.pack(std::string("nonce"));
  pk.pack_bin(static_cast<uint32_t>(nonce.size()));
  pk.pack_bin_body(nonce.data(), static_cast<uint32_t>(nonce.size()));
  pk.pack(std::string("auth"));
  pk.pack(auth);
  pk.pack(std::string("keepalive"));
  pk.pack(true);
  return std::string(sb.data(), sb.size());
}

std::string pong(bool ok, const std::string& reason, const std::string& host,
                 const std::string& digest) {
  msgpack::sbuffer sb;
  msgpack::packer<msgpack::sbuffer> pk(sb);
  pk.pack_array(5);
  pk.pack(std::string("PONG"));
  pk.pack(ok);
  pk.pack(reason);
  pk.pack(host);
  pk.pack(digest);
  return std::string(sb.data(), sb.size());
}

TEST(ForwardHandshake, PingDigestsMatchWhatTheServerComputes) {
  std::string nonce("\x01\x02\xff\x00nonce", 9);
  auto hh = unpack(helo(nonce, "authsalt"));
  auto h = parse_helo(hh.get());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->nonce, nonce);
  EXPECT_EQ(h->auth_salt, "authsalt");
  PingParams p{"sensor-1", "salt1", "s3cret", "alice", "pw"};
  auto ph = unpack(make_ping(*h, p));
  auto ping = ph.get().as<std::vector<std::string>>();
  ASSERT_EQ(ping.size(), 6u);
  EXPECT_EQ(ping[0], "PING");
  EXPECT_EQ(ping[1], "sensor-1");
  EXPECT_EQ(ping[2], "salt1");
  EXPECT_EQ(ping[3], sha512_hex({"salt1", "sensor-1", nonce, "s3cret"}));
  EXPECT_EQ(ping[4], "alice");
  EXPECT_EQ(ping[5], sha512_hex({"authsalt", "alice", "pw"}));
  EXPECT_EQ(ping[3].size(), 128u);

  auto good =
      unpack(pong(true, "", "receiver", sha512_hex({"salt1", "receiver", nonce, "s3cret"})));
  EXPECT_TRUE(check_pong(good.get(), *h, p));
}

TEST(ForwardHandshake, RefusalsAndWrongDigestsAreErrorsWithTheReason) {
  auto hh = unpack(helo("n", ""));
  auto h = parse_helo(hh.get());
  ASSERT_TRUE(h);
  PingParams p{"sensor-1", "salt1", "s3cret", "", ""};
  auto ph = unpack(make_ping(*h, p));
  auto ping = ph.get().as<std::vector<std::string>>();
  EXPECT_EQ(ping[4], "");
  EXPECT_EQ(ping[5], "") << "no user auth when the HELO has no auth salt";

  auto refused = unpack(pong(false, "shared key mismatch", "receiver", ""));
  auto r = check_pong(refused.get(), *h, p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("refused"), std::string::npos);
  EXPECT_NE(r.error().message.find("shared key mismatch"), std::string::npos);

  auto forged = unpack(pong(true, "", "receiver", sha512_hex({"salt1", "receiver", "n", "x"})));
  r = check_pong(forged.get(), *h, p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("does not know our key"), std::string::npos);

  auto same = unpack(pong(true, "", "sensor-1", sha512_hex({"salt1", "sensor-1", "n", "s3cret"})));
  EXPECT_FALSE(check_pong(same.get(), *h, p));

  auto ack =
      unpack(std::string("\x81\xa3"
                         "ack\xa1x",
                         7));
  EXPECT_FALSE(parse_helo(ack.get()));
}

TEST(EventHead, ReadsIdTimeTypeFromBothEncodings) {
  sinks::EventHead h;
  std::string mp = event("abc-1", "2026-11-29T00:00:00Z", "process.exec");
  ASSERT_TRUE(sinks::msgpack_head(mp, h));
  EXPECT_EQ(h.id, "abc-1");
  EXPECT_EQ(h.time, "2026-11-29T00:00:00Z");
  EXPECT_EQ(h.type, "process.exec");
  ASSERT_TRUE(sinks::json_head(
      R"({"id":"abc-2","time":"2026-11-29T00:00:00Z","type":"file.open","source":"f"})", h));
  EXPECT_EQ(h.id, "abc-2");
  EXPECT_EQ(h.type, "file.open");
  EXPECT_FALSE(sinks::json_head(R"({"x":1,"id":"a","type":"t"})", h)) << "not leading";
  EXPECT_FALSE(sinks::json_head("not json", h));
  EXPECT_FALSE(sinks::msgpack_head(std::string("\x92\x01\x02", 3), h));
  EXPECT_FALSE(sinks::msgpack_head(mp.substr(0, 8), h)) << "truncated";
}

}  // namespace
}  // namespace needle::forward
