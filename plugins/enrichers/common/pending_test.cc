// Parked events' deadlines (pending.h): an entry lives from the event's first park until the
// enricher is done with it, including when the core calls back with a deadline that has passed
// (1: the core must send the event on at once), so that no entry outlives its event.
#include <gtest/gtest.h>

#include "pending.h"
#include "test_host.h"

namespace needle::enrich {
namespace {

using test::TestEvent;
using test::TestHost;

constexpr uint64_t kNow = 1'000'000'000;
constexpr uint64_t kTimeout = 50'000'000;

TEST(PendingDeadlines, AnEventKeepsTheDeadlineOfItsFirstPark) {
  TestHost th("pending");
  PendingDeadlines p(th.api());
  TestEvent a;
  EXPECT_EQ(p.deadline(a.view(), kNow, kTimeout, 0), kNow + kTimeout);
  // Called again before it (woken early, the deadline it was given back): the same one.
  EXPECT_EQ(p.deadline(a.view(), kNow + 10, kTimeout, kNow + kTimeout), kNow + kTimeout);
  EXPECT_EQ(p.size(), 1u);
  p.done(a.view());
  EXPECT_EQ(p.size(), 0u);
}

TEST(PendingDeadlines, APassedDeadlineFromTheCoreIsTheAnswer) {
  TestHost th("pending");
  PendingDeadlines p(th.api());
  TestEvent a;
  TestEvent b;
  ASSERT_EQ(p.deadline(a.view(), kNow, kTimeout, 0), kNow + kTimeout);
  ASSERT_EQ(p.deadline(b.view(), kNow, kTimeout, 0), kNow + kTimeout);
  // Too many parked: the core calls with 1 long before the enricher's own deadline. The
  // enricher must finish now (the answer is in the past) and then drops the entry.
  const uint64_t d = p.deadline(a.view(), kNow + 10, kTimeout, 1);
  EXPECT_EQ(d, 1u);
  EXPECT_LE(d, kNow + 10);
  p.done(a.view());
  EXPECT_EQ(p.size(), 1u);   // b's stays
  p.done(b.view());
  EXPECT_EQ(p.size(), 0u);
}

TEST(PendingDeadlines, DoneOfAnEventNeverParkedChangesNothing) {
  TestHost th("pending");
  PendingDeadlines p(th.api());
  TestEvent a;
  TestEvent other;
  ASSERT_EQ(p.deadline(a.view(), kNow, kTimeout, 0), kNow + kTimeout);
  p.done(other.view());
  EXPECT_EQ(p.size(), 1u);
}

}  // namespace
}  // namespace needle::enrich
