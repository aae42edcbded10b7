// Boot time to RFC 3339: the per-thread cache of the seconds part must never leak into another
// second, nanoseconds keep their leading zeros, and a short buffer is cut, not overrun.
#include <gtest/gtest.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "clock.h"

namespace needle::core {
namespace {

// Parses "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" back to nanoseconds since the epoch.
int64_t parse(const std::string& s) {
  tm t{};
  EXPECT_EQ(s.size(), 30u) << s;
  EXPECT_EQ(s.back(), 'Z') << s;
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S.", &t);
  EXPECT_NE(rest, nullptr) << s;
  if (rest == nullptr) {
    return 0;
  }
  return static_cast<int64_t>(timegm(&t)) * 1'000'000'000 + std::stoll(std::string(rest, 9));
}

TEST(Clock, EveryInstantFormatsToItselfAcrossSecondBoundaries) {
  resample_clock_offset();
  const uint64_t base = boot_ns_now();
  const int64_t at_base = parse(format_boot_time(base));
  // Steps that land in the same second, the next one, and back again.
  for (uint64_t step : {0ull, 1ull, 999'999'999ull, 1'000'000'000ull, 123'456'789ull,
                        3'600'000'000'001ull, 5ull, 86'400'000'000'000ull, 2ull}) {
    uint64_t t = base + step;
    EXPECT_EQ(parse(format_boot_time(t)) - at_base, static_cast<int64_t>(step)) << step;
  }
}

TEST(Clock, NanosecondsKeepTheirLeadingZeros) {
  resample_clock_offset();
  uint64_t now = boot_ns_now();
  uint64_t t = now - (parse(format_boot_time(now)) % 1'000'000'000) + 7;   // .000000007
  std::string s = format_boot_time(t);
  EXPECT_EQ(s.substr(19), ".000000007Z") << s;
}

TEST(Clock, AShortBufferIsCutAndTerminated) {
  char buf[11];
  EXPECT_EQ(format_boot_time(boot_ns_now(), buf, sizeof buf), 10u);
  EXPECT_EQ(std::string(buf).size(), 10u);   // "YYYY-MM-DD"
  EXPECT_EQ(buf[4], '-');
  char none[1] = {'x'};
  EXPECT_EQ(format_boot_time(boot_ns_now(), none, 0), 0u);
  EXPECT_EQ(none[0], 'x');
}

// The calendar arithmetic against gmtime_r: every day from 1970 to 2200 (leap years, 2000 and
// 2100 included) at a few times of day.
TEST(Clock, UnixTimesMatchGmtimeOnEveryDay) {
  for (int64_t day = 0; day < 230 * 366; ++day) {
    for (int64_t sec : {int64_t{0}, int64_t{1}, int64_t{43'199}, int64_t{86'399}}) {
      int64_t t = day * 86400 + sec;
      tm want{};
      time_t tt = static_cast<time_t>(t);
      ASSERT_NE(gmtime_r(&tt, &want), nullptr);
      char expect[96];
      std::snprintf(expect, sizeof expect, "%04d-%02d-%02dT%02d:%02d:%02d.000000042Z",
                    want.tm_year + 1900, want.tm_mon + 1, want.tm_mday, want.tm_hour,
                    want.tm_min, want.tm_sec);
      char got[40];
      size_t n = format_unix_ns(static_cast<uint64_t>(t) * 1'000'000'000 + 42, got, sizeof got);
      ASSERT_EQ(std::string(got, n), expect) << t;
    }
  }
}

// The date part of the last second is reused: times within one second, then another second,
// then the first again, each get their own date and nanoseconds.
TEST(Clock, ReusedSecondsKeepTheirOwnDigits) {
  const uint64_t a = 1'700'000'000ull * 1'000'000'000;
  const uint64_t b = 1'800'000'000ull * 1'000'000'000;
  char got[40];
  auto fmt = [&](uint64_t ns) { return std::string(got, format_unix_ns(ns, got, sizeof got)); };
  EXPECT_EQ(fmt(a + 1), "2023-11-14T22:13:20.000000001Z");
  EXPECT_EQ(fmt(a + 999'999'999), "2023-11-14T22:13:20.999999999Z");
  EXPECT_EQ(fmt(b + 5), "2027-01-15T08:00:00.000000005Z");
  EXPECT_EQ(fmt(a), "2023-11-14T22:13:20.000000000Z");
  EXPECT_EQ(fmt(a + 1'000'000'000), "2023-11-14T22:13:21.000000000Z");
}

TEST(Clock, EventIdsAreTheStartTimeAndTheSequenceInHex) {
  using Pair = std::pair<uint64_t, uint64_t>;
  for (auto [start, seq] : {Pair{0, 0}, Pair{1, 1}, Pair{0x18c2f0a1b2c3d4e5ull, 0x60},
                            Pair{UINT64_MAX, UINT64_MAX}, Pair{42, 0x1000}, Pair{42, 7}}) {
    char id[kEventIdMax];
    size_t n = format_event_id(start, seq, id);
    char want[64];
    std::snprintf(want, sizeof want, "%016llx-%llx", static_cast<unsigned long long>(start),
                  static_cast<unsigned long long>(seq));
    EXPECT_EQ(std::string(id, n), want);
  }
}

}  // namespace
}  // namespace needle::core
