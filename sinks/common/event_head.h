// Cheap access to the leading fields of an event the core encoded. The core sets "id", "time"
// and "type" first in every event (DESIGN.md), so a network sink can key, route or time-stamp an
// event without parsing it whole. Header-only; pure functions of their input.
#ifndef NEEDLE_SINKS_EVENT_HEAD_H
#define NEEDLE_SINKS_EVENT_HEAD_H

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace needle::sinks {

/// Views into the encoded event; valid as long as the event's bytes are.
struct EventHead {
  std::string_view id;
  std::string_view time;
  std::string_view type;
};

namespace detail {

// How many leading members are looked at: the three the core sets first, and a few spare in
// case a future core puts another plain string before them.
inline constexpr int kHeadMembers = 6;

inline void assign_head(EventHead& out, std::string_view key, std::string_view value) {
  if (key == "id") {
    out.id = value;
  } else if (key == "time") {
    out.time = value;
  } else if (key == "type") {
    out.type = value;
  }
}

// A JSON string without escapes starting at s[i] (the opening quote); false when it has one.
inline bool json_plain_string(std::string_view s, size_t& i, std::string_view& out) {
  if (i >= s.size() || s[i] != '"') {
    return false;
  }
  size_t end = i + 1;
  while (end < s.size() && s[end] != '"') {
    if (s[end] == '\\') {
      return false;
    }
    ++end;
  }
  if (end >= s.size()) {
    return false;
  }
  out = s.substr(i + 1, end - i - 1);
  i = end + 1;
  return true;
}

// A msgpack str (fixstr, str8, str16, str32) at s[i].
inline bool msgpack_string(std::string_view s, size_t& i, std::string_view& out) {
  if (i >= s.size()) {
    return false;
  }
  auto b = static_cast<uint8_t>(s[i]);
  size_t len = 0;
  size_t hdr = 1;
  auto byte = [&](size_t k) { return static_cast<size_t>(static_cast<uint8_t>(s[i + k])); };
  if ((b & 0xe0) == 0xa0) {
    len = b & 0x1f;
  } else if (b == 0xd9 && i + 2 <= s.size()) {
    len = byte(1);
    hdr = 2;
  } else if (b == 0xda && i + 3 <= s.size()) {
    len = byte(1) << 8 | byte(2);
    hdr = 3;
  } else if (b == 0xdb && i + 5 <= s.size()) {
    len = byte(1) << 24 | byte(2) << 16 | byte(3) << 8 | byte(4);
    hdr = 5;
  } else {
    return false;
  }
  if (i + hdr + len > s.size()) {
    return false;
  }
  out = s.substr(i + hdr, len);
  i += hdr + len;
  return true;
}

}  // namespace detail

/// Reads the leading plain-string members of a JSON event (`{"id":"…","time":"…","type":"…"`).
/// Returns false when no "id" or no "type" was found among them.
inline bool json_head(std::string_view ev, EventHead& out) {
  out = {};
  size_t i = 0;
  if (ev.empty() || ev[0] != '{') {
    return false;
  }
  ++i;
  for (int m = 0; m < detail::kHeadMembers; ++m) {
    std::string_view key;
    std::string_view value;
    if (!detail::json_plain_string(ev, i, key) || i >= ev.size() || ev[i] != ':') {
      break;
    }
    ++i;
    if (!detail::json_plain_string(ev, i, value)) {
      break;
    }
    detail::assign_head(out, key, value);
    if (i >= ev.size() || ev[i] != ',') {
      break;
    }
    ++i;
  }
  return !out.id.empty() && !out.type.empty();
}

/// The same for a msgpack event (a map whose first values are str).
inline bool msgpack_head(std::string_view ev, EventHead& out) {
  out = {};
  if (ev.empty()) {
    return false;
  }
  auto b = static_cast<uint8_t>(ev[0]);
  size_t i = 0;
  size_t members = 0;
  if ((b & 0xf0) == 0x80) {
    members = b & 0x0f;
    i = 1;
  } else if (b == 0xde && ev.size() >= 3) {
    members = static_cast<size_t>(static_cast<uint8_t>(ev[1])) << 8 | static_cast<uint8_t>(ev[2]);
    i = 3;
  } else if (b == 0xdf && ev.size() >= 5) {
    members = 0;
    for (int k = 1; k <= 4; ++k) {
      members = members << 8 | static_cast<uint8_t>(ev[static_cast<size_t>(k)]);
    }
    i = 5;
  } else {
    return false;
  }
  for (size_t m = 0; m < members && m < detail::kHeadMembers; ++m) {
    std::string_view key;
    std::string_view value;
    if (!detail::msgpack_string(ev, i, key) || !detail::msgpack_string(ev, i, value)) {
      break;
    }
    detail::assign_head(out, key, value);
  }
  return !out.id.empty() && !out.type.empty();
}

}  // namespace needle::sinks

#endif  // NEEDLE_SINKS_EVENT_HEAD_H
