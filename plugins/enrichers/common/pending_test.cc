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

class PendingDeadlinesTest : public ::testing::Test {
 protected:
  // Parks `ev` first at kNow: its deadline.
  uint64_t park(TestEvent& ev) { return p_.deadline(ev.view(), kNow, kTimeout, 0); }
  TestHost th_{"pending"};
  PendingDeadlines p_{th_.api()};
  TestEvent a_;
  TestEvent b_;
};

TEST_F(PendingDeadlinesTest, AnEventKeepsTheDeadlineOfItsFirstPark) {
  EXPECT_EQ(park(a_), kNow + kTimeout);
  // Called again before it (woken early, the deadline it was given back): the same one.
  EXPECT_EQ(p_.deadline(a_.view(), kNow + 10, kTimeout, kNow + kTimeout), kNow + kTimeout);
  EXPECT_EQ(p_.size(), 1u);
  p_.done(a_.view());
  EXPECT_EQ(p_.size(), 0u);
}

TEST_F(PendingDeadlinesTest, APassedDeadlineFromTheCoreIsTheAnswer) {
  ASSERT_EQ(park(a_), kNow + kTimeout);
  ASSERT_EQ(park(b_), kNow + kTimeout);
  // Too many parked: the core calls with 1 long before the enricher's own deadline. The
  // enricher must finish now (the answer is in the past) and then drops the entry.
  EXPECT_EQ(p_.deadline(a_.view(), kNow + 10, kTimeout, 1), 1u);
  p_.done(a_.view());
  EXPECT_EQ(p_.size(), 1u);   // b's stays
  p_.done(b_.view());
  EXPECT_EQ(p_.size(), 0u);
}

TEST_F(PendingDeadlinesTest, DoneOfAnEventNeverParkedChangesNothing) {
  ASSERT_EQ(park(a_), kNow + kTimeout);
  p_.done(b_.view());
  EXPECT_EQ(p_.size(), 1u);
}

}  // namespace
}  // namespace needle::enrich
