// The DNS message parser on hand-built messages: every field of queries and answers, and each
// malformed input (compression loops, truncated labels, oversized counts, bad RDATA) reported
// as its own error without reading past the message.
#include "dns_message.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace needle::dns {
namespace {

/// Builds DNS messages byte by byte.
class Wire {
 public:
  Wire& u8(uint8_t v) {
    b_.push_back(static_cast<std::byte>(v));
    return *this;
  }
  Wire& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
  Wire& u32(uint32_t v) {
    return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v));
  }
  Wire& header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an) {
    return u16(id).u16(flags).u16(qd).u16(an).u16(0).u16(0);
  }
  /// "a.b.c" as labels and the root label.
  Wire& name(const std::string& dotted) {
    size_t start = 0;
    while (start < dotted.size()) {
      size_t dot = dotted.find('.', start);
      std::string label = dotted.substr(start, dot == std::string::npos ? dot : dot - start);
      u8(static_cast<uint8_t>(label.size()));
      for (char c : label) {
        u8(static_cast<uint8_t>(c));
      }
      start = dot == std::string::npos ? dotted.size() : dot + 1;
    }
    return u8(0);
  }
  Wire& pointer(uint16_t offset) { return u16(static_cast<uint16_t>(0xc000 | offset)); }
  Wire& question(const std::string& n, uint16_t type) { return name(n).u16(type).u16(1); }
  size_t size() const { return b_.size(); }
  std::span<const std::byte> bytes() const { return b_; }
  std::vector<std::byte>& raw() { return b_; }

 private:
  std::vector<std::byte> b_;
};

constexpr uint16_t kQueryFlags = 0x0100;     // RD
constexpr uint16_t kResponseFlags = 0x8180;  // QR RD RA, NOERROR

TEST(DnsMessage, QueryCarriesIdNameAndType) {
  Wire w;
  w.header(0xbeef, kQueryFlags, 1, 0).question("Example.COM", kTypeAaaa);
  Message m;
  ASSERT_EQ(parse(w.bytes(), m), ParseError::kNone);
  EXPECT_EQ(m.id, 0xbeef);
  EXPECT_FALSE(m.response);
  EXPECT_TRUE(m.has_question);
  EXPECT_EQ(m.qname.view(), "example.com");  // lower-cased, no trailing dot
  EXPECT_EQ(m.qtype, kTypeAaaa);
  EXPECT_EQ(m.answer_count, 0);
}

TEST(DnsMessage, ResponseAnswersAThroughCompressedCnameAndAaaa) {
  Wire w;
  w.header(7, kResponseFlags, 1, 3).question("www.example.com", kTypeA);
  // www.example.com CNAME edge.example.com (target compressed against "example.com" at 16)
  w.pointer(12).u16(kTypeCname).u16(1).u32(300).u16(7).u8(4).u8('e').u8('d').u8('g').u8('e');
  size_t edge = w.size() - 5;  // the "edge" label
  w.pointer(16);
  w.pointer(static_cast<uint16_t>(edge))
      .u16(kTypeA)
      .u16(1)
      .u32(60)
      .u16(4)
      .u8(192)
      .u8(0)
      .u8(2)
      .u8(1);
  w.pointer(static_cast<uint16_t>(edge)).u16(kTypeAaaa).u16(1).u32(61).u16(16);
  for (int i = 0; i < 15; ++i) {
    w.u8(i == 0 ? 0x20 : (i == 1 ? 0x01 : 0));
  }
  w.u8(1);
  Message m;
  ASSERT_EQ(parse(w.bytes(), m), ParseError::kNone) << error_name(m.error);
  EXPECT_TRUE(m.response);
  EXPECT_EQ(m.rcode, 0);
  ASSERT_EQ(m.answer_count, 3);
  EXPECT_EQ(m.answers[0].type, kTypeCname);
  EXPECT_EQ(m.answers[0].ttl, 300u);
  EXPECT_EQ(m.answers[0].data.view(), "edge.example.com");
  EXPECT_EQ(m.answers[1].data.view(), "192.0.2.1");
  EXPECT_EQ(m.answers[1].ttl, 60u);
  EXPECT_EQ(m.answers[2].data.view(), "2001::1");
}

TEST(DnsMessage, PointerToItselfIsACompressionLoop) {
  Wire w;
  w.header(1, kQueryFlags, 1, 0).pointer(12).u16(1).u16(1);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kCompressionLoop);
  EXPECT_FALSE(m.has_question);
}

TEST(DnsMessage, PointerChainThatLoopsBackIsACompressionLoop) {
  // label "a" at 12, then a pointer at 14 back to 12: a -> a -> a ...
  Wire w;
  w.header(1, kResponseFlags, 0, 1).u8(1).u8('a').pointer(12).u16(1).u16(1).u32(0).u16(4).u32(0);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kCompressionLoop);
}

TEST(DnsMessage, ForwardPointerIsRejected) {
  Wire w;
  w.header(1, kQueryFlags, 1, 0).pointer(18).u16(1).u16(1).name("x");
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kCompressionLoop);
}

TEST(DnsMessage, LabelRunningPastTheEndIsTruncatedName) {
  Wire w;
  w.header(1, kQueryFlags, 1, 0).u8(40).u8('a').u8('b');
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kTruncatedName);
  EXPECT_TRUE(m.ran_out);
}

TEST(DnsMessage, PointerCutInHalfIsTruncatedName) {
  Wire w;
  w.header(1, kQueryFlags, 1, 0).u8(0xc0);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kTruncatedName);
}

TEST(DnsMessage, AnswerCountBeyondTheMessageIsCountOverflow) {
  Wire w;
  w.header(1, kResponseFlags, 1, 65535).question("a.example", kTypeA);
  w.pointer(12).u16(kTypeA).u16(1).u32(5).u16(4).u32(0x7f000001);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kCountOverflow);
  EXPECT_TRUE(m.ran_out);
  EXPECT_EQ(m.answer_count, 1);  // what was there is kept
  EXPECT_EQ(m.answers[0].data.view(), "127.0.0.1");
}

TEST(DnsMessage, QuestionCountBeyondTheMessageIsCountOverflow) {
  Wire w;
  w.header(1, kQueryFlags, 9, 0).question("a", kTypeA);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kCountOverflow);
  EXPECT_EQ(m.qname.view(), "a");
}

TEST(DnsMessage, NameOver255BytesIsRejected) {
  Wire w;
  w.header(1, kQueryFlags, 1, 0);
  for (int i = 0; i < 5; ++i) {
    w.u8(63);
    for (int j = 0; j < 63; ++j) {
      w.u8('x');
    }
  }
  w.u8(0).u16(1).u16(1);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kNameTooLong);
}

TEST(DnsMessage, ExtendedLabelTypeIsRejected) {
  Wire w;
  w.header(1, kQueryFlags, 1, 0).u8(0x41).u8(0).u16(1).u16(1);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kBadLabelType);
}

TEST(DnsMessage, ShortHeader) {
  Wire w;
  w.u16(1).u16(0);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kShortHeader);
}

TEST(DnsMessage, ARecordOfWrongLengthIsBadRdata) {
  Wire w;
  w.header(1, kResponseFlags, 0, 1).name("a").u16(kTypeA).u16(1).u32(1).u16(3).u8(1).u8(2).u8(3);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kBadRdata);
}

TEST(DnsMessage, CnameNameSpillingOutOfItsRdataIsBadRdata) {
  Wire w;
  // RDATA claims 2 bytes but the name inside is "abc" (5 bytes).
  w.header(1, kResponseFlags, 0, 1).name("a").u16(kTypeCname).u16(1).u32(1).u16(2).name("abc");
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kBadRdata);
}

TEST(DnsMessage, RdataPastTheEndIsTruncatedRecord) {
  Wire w;
  w.header(1, kResponseFlags, 0, 1).name("a").u16(kTypeA).u16(1).u32(1).u16(4).u8(1);
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kTruncatedRecord);
  EXPECT_TRUE(m.ran_out);
}

TEST(DnsMessage, MoreAnswersThanKeptAreCut) {
  Wire w;
  w.header(1, kResponseFlags, 1, 40).question("many", kTypeA);
  for (int i = 0; i < 40; ++i) {
    w.pointer(12).u16(kTypeA).u16(1).u32(1).u16(4).u32(0x0a000000u + static_cast<uint32_t>(i));
  }
  Message m;
  EXPECT_EQ(parse(w.bytes(), m), ParseError::kNone);
  EXPECT_EQ(m.answer_count, Message::kMaxAnswers);
  EXPECT_TRUE(m.answers_cut);
}

TEST(DnsMessage, DotsAndControlBytesInLabelsAreEscaped) {
  Wire w;
  w.header(1, kQueryFlags, 1, 0).u8(4).u8('a').u8('.').u8('b').u8(7).u8(0).u16(1).u16(1);
  Message m;
  ASSERT_EQ(parse(w.bytes(), m), ParseError::kNone);
  EXPECT_EQ(m.qname.view(), "a\\.b\\007");
}

TEST(DnsMessage, RootNameIsEmpty) {
  Wire w;
  w.header(1, kQueryFlags, 1, 0).u8(0).u16(2).u16(1);
  Message m;
  ASSERT_EQ(parse(w.bytes(), m), ParseError::kNone);
  EXPECT_TRUE(m.has_question);
  EXPECT_EQ(m.qname.view(), "");
}

TEST(DnsMessage, TypeAndRcodeMnemonics) {
  std::array<char, 16> buf{};
  EXPECT_EQ(type_name(1, buf), "A");
  EXPECT_EQ(type_name(28, buf), "AAAA");
  EXPECT_EQ(type_name(65, buf), "HTTPS");
  EXPECT_EQ(type_name(65280, buf), "TYPE65280");
  EXPECT_EQ(rcode_name(0, buf), "NOERROR");
  EXPECT_EQ(rcode_name(3, buf), "NXDOMAIN");
  EXPECT_EQ(rcode_name(5, buf), "REFUSED");
  EXPECT_EQ(rcode_name(14, buf), "RCODE14");
}

TEST(DnsMessage, TcpLengthPrefix) {
  Wire w;
  w.u16(0).header(9, kQueryFlags, 1, 0).question("t", kTypeA);
  auto& raw = w.raw();
  uint16_t len = static_cast<uint16_t>(raw.size() - 2);
  raw[0] = static_cast<std::byte>(len >> 8);
  raw[1] = static_cast<std::byte>(len & 0xff);
  std::span<const std::byte> msg;
  bool complete = false;
  ASSERT_EQ(tcp_message(w.bytes(), msg, complete), ParseError::kNone);
  EXPECT_TRUE(complete);
  EXPECT_EQ(msg.size(), len);
  Message m;
  EXPECT_EQ(parse(msg, m), ParseError::kNone);
  EXPECT_EQ(m.id, 9);
  // Only part of the message in this segment.
  ASSERT_EQ(tcp_message(w.bytes().first(10), msg, complete), ParseError::kNone);
  EXPECT_FALSE(complete);
  EXPECT_EQ(msg.size(), 8u);
  // A prefix below a DNS header, or no prefix at all.
  std::vector<std::byte> tiny{std::byte{0}, std::byte{3}, std::byte{1}, std::byte{2}, std::byte{3}};
  EXPECT_EQ(tcp_message(tiny, msg, complete), ParseError::kTcpLength);
  EXPECT_EQ(tcp_message(std::span<const std::byte>(tiny).first(1), msg, complete),
            ParseError::kTcpLength);
}

}  // namespace
}  // namespace needle::dns
