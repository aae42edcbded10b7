// The pure part of sink/syslog: addresses, names, structured data, header fields read from the
// core's JSON, and the RFC 5424 / 3164 / octet-counting output.
#include "syslog_format.h"

#include <gtest/gtest.h>

namespace needle::syslog {
namespace {

constexpr std::string_view kEvent =
    R"({"id":"1-2","time":"2026-01-02T03:04:05.123456789Z","type":"process.exec",)"
    R"("source":"process","host":{"name":"web-1","id":"abc"},"process":{"pid":7,)"
    R"("args":["a","b \"}c"]}})";

TEST(SyslogAddress, AcceptsEachTransportWithDefaultPorts) {
  auto udp = parse_address("udp://127.0.0.1");
  ASSERT_TRUE(udp.ok());
  EXPECT_EQ(udp->transport, Transport::kUdp);
  EXPECT_EQ(udp->port, 514);
  auto tls = parse_address("tls://logs.example:7000");
  ASSERT_TRUE(tls.ok());
  EXPECT_EQ(tls->transport, Transport::kTls);
  EXPECT_EQ(tls->host, "logs.example");
  EXPECT_EQ(tls->port, 7000);
  EXPECT_EQ(parse_address("tls://h")->port, 6514);
  auto v6 = parse_address("tcp://[::1]:601");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 601);
  auto ux = parse_address("unix:///dev/log");
  ASSERT_TRUE(ux.ok());
  EXPECT_EQ(ux->transport, Transport::kUnix);
  EXPECT_EQ(ux->path, "/dev/log");
}

TEST(SyslogAddress, MalformedAddressesNameTheKey) {
  for (const char* bad :
       {"127.0.0.1:514", "http://h:1", "udp://", "udp://h:", "udp://h:0", "udp://h:70000",
        "tcp://h:x", "tcp://::1:5", "tcp://[::1", "unix://rel", "tcp://h/path"}) {
    auto r = parse_address(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().key, "address") << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
}

TEST(SyslogNames, FacilitiesAndSeveritiesByName) {
  EXPECT_EQ(*parse_facility("kern"), 0);
  EXPECT_EQ(*parse_facility("authpriv"), 10);
  EXPECT_EQ(*parse_facility("local7"), 23);
  EXPECT_EQ(parse_facility("local8").error().key, "facility");
  EXPECT_EQ(*parse_severity("emerg"), 0);
  EXPECT_EQ(*parse_severity("warn"), 4);
  EXPECT_EQ(*parse_severity("info"), 6);
  EXPECT_EQ(parse_severity("loud").error().key, "severity");
}

TEST(SyslogStructuredData, ParamsAreEscapedAndNamesChecked) {
  auto sd = build_structured_data("needle@32473", {"env=prod", "q=a\"b]c\\d"});
  ASSERT_TRUE(sd.ok());
  EXPECT_EQ(*sd, R"([needle@32473 env="prod" q="a\"b\]c\\d"])");
  EXPECT_EQ(*build_structured_data("x@1", {}), "");
  EXPECT_EQ(build_structured_data("x@1", {"novalue"}).error().key, "structured_data");
  EXPECT_EQ(build_structured_data("x@1", {"a b=1"}).error().key, "structured_data");
  EXPECT_EQ(build_structured_data("bad id", {"a=1"}).error().key, "sd_id");
}

TEST(SyslogScan, FindsHeaderFieldsAndSkipsNestedValues) {
  auto f = scan_event(kEvent);
  EXPECT_EQ(f.time, "2026-01-02T03:04:05.123456789Z");
  EXPECT_EQ(f.type, "process.exec");
  EXPECT_EQ(f.host, "web-1");
  // Keys in another order, a nested "type" that must not win, escapes in skipped strings.
  auto g = scan_event(R"({"x":{"type":"no","time":"no"},"s":"\"type\":",)"
                      R"("type":"file.open","host":{"id":"1","name":"h"}})");
  EXPECT_EQ(g.type, "file.open");
  EXPECT_EQ(g.host, "h");
  EXPECT_TRUE(g.time.empty());
}

TEST(SyslogScan, MalformedInputNeverReadsPastTheEnd) {
  for (std::string_view s : {"", "{", "{\"type\"", "{\"type\":\"abc", "{\"host\":{\"name\":",
                             "[1,2]", "{\"a\":[{]]}", R"({"type":"t","x":"\)"}) {
    auto f = scan_event(s);
    (void)f;
  }
  EXPECT_EQ(scan_event(R"({"type":"t", "x": [)").type, "t");
}

TEST(SyslogFormat, Rfc5424HeaderCarriesEventFieldsAndJsonBody) {
  Header h;
  h.facility = 16;
  h.severity = 6;
  h.procid = "42";
  h.fallback_host = "fallback";
  std::string out;
  format_rfc5424(h, kEvent, out);
  EXPECT_EQ(out, "<134>1 2026-01-02T03:04:05.123456Z web-1 needle 42 process.exec - " +
                     std::string(kEvent));
}

TEST(SyslogFormat, Rfc5424FallsBackAndSanitisesHeaderFields) {
  Header h;
  h.facility = 4;
  h.severity = 2;
  h.procid = "1";
  h.fallback_host = "box";
  h.structured_data = R"([needle@32473 a="b"])";
  std::string out;
  format_rfc5424(h, R"({"type":"a b\u00e9"})", out);
  EXPECT_EQ(out, R"(<34>1 - box needle 1 a_b\u00e9 [needle@32473 a="b"] {"type":"a b\u00e9"})");
  out.clear();
  format_rfc5424(h, R"({"type":"x","time":"2026-01-02T03:04:05Z"})", out);
  EXPECT_EQ(out.substr(0, 30), "<34>1 2026-01-02T03:04:05Z box");
  out.clear();
  std::string long_type(40, 't');
  format_rfc5424(h, R"({"type":")" + long_type + "\"}", out);
  EXPECT_NE(out.find(" " + std::string(32, 't') + " "), std::string::npos) << out;
}

TEST(SyslogFormat, Rfc3164HasBsdTimestampAndTag) {
  Header h;
  h.facility = 1;
  h.severity = 5;
  h.procid = "42";
  std::string out;
  format_rfc3164(h, kEvent, out);
  EXPECT_EQ(out, "<13>Jan  2 03:04:05 web-1 needle[42]: " + std::string(kEvent));
}

TEST(SyslogFormat, OctetCountingPrefixesTheByteLength) {
  std::string out;
  append_octet_counted("héllo", out);
  EXPECT_EQ(out, "6 héllo");
}

}  // namespace
}  // namespace needle::syslog
