// IP addresses as text, exactly as inet_ntop(3) writes them (RFC 5952 for IPv6: lowercase hex,
// no leading zeros, the longest run of two or more zero groups, the first of equal ones, as
// "::"; ::ffff:a.b.c.d and ::a.b.c.d with the IPv4 part dotted), at a fraction of its cost:
// inet_ntop was a sixth of a network event's instructions.
#ifndef NEEDLE_IP_H
#define NEEDLE_IP_H

#include <cstddef>
#include <cstdint>

namespace needle {

/// Longest text: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 bytes.
inline constexpr std::size_t kIpTextMax = 46;

/// Writes the dotted form of the four bytes at `a` into `out` (room for 16); the length.
inline std::size_t format_ipv4(const uint8_t* a, char* out) {
  char* d = out;
  for (int i = 0; i < 4; ++i) {
    unsigned v = a[i];
    if (i != 0) {
      *d++ = '.';
    }
    if (v >= 100) {
      *d++ = static_cast<char>('0' + v / 100);
      v %= 100;
      *d++ = static_cast<char>('0' + v / 10);
    } else if (v >= 10) {
      *d++ = static_cast<char>('0' + v / 10);
    }
    *d++ = static_cast<char>('0' + v % 10);
  }
  return static_cast<std::size_t>(d - out);
}

/// Writes the text of the sixteen bytes at `a` into `out` (room for kIpTextMax); the length.
inline std::size_t format_ipv6(const uint8_t* a, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned words[8];
  for (int i = 0; i < 8; ++i) {
    words[i] = static_cast<unsigned>(a[2 * i]) << 8 | a[2 * i + 1];
  }
  // The longest run of zero groups (the first of equal ones); none shorter than two.
  int best = -1;
  int best_len = 0;
  for (int i = 0; i < 8;) {
    if (words[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && words[j] == 0) {
      ++j;
    }
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) {
    best = -1;
  }
  char* d = out;
  for (int i = 0; i < 8; ++i) {
    if (best >= 0 && i >= best && i < best + best_len) {
      if (i == best) {
        *d++ = ':';
      }
      continue;
    }
    if (i != 0) {
      *d++ = ':';
    }
    if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff))) {
      return static_cast<std::size_t>(d - out) + format_ipv4(a + 12, d);   // IPv4 inside
    }
    bool lead = true;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned nibble = (words[i] >> shift) & 0xf;
      if (lead && nibble == 0 && shift != 0) {
        continue;
      }
      lead = false;
      *d++ = kHex[nibble];
    }
  }
  if (best >= 0 && best + best_len == 8) {
    *d++ = ':';
  }
  return static_cast<std::size_t>(d - out);
}

}  // namespace needle

#endif  // NEEDLE_IP_H
