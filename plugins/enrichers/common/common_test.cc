// The enrichers' shared helpers: the bounded LRU cache and the parked-event deadlines.
#include <gtest/gtest.h>

#include <string>

#include "lru_cache.h"
#include "pending.h"

namespace needle::enrich {
namespace {

TEST(LruCache, EvictsTheLeastRecentlyUsedWhenFull) {
  LruCache<int, std::string> c(2);
  EXPECT_FALSE(c.put(1, "one"));
  EXPECT_FALSE(c.put(2, "two"));
  ASSERT_NE(c.find(1), nullptr);  // 1 is now the most recent
  EXPECT_TRUE(c.put(3, "three"));
  EXPECT_EQ(c.find(2), nullptr);
  EXPECT_EQ(*c.find(1), "one");
  EXPECT_EQ(*c.find(3), "three");
  EXPECT_EQ(c.size(), 2u);
}

TEST(LruCache, ReplacingAKeyDoesNotEvict) {
  LruCache<int, int> c(1);
  EXPECT_FALSE(c.put(1, 1));
  EXPECT_FALSE(c.put(1, 2));
  EXPECT_EQ(*c.find(1), 2);
  c.erase(1);
  EXPECT_EQ(c.find(1), nullptr);
}

TEST(Fnv1a, MatchesTheReferenceVector) {
  EXPECT_EQ(fnv1a(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a("a"), 0xaf63dc4c8601ec8cull);
}

}  // namespace
}  // namespace needle::enrich
