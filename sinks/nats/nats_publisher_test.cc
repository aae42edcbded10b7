// The pure parts of the nats sink: subject templates, stream filters and server URLs, with the
// message each bad value gets.
#include "nats_publisher.h"

#include <gtest/gtest.h>

namespace needle::nats {
namespace {

std::string expand(const SubjectTemplate& t, std::string_view type) {
  std::string out;
  t.expand(type, out);
  return out;
}

TEST(NatsSubject, TypeBecomesSubjectTokens) {
  auto t = SubjectTemplate::parse("needle.{type}");
  ASSERT_TRUE(t);
  EXPECT_EQ(expand(*t, "process.exec"), "needle.process.exec");
  EXPECT_EQ(expand(*t, ""), "needle.unknown");
  EXPECT_EQ(expand(*t, "odd type*>"), "needle.odd_type__") << "wildcards never reach a subject";
  EXPECT_EQ(t->stream_filter(), "needle.>");
  auto mid = SubjectTemplate::parse("sensors.{type}.eu");
  ASSERT_TRUE(mid);
  EXPECT_EQ(expand(*mid, "file.open"), "sensors.file.open.eu");
  EXPECT_EQ(mid->stream_filter(), "sensors.>");
  auto fixed = SubjectTemplate::parse("needle.events");
  ASSERT_TRUE(fixed);
  EXPECT_EQ(expand(*fixed, "process.exec"), "needle.events");
  EXPECT_EQ(fixed->stream_filter(), "needle.events");
  auto bare = SubjectTemplate::parse("{type}");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->stream_filter(), ">");
}

TEST(NatsSubject, BadTemplatesAreRefusedWithTheReason) {
  auto r = SubjectTemplate::parse("needle.{host}");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("unknown placeholder {host}"), std::string::npos);
  r = SubjectTemplate::parse("needle.*");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not '*'"), std::string::npos);
  EXPECT_FALSE(SubjectTemplate::parse("needle..x"));
  EXPECT_FALSE(SubjectTemplate::parse(".needle"));
  EXPECT_FALSE(SubjectTemplate::parse(""));
  EXPECT_FALSE(SubjectTemplate::parse("needle.{type"));
  EXPECT_FALSE(SubjectTemplate::parse("needle events"));
}

TEST(NatsServers, UrlsNeedSchemeHostAndPort) {
  EXPECT_TRUE(check_server_url("nats://127.0.0.1:4222"));
  EXPECT_TRUE(check_server_url("tls://nats.example:4443"));
  EXPECT_TRUE(check_server_url("nats://user:pw@127.0.0.1:4222"));
  struct Case {
    const char* url;
    const char* says;
  } cases[] = {
      {"127.0.0.1:4222", "expected nats://"},   {"http://127.0.0.1:4222", "expected nats://"},
      {"nats://127.0.0.1", "HOST:PORT"},        {"nats://127.0.0.1:0", "1 to 65535"},
      {"nats://127.0.0.1:99999", "1 to 65535"}, {"nats://:4222", "HOST:PORT"}};
  for (const auto& c : cases) {
    auto r = check_server_url(c.url);
    ASSERT_FALSE(r) << c.url;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(c.url), std::string::npos) << "names the value";
  }
}

}  // namespace
}  // namespace needle::nats
