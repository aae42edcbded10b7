// A DNS message parser for untrusted bytes (RFC 1035 wire format): pure, no allocation, never
// reads outside the span it is given. Fuzzed by tests/fuzz/dns_message_fuzz.cc.
#ifndef NEEDLE_PLUGINS_SOURCES_DNS_DNS_MESSAGE_H
#define NEEDLE_PLUGINS_SOURCES_DNS_DNS_MESSAGE_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace needle::dns {

/// Why a message could not be parsed completely. The parts before the fault stay valid.
enum class ParseError : uint8_t {
  kNone = 0,
  kShortHeader,      // fewer than 12 bytes
  kTruncatedName,    // a label or pointer runs past the end of the message
  kCompressionLoop,  // a pointer that does not point strictly backwards, or too many of them
  kBadLabelType,     // label type 01 or 10 (extended / reserved)
  kNameTooLong,      // a name longer than 255 bytes in wire form
  kTruncatedRecord,  // a question or record's fixed part or RDATA runs past the end
  kCountOverflow,    // the header claims more records than the message holds
  kBadRdata,         // RDATA of the wrong size for its type (A not 4 bytes, ...)
  kTcpLength,        // a TCP message whose 2-byte length prefix is missing or below 12
};

/// Lower-case words for logs and the event's `dns.error` field.
std::string_view error_name(ParseError e);

/// The event's qtype/answer type: "A", "AAAA", ... or "TYPE<n>" (written into `buf`).
std::string_view type_name(uint16_t type, std::span<char, 16> buf);
/// The event's rcode: "NOERROR", "NXDOMAIN", ... or "RCODE<n>".
std::string_view rcode_name(uint16_t rcode, std::span<char, 16> buf);

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeNs = 2;
inline constexpr uint16_t kTypeCname = 5;
inline constexpr uint16_t kTypePtr = 12;
inline constexpr uint16_t kTypeMx = 15;
inline constexpr uint16_t kTypeAaaa = 28;

/// A domain name in presentation form without the trailing dot ("" is the root). Bytes other
/// than letters, digits, '-' and '_' are escaped as in zone files ("\." and "\DDD"), so a label
/// cannot forge a dot or a control character.
struct Name {
  static constexpr size_t kCap = 1024;  // 255 wire bytes escape to at most ~1000
  std::array<char, kCap> buf;
  uint16_t len = 0;
  std::string_view view() const { return std::string_view(buf.data(), len); }
};

struct Answer {
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  bool has_data = false;  // A, AAAA, CNAME, NS, PTR, MX (the exchange)
  Name data;              // the address or the target name in presentation form
};

struct Message {
  static constexpr size_t kMaxAnswers = 32;

  uint16_t id = 0;
  bool response = false;  // QR
  uint8_t opcode = 0;
  uint8_t rcode = 0;
  bool truncated_flag = false;  // TC: the server cut the answer (retry over TCP)
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  bool has_question = false;
  Name qname;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  std::array<Answer, kMaxAnswers> answers;
  uint8_t answer_count = 0;  // answers parsed (at most kMaxAnswers)
  bool answers_cut = false;  // more answers than kMaxAnswers: the rest were not kept
  bool ran_out = false;      // the bytes ended before the message did (see parse())
  ParseError error = ParseError::kNone;
};

/// Parses one DNS message (UDP payload, or a TCP message without its length prefix). Fills `out`
/// as far as it gets and returns the first fault. `ran_out` tells a fault caused by the bytes
/// ending (the caller knows whether its capture was cut short) from a malformed message.
/// Only the question and answer sections are decoded; authority and additional are ignored.
ParseError parse(std::span<const std::byte> msg, Message& out);

/// For TCP: the message after the 2-byte length prefix, at most as long as the prefix says.
/// Sets `complete` when the whole message is in `payload`. Fails with kTcpLength.
ParseError tcp_message(std::span<const std::byte> payload, std::span<const std::byte>& msg,
                       bool& complete);

}  // namespace needle::dns

#endif  // NEEDLE_PLUGINS_SOURCES_DNS_DNS_MESSAGE_H
