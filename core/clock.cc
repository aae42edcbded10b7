#include "clock.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "event.h"

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
  return format_unix_ns(real < 0 ? 0 : static_cast<uint64_t>(real), out, cap);
}

namespace {

// "YYYY-MM-DDTHH:MM:SS." of one second since the epoch.
void format_second(uint64_t secs, char* out) {
  // Written by hand, without gmtime_r and snprintf: they were a sixth of the pipeline's time.
  // Days since the epoch to a civil date (proleptic Gregorian, as gmtime): shift the year to
  // start in March so the leap day ends it, then split into 400-year eras of 146097 days.
  auto days = static_cast<int64_t>(secs / 86400);
  auto day_secs = static_cast<uint32_t>(secs % 86400);
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  auto doe = static_cast<uint32_t>(z - era * 146097);                       // [0, 146096]
  uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;     // [0, 399]
  int64_t year = static_cast<int64_t>(yoe) + era * 400;
  uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                  // [0, 365]
  uint32_t mp = (5 * doy + 2) / 153;                                        // [0, 11]
  uint32_t mday = doy - (153 * mp + 2) / 5 + 1;                             // [1, 31]
  uint32_t month = mp < 10 ? mp + 3 : mp - 9;                               // [1, 12]
  year += month <= 2 ? 1 : 0;
  if (year > 9999) {
    year = 9999;   // four digits; needle will not run that long
  }
  auto put = [&](size_t at, uint32_t value, size_t digits) {
    for (size_t i = at + digits; i-- > at; value /= 10) {
      out[i] = static_cast<char>('0' + value % 10);
    }
  };
  put(0, static_cast<uint32_t>(year), 4);
  out[4] = '-';
  put(5, month, 2);
  out[7] = '-';
  put(8, mday, 2);
  out[10] = 'T';
  put(11, day_secs / 3600, 2);
  out[13] = ':';
  put(14, day_secs / 60 % 60, 2);
  out[16] = ':';
  put(17, day_secs % 60, 2);
  out[19] = '.';
}

// The last second formatted on this thread: events come in bursts within one second (and a
// process's start time recurs in each of its events), so most times reuse the date part.
// Zero-initialised POD: no guard on each thread-local access.
struct SecondCache {
  uint64_t secs;
  bool valid;
  char text[20];
};
thread_local SecondCache tl_second;

}  // namespace

size_t format_unix_ns(uint64_t unix_ns, char* out, size_t cap) {
  uint64_t secs = unix_ns / 1'000'000'000;
  auto nanos = static_cast<uint32_t>(unix_ns % 1'000'000'000);
  SecondCache& c = tl_second;
  if (!c.valid || c.secs != secs) {
    format_second(secs, c.text);
    c.secs = secs;
    c.valid = true;
  }
  char full[30];   // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
  std::memcpy(full, c.text, sizeof c.text);
  // The nine digits two at a time from a table of "00".."99", the first alone.
  static constexpr auto kPairs = [] {
    std::array<char, 200> t{};
    for (int i = 0; i < 100; ++i) {
      t[2 * i] = static_cast<char>('0' + i / 10);
      t[2 * i + 1] = static_cast<char>('0' + i % 10);
    }
    return t;
  }();
  for (size_t i = 28; i > 20; i -= 2, nanos /= 100) {
    std::memcpy(full + i - 1, &kPairs[2 * (nanos % 100)], 2);
  }
  full[20] = static_cast<char>('0' + nanos);
  full[29] = 'Z';
  if (cap == 0) {
    return 0;
  }
  size_t n = std::min(sizeof full, cap - 1);
  std::memcpy(out, full, n);
  out[n] = '\0';
  return n;
}

// Written by hand: snprintf was a visible part of each event's cost.
size_t format_event_id(uint64_t start_ns, uint64_t seq, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  // The start time is the same in every id of a run: its 16 digits are made once per thread.
  struct Prefix {
    uint64_t start_ns = 0;
    bool valid = false;
    char hex[16];
  };
  thread_local Prefix p;
  if (!p.valid || p.start_ns != start_ns) {
    uint64_t v = start_ns;
    for (int i = 15; i >= 0; --i) {
      p.hex[i] = kHex[v & 0xf];
      v >>= 4;
    }
    p.start_ns = start_ns;
    p.valid = true;
  }
  std::memcpy(out, p.hex, sizeof p.hex);
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
        std::string clean;
        sanitize_utf8(s, clean);   // events carry it unchecked (stamp_event)
        return clean;
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
      sanitize_utf8(buf, g_host_name);   // events carry it unchecked (stamp_event)
    } else {
      g_host_name = "localhost";
    }
  }
  return g_host_name;
}

void set_host_name(const std::string& name) { sanitize_utf8(name, g_host_name); }

}  // namespace needle::core
