// The disk spill: order, acknowledgement, the size bound, persistence across a restart, the
// memory queue put back in front at shutdown, and a torn record after a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "queues.h"
#include "spill.h"

namespace needle::core {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class SpillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("needle-spill-" + std::to_string(getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  DiskSpill* open(uint64_t max = 1 << 20) {
    auto r = DiskSpill::open(dir_, max);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : nullptr;
  }
  std::string dir_;
};

std::vector<std::string> drain(DiskSpill& s) {
  std::vector<std::string> all;
  std::vector<std::string> buf;
  while (size_t n = s.peek(buf, 0, 3)) {
    all.insert(all.end(), buf.begin(), buf.begin() + static_cast<long>(n));
    s.commit(n);
  }
  return all;
}

TEST_F(SpillTest, KeepsOrderAndRemovesOnlyWhatWasCommitted) {
  std::unique_ptr<DiskSpill> s(open());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(s->append("e" + std::to_string(i)));
  }
  std::vector<std::string> out;
  ASSERT_EQ(s->peek(out, 0, 2), 2u);
  EXPECT_EQ(out[0], "e0");
  ASSERT_EQ(s->peek(out, 0, 2), 2u);   // not committed: offered again
  EXPECT_EQ(out[0], "e0");
  s->commit(2);
  EXPECT_EQ(s->count(), 3u);
  EXPECT_EQ(drain(*s), (std::vector<std::string>{"e2", "e3", "e4"}));
  EXPECT_TRUE(s->empty());
}

TEST_F(SpillTest, RefusesPastItsBound) {
  std::unique_ptr<DiskSpill> s(open(100));
  int kept = 0;
  while (s->append(std::string(20, 'x'))) {
    ++kept;
  }
  EXPECT_EQ(kept, 3);   // 3 x (20 + 8 header) <= 100 < 4 x 28
  EXPECT_LE(s->bytes(), 100u);
}

TEST_F(SpillTest, SurvivesARestartFromTheCursor) {
  {
    std::unique_ptr<DiskSpill> s(open());
    for (int i = 0; i < 4; ++i) {
      s->append("r" + std::to_string(i));
    }
    std::vector<std::string> out;
    s->peek(out, 0, 1);
    s->commit(1);
  }
  std::unique_ptr<DiskSpill> again(open());
  EXPECT_EQ(again->count(), 3u);
  EXPECT_EQ(drain(*again), (std::vector<std::string>{"r1", "r2", "r3"}));
  again->append("new");
  EXPECT_EQ(drain(*again), (std::vector<std::string>{"new"}));
}

TEST_F(SpillTest, PrependPutsOlderEventsFirstEvenAfterAPartialDelivery) {
  std::unique_ptr<DiskSpill> s(open());
  s->append("s1");
  s->append("s2");
  s->append("s3");
  std::vector<std::string> out;
  s->peek(out, 0, 1);
  s->commit(1);   // s1 delivered
  std::string m1 = "m1";
  std::string m2 = "m2";
  EXPECT_EQ(s->prepend({&m1, &m2}), 2u);
  EXPECT_EQ(drain(*s), (std::vector<std::string>{"m1", "m2", "s2", "s3"}));
}

TEST_F(SpillTest, TornRecordAfterACrashIsCutAndCounted) {
  {
    std::unique_ptr<DiskSpill> s(open());
    s->append("good1");
    s->append("good2");
  }
  // Simulate a crash in the middle of a write: half a record at the end of the segment.
  for (auto& de : fs::directory_iterator(dir_)) {
    if (de.path().extension() == ".seg") {
      std::ofstream f(de.path(), std::ios::app | std::ios::binary);
      uint32_t len = 1000;
      f.write(reinterpret_cast<const char*>(&len), 4);
      f.write("torn", 4);
    }
  }
  std::unique_ptr<DiskSpill> again(open());
  EXPECT_EQ(again->count(), 2u);
  EXPECT_EQ(again->corrupt(), 1u);
  EXPECT_EQ(drain(*again), (std::vector<std::string>{"good1", "good2"}));
  again->append("after");
  EXPECT_EQ(drain(*again), (std::vector<std::string>{"after"}));
}

TEST_F(SpillTest, SpillingQueueOverflowsToDiskAndKeepsOrder) {
  SinkQueue q(2, OnFull::kSpill, open());
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(q.push("q" + std::to_string(i)));
  }
  EXPECT_EQ(q.dropped(), 0u);
  EXPECT_GT(q.spill_bytes(), 0u);
  std::vector<std::string> got;
  SinkBatch out;
  q.push("q6");   // spill not empty yet: goes behind it, never ahead
  while (size_t n = q.peek_batch(out, 4, Clock::now())) {
    got.insert(got.end(), out.items.begin(), out.items.begin() + static_cast<long>(n));
    q.commit();
  }
  EXPECT_EQ(got, (std::vector<std::string>{"q0", "q1", "q2", "q3", "q4", "q5", "q6"}));
  EXPECT_TRUE(q.drained());
}

TEST_F(SpillTest, AbandonPersistsTheMemoryQueueAndTheBatchInFlight) {
  {
    SinkQueue q(4, OnFull::kSpill, open());
    q.push("a");
    q.push("b");
    q.push("c");
    SinkBatch out;
    ASSERT_EQ(q.peek_batch(out, 2, Clock::now()), 2u);   // a, b in flight, never acknowledged
    EXPECT_EQ(q.abandon(), 0u);                         // nothing lost
  }
  std::unique_ptr<DiskSpill> again(open());
  EXPECT_EQ(drain(*again), (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace needle::core
