#include "encode.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include <msgpack.hpp>

namespace needle::core {

namespace {

void json_value(const Event& ev, uint32_t idx, std::string& out);

void json_children(const Event& ev, const Event::Node& n, bool named, std::string& out) {
  bool first = true;
  for (uint32_t c = n.first; c != Event::kNone; c = ev.node(c).next) {
    const Event::Node& child = ev.node(c);
    if (child.type == NEEDLE_NODE_NONE) {
      continue;
    }
    if (!first) {
      out.push_back(',');
    }
    first = false;
    if (named) {
      if (child.ikey != nullptr) {
        out.append(child.ikey->json);
      } else {
        json_string(ev.key(child), out);
        out.push_back(':');
      }
    }
    json_value(ev, c, out);
  }
}

void json_value(const Event& ev, uint32_t idx, std::string& out) {
  const Event::Node& n = ev.node(idx);
  char buf[32];
  switch (n.type) {
    case NEEDLE_NODE_OBJECT:
      out.push_back('{');
      json_children(ev, n, true, out);
      out.push_back('}');
      break;
    case NEEDLE_NODE_ARRAY:
      out.push_back('[');
      json_children(ev, n, false, out);
      out.push_back(']');
      break;
    case NEEDLE_NODE_STRING:
      json_string(ev.str(n), out);
      break;
    case NEEDLE_NODE_INT: {
      auto r = std::to_chars(buf, buf + sizeof buf, n.v.i);
      out.append(buf, r.ptr);
      break;
    }
    case NEEDLE_NODE_UINT: {
      auto r = std::to_chars(buf, buf + sizeof buf, n.v.u);
      out.append(buf, r.ptr);
      break;
    }
    case NEEDLE_NODE_DOUBLE: {
      if (!std::isfinite(n.v.d)) {
        out.append("null");  // JSON has no NaN or infinity
        break;
      }
      auto r = std::to_chars(buf, buf + sizeof buf, n.v.d);
      out.append(buf, r.ptr);
      break;
    }
    case NEEDLE_NODE_BOOL:
      out.append(n.v.b ? "true" : "false");
      break;
    default:
      out.append("null");
      break;
  }
}

// msgpack::packer writes through a buffer with write(const char*, size_t).
struct StringBuffer {
  std::string* out;
  void write(const char* p, size_t n) { out->append(p, n); }
};

void pack_value(const Event& ev, uint32_t idx, msgpack::packer<StringBuffer>& pk,
                StringBuffer& pk_buffer) {
  const Event::Node& n = ev.node(idx);
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
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    // Skip eight plain bytes at a time; most strings have nothing to escape.
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, sizeof w);
      if (!plain8(w)) {
        break;
      }
      i += 8;
    }
    if (i >= s.size()) {
      break;
    }
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out.append(esc, sizeof esc);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void encode_json(const Event& ev, std::string& out) { json_value(ev, 0, out); }

void encode_msgpack(const Event& ev, std::string& out) {
  StringBuffer buf{&out};
  msgpack::packer<StringBuffer> pk(buf);
  pack_value(ev, 0, pk, buf);
}

}  // namespace needle::core
