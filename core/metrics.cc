#include "metrics.h"

#include <algorithm>
#include <cstdio>

namespace needle::core {

std::string Metrics::render_labels(const Labels& labels) {
  if (labels.empty()) {
    return {};
  }
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) {
      out += ',';
    }
    out += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out + "}";
}

std::atomic<uint64_t>* Metrics::counter(const std::string& name, const Labels& labels,
                                        const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string l = render_labels(labels);
  for (auto& s : series_) {
    if (s.c && s.name == name && s.labels == l) {
      return s.c;
    }
  }
  counters_.emplace_back(0);
  series_.push_back(Series{name, l, labels, &counters_.back(), nullptr, {}});
  if (!help.empty()) {
    help_.emplace_back(name, help);
  }
  return &counters_.back();
}

std::atomic<int64_t>* Metrics::gauge(const std::string& name, const Labels& labels,
                                     const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string l = render_labels(labels);
  for (auto& s : series_) {
    if (s.g && s.name == name && s.labels == l) {
      return s.g;
    }
  }
  gauges_.emplace_back(0);
  series_.push_back(Series{name, l, labels, nullptr, &gauges_.back(), {}});
  if (!help.empty()) {
    help_.emplace_back(name, help);
  }
  return &gauges_.back();
}

void Metrics::gauge_fn(const std::string& name, const Labels& labels, std::function<double()> fn,
                       const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  series_.push_back(Series{name, render_labels(labels), labels, nullptr, nullptr, std::move(fn)});
  if (!help.empty()) {
    help_.emplace_back(name, help);
  }
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Series*> sorted;
  for (auto& s : series_) {
    sorted.push_back(&s);
  }
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Series* a, const Series* b) { return a->name < b->name; });
  std::string out;
  std::string last;
  for (const Series* s : sorted) {
    if (s->name != last) {
      last = s->name;
      for (auto& [n, h] : help_) {
        if (n == s->name) {
          out += "# HELP " + n + " " + h + "\n";
          break;
        }
      }
      out += "# TYPE " + s->name + (s->c ? " counter\n" : " gauge\n");
    }
    char buf[64];
    if (s->c) {
      std::snprintf(buf, sizeof buf, "%llu",
                    static_cast<unsigned long long>(s->c->load(std::memory_order_relaxed)));
    } else if (s->g) {
      std::snprintf(buf, sizeof buf, "%lld",
                    static_cast<long long>(s->g->load(std::memory_order_relaxed)));
    } else {
      std::snprintf(buf, sizeof buf, "%.17g", s->fn());
    }
    out += s->name + s->labels + " " + buf + "\n";
  }
  return out;
}

uint64_t Metrics::sum(const std::string& name, const Labels& match) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (auto& s : series_) {
    if (s.name != name || !s.c) {
      continue;
    }
    bool ok = std::all_of(match.begin(), match.end(), [&](auto& m) {
      return std::find(s.raw.begin(), s.raw.end(), m) != s.raw.end();
    });
    if (ok) {
      total += s.c->load(std::memory_order_relaxed);
    }
  }
  return total;
}

}  // namespace needle::core
