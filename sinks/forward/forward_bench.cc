// Throughput of the forward sink's transport against a running receiver: COUNT synthetic
// process.exec events shaped like the core's msgpack (about 600 bytes each), sent in batches of
// 512 (the core's sink batch) exactly as the plugin sends them. Prints events/s.
//
//   forward_bench ADDRESS [MODE=packed] [COUNT=200000] [ACK=1] [SHARED_KEY=]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "forward_client.h"
#include "needle/abi.h"

namespace {

struct Buf {
  std::string* out;
  void write(const char* p, size_t n) { out->append(p, n); }
};

void kv(msgpack::packer<Buf>& pk, const std::string& k, const std::string& v) {
  pk.pack(k);
  pk.pack(v);
}

std::string make_event(uint64_t seq) {
  std::string out;
  Buf b{&out};
  msgpack::packer<Buf> pk(b);
  pk.pack_map(7);
  kv(pk, "id", "0000018c2f3a9b7e-" + std::to_string(seq));
  kv(pk, "time", "2026-11-29T12:34:56.123456789Z");
  kv(pk, "type", seq % 3 == 0 ? "process.exec" : seq % 3 == 1 ? "process.fork" : "process.exit");
  kv(pk, "source", "process");
  pk.pack(std::string("host"));
  pk.pack_map(2);
  kv(pk, "name", "bench-host");
  kv(pk, "id", "5f0c2a7d9e8b4c1a9d3e7f6a5b4c3d2e");
  pk.pack(std::string("process"));
  pk.pack_map(9);
  pk.pack(std::string("pid"));
  pk.pack(static_cast<uint64_t>(10000 + seq % 50000));
  pk.pack(std::string("ppid"));
  pk.pack(static_cast<uint64_t>(1234));
  pk.pack(std::string("uid"));
  pk.pack(static_cast<uint64_t>(0));
  kv(pk, "comm", "bash");
  kv(pk, "exe", "/usr/bin/bash");
  pk.pack(std::string("args"));
  pk.pack(std::vector<std::string>{"/bin/bash", "-c",
                                   "echo hello from the benchmark " + std::to_string(seq)});
  kv(pk, "cwd", "/home/user/src/project");
  kv(pk, "start_time", "2026-11-29T12:34:56.100000000Z");
  kv(pk, "entity_id", "9f86d081884c7d659a2feaa0c55ad015");
  pk.pack(std::string("parent"));
  pk.pack_map(3);
  pk.pack(std::string("pid"));
  pk.pack(static_cast<uint64_t>(1234));
  kv(pk, "exe", "/usr/sbin/sshd");
  kv(pk, "entity_id", "2c26b46b68ffc68ff99b453c1d304134");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: forward_bench ADDRESS [MODE] [COUNT] [ACK] [SHARED_KEY]\n");
    return 2;
  }
  using namespace needle::forward;
  Settings s;
  auto addr = parse_address(argv[1]);
  auto mode = parse_mode(argc > 2 ? argv[2] : "packed");
  if (!addr || !mode) {
    std::fprintf(stderr, "bad address or mode\n");
    return 2;
  }
  size_t count = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 200000;
  s.address = *addr;
  s.mode = *mode;
  s.ack = (argc > 4 ? std::atoi(argv[4]) : 1) != 0 && s.mode != Mode::kStream;
  s.shared_key = argc > 5 ? argv[5] : "";
  s.self_hostname = "bench-sender";
  s.tag = *TagTemplate::parse("needle.{type}");
  s.tls_verify = false;
  ForwardClient client(s,
                       [](int, const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); });
  constexpr size_t kBatch = 512;
  std::vector<std::string> storage;
  std::vector<std::string_view> batch;
  size_t bytes = 0;
  for (size_t i = 0; i < kBatch * 8; ++i) {
    storage.push_back(make_event(i));
    bytes += storage.back().size();
  }
  auto t0 = std::chrono::steady_clock::now();
  size_t sent = 0;
  size_t retries = 0;
  while (sent < count) {
    batch.clear();
    size_t n = std::min(kBatch, count - sent);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(storage[(sent + i) % storage.size()]);
    }
    auto r = client.send(batch);
    if (!r) {
      ++retries;
      std::fprintf(stderr, "retry: %s\n", r.error().message.c_str());
      if (retries > 20) {
        return 1;
      }
      continue;
    }
    sent += n;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "forward %s mode=%s ack=%d: %zu events (avg %zu B) in %.2f s = %.0f events/s, "
      "%zu retries\n",
      argv[1], argc > 2 ? argv[2] : "packed", s.ack ? 1 : 0, count, bytes / storage.size(), secs,
      double(count) / secs, retries);
  return 0;
}
