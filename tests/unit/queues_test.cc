// Bounded queues: drop_oldest counts what it drops (for needle.gap), block waits, and a closed
// queue refuses (counted) instead of hanging.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "queues.h"

namespace needle::core {
namespace {

using Clock = std::chrono::steady_clock;

TEST(SinkQueue, DropOldestKeepsTheNewestAndCountsDrops) {
  SinkQueue q(3, OnFull::kDropOldest);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(q.push(std::to_string(i)));
  }
  SinkBatch out;
  size_t n = q.peek_batch(out, 10, Clock::now());
  ASSERT_EQ(n, 3u);
  EXPECT_EQ(out[0], "2");
  EXPECT_EQ(out[2], "4");
  q.commit();
  EXPECT_EQ(q.take_new_drops(), 2u);
  EXPECT_EQ(q.take_new_drops(), 0u);   // reported once
  EXPECT_EQ(q.dropped(), 2u);
}

// push_take hands the buffer over: the queue holds the bytes, the caller's string is free for
// the next event, and a refused event (closed queue) leaves the caller's bytes alone.
TEST(SinkQueue, PushTakeMovesTheBytesAndMixesWithCopies) {
  SinkQueue q(4, OnFull::kDropOldest);
  std::string buf(300, 'a');
  ASSERT_TRUE(q.push_take(buf));
  buf.assign("second");
  ASSERT_TRUE(q.push(buf));   // a copy: buf keeps its bytes
  EXPECT_EQ(buf, "second");
  ASSERT_TRUE(q.push_take(buf));
  buf.assign("reused");
  ASSERT_TRUE(q.push_take(buf));
  SinkBatch out;
  ASSERT_EQ(q.peek_batch(out, 10, Clock::now()), 4u);
  EXPECT_EQ(out[0], std::string(300, 'a'));
  EXPECT_EQ(out[1], "second");
  EXPECT_EQ(out[2], "second");
  EXPECT_EQ(out[3], "reused");
  q.commit();
  q.close_input();
  std::string kept = "refused";
  EXPECT_FALSE(q.push_take(kept));
  EXPECT_EQ(kept, "refused");
  EXPECT_EQ(q.dropped(), 1u);
}

TEST(SinkQueue, BlockWaitsForRoom) {
  SinkQueue q(1, OnFull::kBlock);
  ASSERT_TRUE(q.push("a"));
  std::thread producer([&] { EXPECT_TRUE(q.push("b")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  SinkBatch out;
  EXPECT_EQ(q.peek_batch(out, 10, Clock::now()), 1u);
  q.commit();
  producer.join();
  EXPECT_EQ(q.peek_batch(out, 10, Clock::now()), 1u);
  EXPECT_EQ(out[0], "b");
  EXPECT_EQ(q.dropped(), 0u);
}

TEST(SinkQueue, ClosingReleasesABlockedProducerAndCountsTheEvent) {
  SinkQueue q(1, OnFull::kBlock);
  ASSERT_TRUE(q.push("a"));
  std::thread producer([&] { EXPECT_FALSE(q.push("b")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(q.abandon(), 1u);
  producer.join();
  EXPECT_EQ(q.dropped(), 2u);
}

TEST(SinkQueue, CloseInputLetsTheConsumerDrain) {
  SinkQueue q(4, OnFull::kBlock);
  q.push("a");
  q.close_input();
  SinkBatch out;
  EXPECT_EQ(q.peek_batch(out, 10, Clock::now() + std::chrono::seconds(1)), 1u);
  EXPECT_FALSE(q.drained());
  q.commit();
  EXPECT_EQ(q.peek_batch(out, 10, Clock::now() + std::chrono::seconds(1)), 0u);
  EXPECT_TRUE(q.input_closed());
  EXPECT_TRUE(q.drained());
}

TEST(SinkQueue, ABatchInFlightIsNotDroppedByDropOldest) {
  SinkQueue q(3, OnFull::kDropOldest);
  q.push("a");
  q.push("b");
  SinkBatch out;
  ASSERT_EQ(q.peek_batch(out, 2, Clock::now()), 2u);   // a, b in flight
  q.push("c");
  q.push("d");   // full: drops c, the oldest not in flight
  EXPECT_EQ(q.dropped(), 1u);
  // The drop moved the slots in flight: the batch's views still read a and b (short events
  // live inside the string object that moved, so the batch holds copies of them).
  EXPECT_EQ(out[0], "a");
  EXPECT_EQ(out[1], "b");
  q.commit();
  ASSERT_EQ(q.peek_batch(out, 10, Clock::now()), 1u);
  EXPECT_EQ(out[0], "d");
}

// The same with events long enough to have buffers of their own, which the batch reads in
// place: the drop moves the slots, not the buffers.
TEST(SinkQueue, LongEventsInFlightAreReadInPlaceAcrossADrop) {
  SinkQueue q(3, OnFull::kDropOldest);
  const std::string a(100, 'a'), b(200, 'b');
  q.push(a);
  q.push(b);
  SinkBatch out;
  ASSERT_EQ(q.peek_batch(out, 2, Clock::now()), 2u);
  q.push(std::string(300, 'c'));
  q.push(std::string(400, 'd'));   // drops c
  EXPECT_EQ(out[0], a);
  EXPECT_EQ(out[1], b);
  q.commit();
  ASSERT_EQ(q.peek_batch(out, 10, Clock::now()), 1u);
  EXPECT_EQ(out[0], std::string(400, 'd'));
}

// push_take gives the caller back the buffer of an event the sink acknowledged (still in the
// cache), not the one a slot last held a queue's length of events ago.
TEST(SinkQueue, PushTakeHandsBackACommittedEventsBuffer) {
  SinkQueue q(64, OnFull::kBlock);
  std::string buf(1000, 'x');
  const char* first = buf.data();
  ASSERT_TRUE(q.push_take(buf));
  SinkBatch out;
  ASSERT_EQ(q.peek_batch(out, 10, Clock::now()), 1u);
  EXPECT_EQ(out[0].data(), first);   // read in place
  q.commit();
  buf.assign(1000, 'y');
  ASSERT_TRUE(q.push_take(buf));
  EXPECT_EQ(buf.data(), first);
  EXPECT_GE(buf.capacity(), 1000u);
  ASSERT_EQ(q.peek_batch(out, 10, Clock::now()), 1u);
  EXPECT_EQ(out[0], std::string(1000, 'y'));
}

TEST(SinkQueue, UnacknowledgedBatchIsOfferedAgain) {
  SinkQueue q(4, OnFull::kBlock);
  q.push("x");
  SinkBatch out;
  ASSERT_EQ(q.peek_batch(out, 10, Clock::now()), 1u);
  EXPECT_EQ(q.depth(), 1u);   // still queued until commit
}

TEST(EventQueue, PopTimesOutAndCloseWakes) {
  EventQueue q(2);
  EXPECT_EQ(q.pop(Clock::now() + std::chrono::milliseconds(10)), nullptr);
  EventPool pool;
  Event* e = pool.acquire();
  ASSERT_TRUE(q.push(e));
  EXPECT_EQ(q.pop(Clock::now()), e);
  q.close();
  EXPECT_FALSE(q.push(e));
  EXPECT_TRUE(q.closed_and_empty());
  pool.release(e);
}

// A deferring producer (the ring thread) wakes the consumer once per burst: wake() ends the
// burst, and a full queue wakes the consumer before the producer blocks, so a burst larger than
// the queue drains instead of deadlocking. The consumer's deadline is an hour: only a wakeup
// can end these waits.
TEST(EventQueue, DeferredBurstLargerThanTheQueueDrainsInOrder) {
  EventQueue q(8);
  EventPool pool;
  std::vector<Event*> sent;
  for (size_t i = 0; i < 100; ++i) {
    sent.push_back(pool.acquire());
  }
  std::vector<Event*> got;
  std::thread consumer([&] {
    std::vector<Event*> batch;
    while (got.size() < sent.size()) {
      q.pop_batch(batch, 16, Clock::now() + std::chrono::hours(1));
      got.insert(got.end(), batch.begin(), batch.end());
    }
  });
  for (Event* e : sent) {
    ASSERT_TRUE(q.push(e, true));
  }
  q.wake();   // the last few are below the wake threshold
  consumer.join();
  EXPECT_EQ(got, sent);
  for (Event* e : sent) {
    pool.release(e);
  }
}

TEST(EventQueue, WakeEndsTheConsumersWaitForASmallDeferredBurst) {
  EventQueue q(kWakeBatch * 2);
  EventPool pool;
  Event* e = pool.acquire();
  std::vector<Event*> batch;
  std::thread consumer([&] { q.pop_batch(batch, 16, Clock::now() + std::chrono::hours(1)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));   // let it wait (not required)
  ASSERT_TRUE(q.push(e, true));
  q.wake();
  consumer.join();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0], e);
  pool.release(e);
}

TEST(SinkQueue, DeferredPushesReachTheConsumerByWakeOrWhenTheQueueFills) {
  SinkQueue q(4, OnFull::kBlock);
  std::vector<std::string> seen;
  std::thread consumer([&] {
    SinkBatch out;
    while (seen.size() < 10) {
      size_t n = q.peek_batch(out, 3, Clock::now() + std::chrono::hours(1));
      seen.insert(seen.end(), out.items.begin(), out.items.begin() + static_cast<std::ptrdiff_t>(n));
      q.commit();
    }
  });
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(q.push(std::to_string(i), true));   // blocks when full: the consumer is woken
  }
  q.wake();
  consumer.join();
  ASSERT_EQ(seen.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(seen[static_cast<size_t>(i)], std::to_string(i));
  }
}

TEST(EventPool, ReusesReleasedEvents) {
  EventPool pool;
  Event* a = pool.acquire();
  a->set_str(NEEDLE_ROOT, "x", "y");
  pool.release(a);
  Event* b = pool.acquire();
  EXPECT_EQ(a, b);
  EXPECT_EQ(b->find(NEEDLE_ROOT, "x"), Event::kNone);
  EXPECT_EQ(pool.allocated(), 1u);
  pool.release(b);
}

TEST(EventPool, KeepsAtMostItsLimitOfFreeEventsAfterABurst) {
  EventPool pool;
  std::vector<Event*> burst;
  for (size_t i = 0; i < EventPool::kMaxFree + 10; ++i) {
    burst.push_back(pool.acquire());
  }
  EXPECT_EQ(pool.allocated(), EventPool::kMaxFree + 10);
  for (Event* e : burst) {
    pool.release(e);   // the last ten are freed, not kept
  }
  EXPECT_EQ(pool.allocated(), EventPool::kMaxFree);
}

}  // namespace
}  // namespace needle::core
