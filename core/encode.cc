#include "encode.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include <msgpack.hpp>

namespace needle::core {

namespace {

bool plain8(uint64_t w);

// Room put_json_string needs for n bytes: each may become a six-byte escape, plus the quotes,
// plus the eight bytes a short string's one-word copy may write past its end.
constexpr size_t json_string_room(size_t n) { return 6 * n + 2 + 8; }

// Escapes n bytes of s as a JSON string literal at d, which has room for json_string_room(n)
// bytes; returns the end. Plain runs are copied eight bytes at a time, and a plain tail (or a
// whole string shorter than eight bytes) as one more word.
char* put_json_string(char* d, const char* s, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  *d++ = '"';
  if (n < 8) {
    // Into a word padded with spaces (which need no escape), by fixed-size moves rather than a
    // copy of n bytes (a library call): two overlapping halves, or the first, middle and last
    // byte of a shorter string.
    char b[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    if (n >= 4) {
      std::memcpy(b, s, 4);
      std::memcpy(b + n - 4, s + n - 4, 4);
    } else if (n > 0) {
      b[0] = s[0];
      b[n / 2] = s[n / 2];
      b[n - 1] = s[n - 1];
    }
    uint64_t w;
    std::memcpy(&w, b, sizeof w);
    if (plain8(w)) {
      std::memcpy(d, &w, sizeof w);
      d += n;
      *d++ = '"';
      return d;
    }
  }
  size_t i = 0;
  while (true) {
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s + i, sizeof w);
      if (!plain8(w)) {
        break;
      }
      std::memcpy(d, &w, sizeof w);
      d += 8;
      i += 8;
    }
    if (i >= n) {
      break;
    }
    if (n >= 8 && n - i < 8) {
      // The last eight bytes, when plain, are the tail and bytes already written as they are
      // (a plain byte is copied unchanged): write them over the end of the output.
      uint64_t w;
      std::memcpy(&w, s + n - 8, sizeof w);
      if (plain8(w)) {
        const size_t back = 8 - (n - i);
        std::memcpy(d - back, &w, sizeof w);
        d += n - i;
        break;
      }
    }
    auto c = static_cast<unsigned char>(s[i++]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      *d++ = static_cast<char>(c);
      continue;
    }
    *d++ = '\\';
    switch (c) {
      case '"':
        *d++ = '"';
        break;
      case '\\':
        *d++ = '\\';
        break;
      case '\n':
        *d++ = 'n';
        break;
      case '\r':
        *d++ = 'r';
        break;
      case '\t':
        *d++ = 't';
        break;
      default:
        *d++ = 'u';
        *d++ = '0';
        *d++ = '0';
        *d++ = kHex[c >> 4];
        *d++ = kHex[c & 0xf];
    }
  }
  *d++ = '"';
  return d;
}

// Writes an event's JSON into a per-thread buffer that only grows, with one room check per
// node instead of one per byte appended, then hands the bytes over in one copy.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& buf) : buf_(buf) {}

  // Room for n more bytes; the pointer to write them at.
  [[gnu::always_inline]] char* room(size_t n) {
    if (pos_ + n > buf_.size()) [[unlikely]] {
      grow(n);
    }
    return buf_.data() + pos_;
  }
  [[gnu::noinline]] void grow(size_t n) {
    buf_.resize(std::max(buf_.size() * 2, pos_ + n + 4096));
  }
  void done(char* end) { pos_ = static_cast<size_t>(end - buf_.data()); }
  size_t size() const { return pos_; }

  void value(const Event& ev, const Event::Node& n) {
    if (const Frozen* fz = n.shared()) {   // shared with other events: encoded once
      const std::string& json = fz->json;
      char* d = room(json.size());
      std::memcpy(d, json.data(), json.size());
      done(d + json.size());
      return;
    }
    switch (n.type) {
      case NEEDLE_NODE_OBJECT:
        container(ev, n, '{', '}', true);
        break;
      case NEEDLE_NODE_ARRAY:
        container(ev, n, '[', ']', false);
        break;
      default:
        done(scalar(ev, n, room(scalar_room(n))));
    }
  }

 private:
  static size_t scalar_room(const Event::Node& n) {
    return n.type == NEEDLE_NODE_STRING ? json_string_room(n.v.s.len) : 32;
  }

  static char* scalar(const Event& ev, const Event::Node& n, char* d) {
    switch (n.type) {
      case NEEDLE_NODE_STRING: {
        std::string_view v = ev.str(n);
        return put_json_string(d, v.data(), v.size());
      }
      case NEEDLE_NODE_INT:
        return std::to_chars(d, d + 24, n.v.i).ptr;
      case NEEDLE_NODE_UINT:
        return std::to_chars(d, d + 24, n.v.u).ptr;
      case NEEDLE_NODE_DOUBLE:
        if (!std::isfinite(n.v.d)) {
          std::memcpy(d, "null", 4);   // JSON has no NaN or infinity
          return d + 4;
        }
        return std::to_chars(d, d + 32, n.v.d).ptr;
      case NEEDLE_NODE_BOOL:
        if (n.v.b) {
          std::memcpy(d, "true", 4);
          return d + 4;
        }
        std::memcpy(d, "false", 5);
        return d + 5;
      default:
        std::memcpy(d, "null", 4);
        return d + 4;
    }
  }

  void container(const Event& ev, const Event::Node& n, char open, char close, bool named) {
    char* d = room(1);
    *d++ = open;
    done(d);
    bool first = true;
    for (uint32_t c = n.first; c != Event::kNone; c = ev.node(c).next) {
      const Event::Node& child = ev.node(c);
      if (child.type == NEEDLE_NODE_NONE) {
        continue;
      }
      // The separator, the key and, for a scalar, the value under one room check.
      std::string_view key = named ? ev.key(child) : std::string_view();
      const bool scalar_child = child.type != NEEDLE_NODE_OBJECT && child.type != NEEDLE_NODE_ARRAY;
      d = room(1 + std::max<size_t>(json_string_room(key.size()) + 1, 32) +
               (scalar_child ? scalar_room(child) : 0));
      if (!first) {
        *d++ = ',';
      }
      first = false;
      if (named) {
        if (child.ikey != nullptr && child.ikey->json_short) {
          std::memcpy(d, child.ikey->json32, sizeof child.ikey->json32);   // fixed size: inline
          d += child.ikey->json.size();
        } else if (child.ikey != nullptr) {
          std::memcpy(d, child.ikey->json.data(), child.ikey->json.size());
          d += child.ikey->json.size();
        } else {
          d = put_json_string(d, key.data(), key.size());
          *d++ = ':';
        }
      }
      if (scalar_child) {
        done(scalar(ev, child, d));
      } else {
        done(d);
        value(ev, child);
      }
    }
    d = room(1);
    *d++ = close;
    done(d);
  }

  std::string& buf_;
  size_t pos_ = 0;
};

// msgpack::packer writes through a buffer with write(const char*, size_t).
struct StringBuffer {
  std::string* out;
  void write(const char* p, size_t n) { out->append(p, n); }
};

void pack_value(const Event& ev, uint32_t idx, msgpack::packer<StringBuffer>& pk,
                StringBuffer& pk_buffer) {
  const Event::Node& n = ev.node(idx);
  if (const Frozen* fz = n.shared()) {   // shared with other events: encoded once
    const std::string& mp = fz->msgpack();
    pk_buffer.write(mp.data(), mp.size());
    return;
  }
  switch (n.type) {
    case NEEDLE_NODE_OBJECT:
    case NEEDLE_NODE_ARRAY: {
      uint32_t live = 0;
      for (uint32_t c = n.first; c != Event::kNone; c = ev.node(c).next) {
        live += ev.node(c).type != NEEDLE_NODE_NONE ? 1 : 0;
      }
      if (n.type == NEEDLE_NODE_OBJECT) {
        pk.pack_map(live);
      } else {
        pk.pack_array(live);
      }
      for (uint32_t c = n.first; c != Event::kNone; c = ev.node(c).next) {
        const Event::Node& child = ev.node(c);
        if (child.type == NEEDLE_NODE_NONE) {
          continue;
        }
        if (n.type == NEEDLE_NODE_OBJECT && child.ikey != nullptr) {
          // The packer writes straight to the buffer, so the ready form can go in between.
          pk_buffer.write(child.ikey->msgpack.data(), child.ikey->msgpack.size());
        } else if (n.type == NEEDLE_NODE_OBJECT) {
          std::string_view k = ev.key(child);
          pk.pack_str(static_cast<uint32_t>(k.size()));
          pk.pack_str_body(k.data(), static_cast<uint32_t>(k.size()));
        }
        pack_value(ev, c, pk, pk_buffer);
      }
      break;
    }
    case NEEDLE_NODE_STRING: {
      std::string_view s = ev.str(n);
      pk.pack_str(static_cast<uint32_t>(s.size()));
      pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
      break;
    }
    case NEEDLE_NODE_INT:
      pk.pack_int64(n.v.i);
      break;
    case NEEDLE_NODE_UINT:
      pk.pack_uint64(n.v.u);
      break;
    case NEEDLE_NODE_DOUBLE:
      pk.pack_double(n.v.d);
      break;
    case NEEDLE_NODE_BOOL:
      if (n.v.b) {
        pk.pack_true();
      } else {
        pk.pack_false();
      }
      break;
    default:
      pk.pack_nil();
      break;
  }
}

}  // namespace

namespace {

// True when none of the eight bytes of `w` needs escaping in JSON (a control character, '"' or
// '\\'): the usual word-at-a-time zero-byte test on w, w ^ '"'... and w ^ '\\'..., plus a
// "less than 0x20" test. Bytes of 0x80 and above (UTF-8) need no escaping and pass.
bool plain8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  return (has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\')) | below_space) == 0;
}

}  // namespace

void json_string(std::string_view s, std::string& out) {
  const size_t at = out.size();
  out.resize(at + json_string_room(s.size()));
  char* end = put_json_string(out.data() + at, s.data(), s.size());
  out.resize(static_cast<size_t>(end - out.data()));
}

void encode_json(const Event& ev, std::string& out) {
  thread_local std::string buf;
  JsonWriter w(buf);
  w.value(ev, ev.node(0));
  out.append(buf.data(), w.size());
}

void encode_msgpack(const Event& ev, std::string& out) {
  StringBuffer buf{&out};
  msgpack::packer<StringBuffer> pk(buf);
  pack_value(ev, 0, pk, buf);
}

}  // namespace needle::core
