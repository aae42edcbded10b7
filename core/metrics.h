// Counters and gauges of the whole process, exported as Prometheus text. Registration takes a
// lock; updating a registered counter is one relaxed atomic add (any thread).
#ifndef NEEDLE_CORE_METRICS_H
#define NEEDLE_CORE_METRICS_H

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace needle::core {

class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  /// Returns the counter for (name, labels), creating it at 0. The pointer lives as long as
  /// the Metrics object.
  std::atomic<uint64_t>* counter(const std::string& name, const Labels& labels,
                                 const std::string& help = {});
  std::atomic<int64_t>* gauge(const std::string& name, const Labels& labels,
                              const std::string& help = {});
  /// A gauge computed when scraped.
  void gauge_fn(const std::string& name, const Labels& labels, std::function<double()> fn,
                const std::string& help = {});

  /// Prometheus text exposition format 0.0.4.
  std::string render() const;
  /// Sum of every series of `name` whose labels include all of `match`.
  uint64_t sum(const std::string& name, const Labels& match = {}) const;

 private:
  struct Series {
    std::string name;
    std::string labels;   // rendered {a="b",...}
    Labels raw;
    std::atomic<uint64_t>* c = nullptr;
    std::atomic<int64_t>* g = nullptr;
    std::function<double()> fn;
  };
  static std::string render_labels(const Labels& labels);

  mutable std::mutex mu_;
  std::deque<std::atomic<uint64_t>> counters_;
  std::deque<std::atomic<int64_t>> gauges_;
  std::vector<Series> series_;
  std::vector<std::pair<std::string, std::string>> help_;
};

}  // namespace needle::core

#endif  // NEEDLE_CORE_METRICS_H
