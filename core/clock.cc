#include "clock.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace needle::core {

namespace {

std::atomic<int64_t> g_offset{0};
std::string g_host_name;

uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) {
    line.pop_back();
  }
  return line;
}

}  // namespace

uint64_t boot_ns_now() { return clock_ns(CLOCK_BOOTTIME); }

void resample_clock_offset() {
  // Take the smallest gap of a few samples to keep the skew between the two reads low.
  int64_t best = 0;
  uint64_t best_span = UINT64_MAX;
  for (int i = 0; i < 3; ++i) {
    uint64_t b1 = clock_ns(CLOCK_BOOTTIME);
    uint64_t r = clock_ns(CLOCK_REALTIME);
    uint64_t b2 = clock_ns(CLOCK_BOOTTIME);
    if (b2 - b1 < best_span) {
      best_span = b2 - b1;
      best = static_cast<int64_t>(r) - static_cast<int64_t>(b1 + (b2 - b1) / 2);
    }
  }
  g_offset.store(best, std::memory_order_relaxed);
}

size_t format_boot_time(uint64_t boot_ns, char* out, size_t cap) {
  int64_t real = static_cast<int64_t>(boot_ns) + g_offset.load(std::memory_order_relaxed);
  if (real < 0) {
    real = 0;
  }
  time_t secs = static_cast<time_t>(real / 1'000'000'000);
  auto nanos = static_cast<uint32_t>(real % 1'000'000'000);
  // Every event carries one or two times; most fall in the second of the one before, so the
  // "YYYY-MM-DDTHH:MM:SS." part is kept per thread and only the nanoseconds are written.
  // (snprintf and gmtime_r for each were a sixth of the pipeline's time.)
  thread_local time_t cached_secs = -1;
  thread_local char prefix[64];
  thread_local size_t prefix_len = 0;
  if (secs != cached_secs) {
    tm t{};
    gmtime_r(&secs, &t);
    int n = std::snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.",
                          t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                          t.tm_sec);
    prefix_len = n > 0 ? std::min(static_cast<size_t>(n), sizeof prefix - 1) : 0;
    cached_secs = secs;
  }
  char full[sizeof prefix + 10];   // the prefix, nine digits and "Z"
  std::memcpy(full, prefix, prefix_len);
  for (size_t i = prefix_len + 9; i-- > prefix_len;) {
    full[i] = static_cast<char>('0' + nanos % 10);
    nanos /= 10;
  }
  full[prefix_len + 9] = 'Z';
  size_t len = prefix_len + 10;
  if (cap == 0) {
    return 0;
  }
  size_t n = std::min(len, cap - 1);
  std::memcpy(out, full, n);
  out[n] = '\0';
  return n;
}

// Written by hand: snprintf was a visible part of each event's cost.
size_t format_event_id(uint64_t start_ns, uint64_t seq, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[start_ns & 0xf];
    start_ns >>= 4;
  }
  out[16] = '-';
  char digits[16];
  size_t n = 0;
  do {
    digits[n++] = kHex[seq & 0xf];
    seq >>= 4;
  } while (seq != 0);
  for (size_t i = 0; i < n; ++i) {
    out[17 + i] = digits[n - 1 - i];
  }
  return 17 + n;
}

std::string format_boot_time(uint64_t boot_ns) {
  char buf[48];
  size_t n = format_boot_time(boot_ns, buf, sizeof buf);
  return std::string(buf, n);
}

const std::string& host_id() {
  static const std::string id = [] {
    for (const char* p : {"/etc/machine-id", "/var/lib/dbus/machine-id",
                          "/sys/class/dmi/id/product_uuid", "/proc/sys/kernel/random/boot_id"}) {
      std::string s = read_first_line(p);
      if (!s.empty()) {
        return s;
      }
    }
    return std::string("unknown");
  }();
  return id;
}

const std::string& host_name() {
  if (g_host_name.empty()) {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) == 0) {
      g_host_name = buf;
    } else {
      g_host_name = "localhost";
    }
  }
  return g_host_name;
}

void set_host_name(const std::string& name) { g_host_name = name; }

}  // namespace needle::core
