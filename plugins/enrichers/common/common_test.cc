// The enrichers' shared helpers: the bounded LRU cache and the parked-event deadlines.
#include <gtest/gtest.h>

#include <set>
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
// hash64 reads every byte once whatever the length (words, then a tail), and the seed and the
// length count: every prefix of a string, every one-byte change and every seed hash apart.
TEST(Hash64, EveryByteLengthAndSeedCounts) {
  const std::string s = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java\0tail";
  std::set<uint64_t> seen;
  for (size_t n = 0; n <= s.size(); ++n) {
    const std::string_view v(s.data(), n);
    EXPECT_EQ(hash64(v), hash64(std::string(v)));   // the bytes, not where they are
    EXPECT_TRUE(seen.insert(hash64(v)).second) << n;
    EXPECT_TRUE(seen.insert(hash64(v, 1)).second) << n;
    for (size_t i = 0; i < n; ++i) {
      std::string changed(v);
      changed[i] = static_cast<char>(changed[i] ^ 1);
      EXPECT_TRUE(seen.insert(hash64(changed)).second) << n << " " << i;
    }
  }
  EXPECT_EQ(hash64(std::string_view()), hash64(""));
}

}  // namespace needle::enrich
