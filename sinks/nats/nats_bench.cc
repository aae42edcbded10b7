// Throughput of the nats sink's publisher against a running JetStream: COUNT synthetic JSON
// events shaped like the core's (about 600 bytes), batches of 512 (the core's sink batch), each
// batch published asynchronously with Nats-Msg-Id and fully acked before the next, exactly as
// the plugin does. Prints events/s.
//
//   nats_bench URL[,URL...] STREAM [COUNT=100000] [REPLICAS=3]
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "nats_publisher.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: nats_bench URL[,URL...] STREAM [COUNT] [REPLICAS]\n");
    return 2;
  }
  using namespace needle::nats;
  Settings s;
  std::string urls = argv[1];
  for (size_t pos = 0; pos <= urls.size();) {
    size_t comma = urls.find(',', pos);
    s.servers.push_back(urls.substr(pos, comma == std::string::npos ? comma : comma - pos));
    pos = comma == std::string::npos ? urls.size() + 1 : comma + 1;
  }
  s.stream = argv[2];
  s.create_stream = true;
  s.stream_replicas = argc > 4 ? std::atoi(argv[4]) : 3;
  std::string prefix;
  for (char c : s.stream) {
    prefix.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  s.subject = *SubjectTemplate::parse(prefix + ".{type}");  // one subject space per stream
  size_t count = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 100000;
  std::random_device rd;
  char run[24];
  std::snprintf(run, sizeof run, "%08x%08x", rd(), rd());
  s.msg_id_prefix = std::string("bench-") + run + "-";
  Publisher p(s, [](int, const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); });
  if (auto c = p.connect(false); !c) {
    std::fprintf(stderr, "%s\n", c.error().message.c_str());
    return 1;
  }
  if (auto st = p.ensure_stream(); !st) {
    std::fprintf(stderr, "%s\n", st.error().message.c_str());
    return 1;
  }
  constexpr size_t kBatch = 512;
  std::vector<std::string> storage;
  std::vector<std::string_view> batch;
  size_t bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    const char* type = i % 3 == 0 ? "process.exec" : i % 3 == 1 ? "process.fork" : "process.exit";
    storage.push_back(
        "{\"id\":\"0000018c2f3a9b7e-" + std::to_string(i) +
        "\",\"time\":\"2026-11-29T12:34:56.123456789Z\",\"type\":\"" + type +
        "\",\"source\":\"process\",\"host\":{\"name\":\"bench-host\",\"id\":\"5f0c2a7d9e8b4c1a"
        "9d3e7f6a5b4c3d2e\"},\"process\":{\"pid\":" +
        std::to_string(10000 + i % 50000) +
        ",\"ppid\":1234,\"uid\":0,\"comm\":\"bash\",\"exe\":\"/usr/bin/bash\",\"args\":["
        "\"/bin/bash\",\"-c\",\"echo hello from the benchmark " +
        std::to_string(i) +
        "\"],\"cwd\":\"/home/user/src/project\",\"start_time\":\"2026-11-29T12:34:56.10000000"
        "0Z\",\"entity_id\":\"9f86d081884c7d659a2feaa0c55ad015\"},\"parent\":{\"pid\":1234,"
        "\"exe\":\"/usr/sbin/sshd\",\"entity_id\":\"2c26b46b68ffc68ff99b453c1d304134\"}}");
    bytes += storage.back().size();
  }
  auto t0 = std::chrono::steady_clock::now();
  size_t sent = 0;
  size_t retries = 0;
  while (sent < count) {
    batch.clear();
    size_t n = std::min(kBatch, count - sent);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(storage[sent + i]);
    }
    auto r = p.publish(batch);
    if (!r) {
      std::fprintf(stderr, "retry: %s\n", r.error().message.c_str());
      if (++retries > 20) {
        return 1;
      }
      continue;
    }
    sent += n;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  PublisherStats st = p.stats();
  std::printf(
      "nats %s stream=%s replicas=%lld: %zu events (avg %zu B) in %.2f s = %.0f "
      "events/s, acked %llu, duplicates %llu, %zu retries\n",
      argv[1], argv[2], static_cast<long long>(s.stream_replicas), count, bytes / count, secs,
      double(count) / secs, static_cast<unsigned long long>(st.acked),
      static_cast<unsigned long long>(st.duplicates), retries);
  p.close();
  return 0;
}
