#include "dns_message.h"

#include <cstdio>
#include <cstring>

#include "needle/ip.h"

namespace needle::dns {
namespace {

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxWireName = 255;  // RFC 1035 3.1, length octets included
constexpr int kMaxJumps = 64;         // unreachable with strictly backward pointers; a backstop

uint8_t at(std::span<const std::byte> m, size_t i) {
  return static_cast<uint8_t>(m[i]);
}

uint16_t be16(std::span<const std::byte> m, size_t i) {
  return static_cast<uint16_t>((at(m, i) << 8) | at(m, i + 1));
}

uint32_t be32(std::span<const std::byte> m, size_t i) {
  return (static_cast<uint32_t>(be16(m, i)) << 16) | be16(m, i + 2);
}

void put(Name& n, char c) {
  if (n.len < Name::kCap) {
    n.buf[n.len++] = c;
  }
}

void put_byte(Name& n, uint8_t b) {
  if (b >= 'A' && b <= 'Z') {
    put(n, static_cast<char>(b - 'A' + 'a'));  // names compare case-insensitively (0x20 bits)
  } else if (b == '.' || b == '\\') {
    put(n, '\\');
    put(n, static_cast<char>(b));
  } else if (b > 0x20 && b < 0x7f) {
    put(n, static_cast<char>(b));
  } else {
    put(n, '\\');
    put(n, static_cast<char>('0' + b / 100));
    put(n, static_cast<char>('0' + (b / 10) % 10));
    put(n, static_cast<char>('0' + b % 10));
  }
}

struct Reader {
  std::span<const std::byte> msg;
  bool ran_out = false;

  ParseError fail_short(ParseError e) {
    ran_out = true;
    return e;
  }

  /// Reads the name at `pos` into `out` (may be null to skip it); `next` gets the offset after
  /// the name where it starts (after its first pointer when compressed).
  ParseError name(size_t pos, Name* out, size_t& next) {
    if (out != nullptr) {
      out->len = 0;
    }
    size_t segment = pos;  // start of the labels being read; a pointer must go below it
    size_t wire = 0;
    bool jumped = false;
    int jumps = 0;
    while (true) {
      if (pos >= msg.size()) {
        return fail_short(ParseError::kTruncatedName);
      }
      uint8_t b = at(msg, pos);
      if ((b & 0xc0) == 0xc0) {
        if (pos + 1 >= msg.size()) {
          return fail_short(ParseError::kTruncatedName);
        }
        size_t target = static_cast<size_t>(((b & 0x3f) << 8) | at(msg, pos + 1));
        if (target >= segment || ++jumps > kMaxJumps) {
          return ParseError::kCompressionLoop;
        }
        if (!jumped) {
          next = pos + 2;
          jumped = true;
        }
        pos = target;
        segment = target;
        continue;
      }
      if ((b & 0xc0) != 0) {
        return ParseError::kBadLabelType;
      }
      wire += 1u + b;
      if (wire > kMaxWireName) {
        return ParseError::kNameTooLong;
      }
      if (b == 0) {
        if (!jumped) {
          next = pos + 1;
        }
        return ParseError::kNone;
      }
      if (pos + 1 + b > msg.size()) {
        return fail_short(ParseError::kTruncatedName);
      }
      if (out != nullptr) {
        if (out->len > 0) {
          put(*out, '.');
        }
        for (size_t i = 0; i < b; ++i) {
          put_byte(*out, at(msg, pos + 1 + i));
        }
      }
      pos += 1u + b;
    }
  }
};

static_assert(Name::kCap >= kIpTextMax, "an address's text fits a name's buffer");

void format_a(std::span<const std::byte> m, size_t off, Name& out) {
  out.len = static_cast<uint16_t>(
      format_ipv4(reinterpret_cast<const uint8_t*>(m.data() + off), out.buf.data()));
}

void format_aaaa(std::span<const std::byte> m, size_t off, Name& out) {
  out.len = static_cast<uint16_t>(
      format_ipv6(reinterpret_cast<const uint8_t*>(m.data() + off), out.buf.data()));
}

std::string_view numbered(std::string_view prefix, unsigned n, std::span<char, 16> buf) {
  int len = std::snprintf(buf.data(), buf.size(), "%.*s%u", static_cast<int>(prefix.size()),
                          prefix.data(), n);
  return std::string_view(buf.data(), len > 0 ? static_cast<size_t>(len) : 0);
}

}  // namespace

std::string_view error_name(ParseError e) {
  switch (e) {
    case ParseError::kNone:
      return "none";
    case ParseError::kShortHeader:
      return "short header";
    case ParseError::kTruncatedName:
      return "truncated name";
    case ParseError::kCompressionLoop:
      return "compression loop";
    case ParseError::kBadLabelType:
      return "bad label type";
    case ParseError::kNameTooLong:
      return "name too long";
    case ParseError::kTruncatedRecord:
      return "truncated record";
    case ParseError::kCountOverflow:
      return "count exceeds message";
    case ParseError::kBadRdata:
      return "bad rdata";
    case ParseError::kTcpLength:
      return "bad tcp length";
  }
  return "unknown";
}

std::string_view type_name(uint16_t type, std::span<char, 16> buf) {
  switch (type) {
    case 1:
      return "A";
    case 2:
      return "NS";
    case 5:
      return "CNAME";
    case 6:
      return "SOA";
    case 12:
      return "PTR";
    case 13:
      return "HINFO";
    case 15:
      return "MX";
    case 16:
      return "TXT";
    case 28:
      return "AAAA";
    case 33:
      return "SRV";
    case 35:
      return "NAPTR";
    case 39:
      return "DNAME";
    case 41:
      return "OPT";
    case 43:
      return "DS";
    case 46:
      return "RRSIG";
    case 47:
      return "NSEC";
    case 48:
      return "DNSKEY";
    case 50:
      return "NSEC3";
    case 52:
      return "TLSA";
    case 64:
      return "SVCB";
    case 65:
      return "HTTPS";
    case 99:
      return "SPF";
    case 251:
      return "IXFR";
    case 252:
      return "AXFR";
    case 255:
      return "ANY";
    case 257:
      return "CAA";
    default:
      return numbered("TYPE", type, buf);
  }
}

std::string_view rcode_name(uint16_t rcode, std::span<char, 16> buf) {
  static constexpr std::string_view kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                                "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                                "NXRRSET", "NOTAUTH", "NOTZONE",  "DSOTYPENI"};
  if (rcode < std::size(kNames)) {
    return kNames[rcode];
  }
  return numbered("RCODE", rcode, buf);
}

ParseError parse(std::span<const std::byte> msg, Message& out) {
  out.has_question = false;
  out.qname.len = 0;
  out.answer_count = 0;
  out.answers_cut = false;
  out.ran_out = false;
  out.error = ParseError::kNone;
  Reader r{msg};
  auto done = [&](ParseError e) {
    out.error = e;
    out.ran_out = r.ran_out;
    return e;
  };
  if (msg.size() < kHeaderSize) {
    r.ran_out = true;
    return done(ParseError::kShortHeader);
  }
  out.id = be16(msg, 0);
  uint16_t flags = be16(msg, 2);
  out.response = (flags & 0x8000) != 0;
  out.opcode = static_cast<uint8_t>((flags >> 11) & 0xf);
  out.truncated_flag = (flags & 0x0200) != 0;
  out.rcode = static_cast<uint8_t>(flags & 0xf);
  out.qdcount = be16(msg, 4);
  out.ancount = be16(msg, 6);
  size_t pos = kHeaderSize;
  for (uint32_t q = 0; q < out.qdcount; ++q) {
    if (pos >= msg.size()) {
      r.ran_out = true;
      return done(ParseError::kCountOverflow);
    }
    size_t next = 0;
    ParseError e = r.name(pos, q == 0 ? &out.qname : nullptr, next);
    if (e != ParseError::kNone) {
      if (q == 0) {
        out.qname.len = 0;
      }
      return done(e);
    }
    if (next + 4 > msg.size()) {
      if (q == 0) {
        out.qname.len = 0;
      }
      r.ran_out = true;
      return done(ParseError::kTruncatedRecord);
    }
    if (q == 0) {
      out.has_question = true;
      out.qtype = be16(msg, next);
      out.qclass = be16(msg, next + 2);
    }
    pos = next + 4;
  }
  for (uint32_t a = 0; a < out.ancount; ++a) {
    if (out.answer_count == Message::kMaxAnswers) {
      out.answers_cut = true;
      break;
    }
    if (pos >= msg.size()) {
      r.ran_out = true;
      return done(ParseError::kCountOverflow);
    }
    size_t next = 0;
    ParseError e = r.name(pos, nullptr, next);
    if (e != ParseError::kNone) {
      return done(e);
    }
    if (next + 10 > msg.size()) {
      r.ran_out = true;
      return done(ParseError::kTruncatedRecord);
    }
    Answer& ans = out.answers[out.answer_count];
    ans.type = be16(msg, next);
    ans.klass = be16(msg, next + 2);
    ans.ttl = be32(msg, next + 4);
    ans.has_data = false;
    ans.data.len = 0;
    size_t rdlen = be16(msg, next + 8);
    size_t rdata = next + 10;
    if (rdata + rdlen > msg.size()) {
      r.ran_out = true;
      return done(ParseError::kTruncatedRecord);
    }
    size_t rdend = rdata + rdlen;
    switch (ans.type) {
      case kTypeA:
        if (rdlen != 4) {
          return done(ParseError::kBadRdata);
        }
        format_a(msg, rdata, ans.data);
        ans.has_data = true;
        break;
      case kTypeAaaa:
        if (rdlen != 16) {
          return done(ParseError::kBadRdata);
        }
        format_aaaa(msg, rdata, ans.data);
        ans.has_data = true;
        break;
      case kTypeCname:
      case kTypeNs:
      case kTypePtr:
      case kTypeMx: {
        size_t start = ans.type == kTypeMx ? rdata + 2 : rdata;
        if (start >= rdend) {
          return done(ParseError::kBadRdata);
        }
        // The name may point anywhere before it, but its own bytes must stay in the RDATA.
        Reader sub{msg.first(rdend)};
        size_t after = 0;
        ParseError ne = sub.name(start, &ans.data, after);
        if (ne != ParseError::kNone) {
          ans.data.len = 0;
          return done(ne == ParseError::kTruncatedName ? ParseError::kBadRdata : ne);
        }
        if (after != rdend) {
          ans.data.len = 0;
          return done(ParseError::kBadRdata);
        }
        ans.has_data = true;
        break;
      }
      default:
        break;
    }
    ++out.answer_count;
    pos = rdend;
  }
  return done(ParseError::kNone);
}

ParseError tcp_message(std::span<const std::byte> payload, std::span<const std::byte>& msg,
                       bool& complete) {
  complete = false;
  if (payload.size() < 2) {
    return ParseError::kTcpLength;
  }
  size_t len = be16(payload, 0);
  if (len < kHeaderSize) {
    return ParseError::kTcpLength;
  }
  size_t have = payload.size() - 2;
  complete = have >= len;
  msg = payload.subspan(2, complete ? len : have);
  return ParseError::kNone;
}

}  // namespace needle::dns
