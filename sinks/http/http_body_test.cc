// The pure part of sink/http: URL and header validation, request cutting, bodies, gzip,
// Retry-After and backoff.
#include "http_body.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace needle::http {
namespace {

using std::chrono::milliseconds;

TEST(HttpUrl, ParsesSchemeHostPortAndTarget) {
  auto u = parse_url("http://127.0.0.1:8080/ingest?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/ingest?x=1");
  EXPECT_EQ(u->host_header, "127.0.0.1:8080");
  auto s = parse_url("https://logs.example");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->tls);
  EXPECT_EQ(s->port, 443);
  EXPECT_EQ(s->target, "/");
  EXPECT_EQ(s->host_header, "logs.example");
  auto v6 = parse_url("http://[::1]:81?q");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->target, "/?q");
  EXPECT_EQ(v6->host_header, "[::1]:81");
}

TEST(HttpUrl, MalformedUrlsNameTheKey) {
  for (const char* bad :
       {"127.0.0.1:80", "ftp://h/", "http://", "http://:80/", "http://h:0/", "http://h:99999/",
        "http://h:/", "http://u:p@h/", "http://h/a b", "http://h/#frag", "http://[::1/"}) {
    auto r = parse_url(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().key, "url") << bad;
  }
}

TEST(HttpHeaders, AcceptsNameValueAndRefusesOwnedOrBroken) {
  auto h = parse_header("X-Tenant:  blue ");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->first, "X-Tenant");
  EXPECT_EQ(h->second, "blue");
  for (const char* bad : {"NoColon", ": v", "Bad Name: v", "X: a\r\nInjected: 1",
                          "content-length: 5", "Host: x", "Content-Encoding: br"}) {
    auto r = parse_header(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().key, "headers");
  }
}

TEST(HttpChunks, CutByEventsAndBytesAndAlwaysProgress) {
  std::vector<std::string_view> items = {"aaaa", "bbbb", "cccc", "dddd", "eeee"};
  EXPECT_EQ(next_chunk(items, 0, 2, 1 << 20, BodyFormat::kNdjson), 2u);
  EXPECT_EQ(next_chunk(items, 4, 2, 1 << 20, BodyFormat::kNdjson), 5u);
  // 5 bytes per NDJSON line: 12 bytes hold two.
  EXPECT_EQ(next_chunk(items, 0, 100, 12, BodyFormat::kNdjson), 2u);
  EXPECT_EQ(next_chunk(items, 0, 100, 12, BodyFormat::kMsgpack), 3u);
  // An event larger than the limit still goes, alone.
  EXPECT_EQ(next_chunk(items, 1, 100, 2, BodyFormat::kNdjson), 2u);
}

TEST(HttpBody, NdjsonEndsEachEventWithNewlineAndMsgpackConcatenates) {
  std::vector<std::string_view> items = {R"({"a":1})", R"({"b":2})"};
  std::string out;
  build_body(items, BodyFormat::kNdjson, out);
  EXPECT_EQ(out, "{\"a\":1}\n{\"b\":2}\n");
  out.clear();
  build_body(items, BodyFormat::kMsgpack, out);
  EXPECT_EQ(out, R"({"a":1}{"b":2})");
}

TEST(HttpBody, GzipRoundTripsThroughZlib) {
  std::string in;
  for (int i = 0; i < 1000; ++i) {
    in += R"({"type":"process.exec","n":)" + std::to_string(i) + "}\n";
  }
  std::string gz;
  ASSERT_TRUE(gzip(in, gz, 1));
  ASSERT_GT(gz.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_LT(gz.size(), in.size() / 4);
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  std::string back(in.size() + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(gz.data());
  z.avail_in = static_cast<uInt>(gz.size());
  z.next_out = reinterpret_cast<Bytef*>(back.data());
  z.avail_out = static_cast<uInt>(back.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  back.resize(back.size() - z.avail_out);
  inflateEnd(&z);
  EXPECT_EQ(back, in);
}

TEST(HttpRetry, RetryAfterSecondsOrHttpDate) {
  EXPECT_EQ(parse_retry_after("3", 0), milliseconds(3000));
  EXPECT_EQ(parse_retry_after(" 0 ", 0), milliseconds(0));
  // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 5), milliseconds(5000));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 5), milliseconds(0));
  EXPECT_EQ(parse_retry_after("", 0), milliseconds(-1));
  EXPECT_EQ(parse_retry_after("soon", 0), milliseconds(-1));
  EXPECT_EQ(parse_retry_after("5x", 0), milliseconds(-1));
}

TEST(HttpRetry, BackoffGrowsWithJitterUpToTheCap) {
  EXPECT_EQ(backoff(0, milliseconds(100), milliseconds(30000), 0.0), milliseconds(50));
  EXPECT_EQ(backoff(0, milliseconds(100), milliseconds(30000), 0.999), milliseconds(99));
  EXPECT_EQ(backoff(3, milliseconds(100), milliseconds(30000), 0.0), milliseconds(400));
  EXPECT_EQ(backoff(40, milliseconds(100), milliseconds(30000), 0.0), milliseconds(15000));
  EXPECT_LE(backoff(40, milliseconds(100), milliseconds(30000), 0.999), milliseconds(30000));
}

TEST(HttpRetry, OnlyTimeoutsThrottlingAndServerErrorsAreTransient) {
  for (unsigned s : {408u, 429u, 500u, 502u, 503u, 504u}) {
    EXPECT_TRUE(status_is_transient(s)) << s;
  }
  for (unsigned s : {301u, 400u, 401u, 403u, 404u, 413u, 422u}) {
    EXPECT_FALSE(status_is_transient(s)) << s;
  }
}

}  // namespace
}  // namespace needle::http
