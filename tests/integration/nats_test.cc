// sink/nats against a real three-server nats-server cluster with JetStream on loopback, started
// and stopped by each test (tests/peers/nats-cluster.sh). What the stream holds is read back
// with libnats, message by message, and compared with a file sink fed by the same needle.
#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "harness.h"

namespace needle::test {
namespace {

bool port_free(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// A base port B with B..B+2, B+100..B+102 and B+200..B+202 free.
uint16_t free_base() {
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto b = static_cast<uint16_t>(20000 + (rng() % 400) * 20);
    bool ok = true;
    for (int off : {0, 1, 2, 100, 101, 102, 200, 201, 202}) {
      ok = ok && port_free(static_cast<uint16_t>(b + off));
    }
    if (ok) {
      return b;
    }
  }
  return 0;
}

// The monitoring endpoint through curl (it answers large documents chunked).
std::string http_get(uint16_t port, const std::string& path) {
  Result r = run({"/usr/bin/curl", "-sf", "--max-time", "5",
                  "http://127.0.0.1:" + std::to_string(port) + path});
  return r.exit_code == 0 ? r.out : std::string();
}

struct StoredMsg {
  std::string subject;
  std::string msg_id;
  nlohmann::json event;
};

class NatsSink : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = free_base();
    ASSERT_NE(base_, 0) << "no free loopback ports for the cluster";
    Result r = run({"/bin/bash", script(), "up", dir_.file("cluster"), std::to_string(base_)});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    urls_ = r.out.substr(0, r.out.find('\n'));
  }
  void TearDown() override { run({"/bin/bash", script(), "down", dir_.file("cluster")}); }

  std::string script() const { return source_dir() + "/tests/peers/nats-cluster.sh"; }
  uint16_t monitor(int server) const { return static_cast<uint16_t>(base_ + 200 + server - 1); }
  std::string servers_toml() const {
    std::string out = "[";
    for (int i = 0; i < 3; ++i) {
      out += std::string(i ? ", " : "") + "\"nats://127.0.0.1:" + std::to_string(base_ + i) + "\"";
    }
    return out + "]";
  }
  std::string config(const std::string& stream, const std::string& extra = "") {
    return needle_section("shutdown_timeout = 60") + "[[source]]\nplugin = \"process\"\n" +
           "[[sink]]\nplugin = \"file\"\npath = \"" + dir_.file("events.jsonl") + "\"\n" +
           "[[sink]]\nplugin = \"nats\"\nservers = " + servers_toml() + "\nsubject = \"" +
           lower(stream) + ".{type}\"\nstream = \"" + stream +
           "\"\ncreate_stream = true\nstream_replicas = 3\nack_timeout_ms = 2000\n" + extra + "\n";
  }
  static std::string lower(std::string s) {
    for (char& c : s) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
  }

  /// Every message of `stream`, read with libnats from the servers still alive.
  std::vector<StoredMsg> stream_messages(const std::string& stream) {
    std::vector<StoredMsg> out;
    natsOptions* opts = nullptr;
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    jsStreamInfo* si = nullptr;
    std::vector<std::string> urls;
    for (int i = 0; i < 3; ++i) {
      urls.push_back("nats://127.0.0.1:" + std::to_string(base_ + i));
    }
    const char* u[3] = {urls[0].c_str(), urls[1].c_str(), urls[2].c_str()};
    natsOptions_Create(&opts);
    natsOptions_SetServers(opts, u, 3);
    natsOptions_SetTimeout(opts, 2000);
    natsStatus s = natsConnection_Connect(&nc, opts);
    EXPECT_EQ(s, NATS_OK) << natsStatus_GetText(s);
    if (s == NATS_OK && natsConnection_JetStream(&js, nc, nullptr) == NATS_OK) {
      jsErrCode jerr = static_cast<jsErrCode>(0);
      s = js_GetStreamInfo(&si, js, stream.c_str(), nullptr, &jerr);
      EXPECT_EQ(s, NATS_OK) << natsStatus_GetText(s) << " jerr " << int(jerr);
      uint64_t first = s == NATS_OK ? si->State.FirstSeq : 1;
      uint64_t last = s == NATS_OK ? si->State.LastSeq : 0;
      for (uint64_t seq = first; seq <= last && first > 0; ++seq) {
        natsMsg* m = nullptr;
        if (js_GetMsg(&m, js, stream.c_str(), seq, nullptr, &jerr) != NATS_OK) {
          ADD_FAILURE() << "cannot read message " << seq;
          continue;
        }
        StoredMsg sm;
        sm.subject = natsMsg_GetSubject(m);
        const char* id = nullptr;
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) {
          sm.msg_id = id;
        }
        sm.event = nlohmann::json::parse(
            std::string(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m))), nullptr,
            false);
        out.push_back(std::move(sm));
        natsMsg_Destroy(m);
      }
      jsStreamInfo_Destroy(si);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    return out;
  }

  /// Messages of `stream` on one server's monitoring endpoint (-1: no such stream there).
  int64_t replica_count(int server, const std::string& stream) {
    auto j = nlohmann::json::parse(http_get(monitor(server), "/jsz?streams=true"), nullptr, false);
    if (j.is_discarded()) {
      return -1;
    }
    for (const auto& acc : j.value("account_details", nlohmann::json::array())) {
      for (const auto& s : acc.value("stream_detail", nlohmann::json::array())) {
        if (s.value("name", "") == stream) {
          return s["state"].value("messages", int64_t{-1});
        }
      }
    }
    return -1;
  }

  /// Each file-sink event is in the stream exactly once, on its subject, keyed by its id.
  void expect_exactly_once(const std::string& stream, size_t markers_expected,
                           const std::string& marker) {
    auto sent = read_events(dir_.file("events.jsonl"));
    auto stored = stream_messages(stream);
    ASSERT_FALSE(sent.empty());
    std::map<std::string, std::vector<const StoredMsg*>> by_id;
    for (const auto& m : stored) {
      ASSERT_FALSE(m.event.is_discarded()) << "a message is not JSON";
      by_id[str_field(m.event, "id")].push_back(&m);
    }
    size_t markers = 0;
    for (const auto& ev : sent) {
      std::string id = str_field(ev, "id");
      auto it = by_id.find(id);
      ASSERT_NE(it, by_id.end()) << "lost: " << ev.dump();
      ASSERT_EQ(it->second.size(), 1u) << "stored " << it->second.size() << " times: " << id;
      const StoredMsg& m = *it->second.front();
      EXPECT_EQ(m.event, ev);
      EXPECT_EQ(m.subject, lower(stream) + "." + str_field(ev, "type"));
      EXPECT_EQ(m.msg_id, str_field(ev, "host.id") + "-" + id);
      const nlohmann::json* args = field(ev, "process.args");
      markers += str_field(ev, "type") == "process.exec" && args && args->size() > 1 &&
                         (*args)[1] == marker
                     ? 1
                     : 0;
    }
    EXPECT_EQ(stored.size(), sent.size()) << "the stream holds exactly the file sink's events";
    EXPECT_EQ(markers, markers_expected);
  }

  TempDir dir_;
  uint16_t base_ = 0;
  std::string urls_;
};

void exec_markers(const std::string& marker, int count) {
  for (int i = 0; i < count; ++i) {
    int status = 0;
    spawn_wait("/bin/true", {"true", marker, std::to_string(i)}, &status);
  }
}

TEST_F(NatsSink, EveryEventIsStoredOnceOnAllThreeReplicas) {
  Needle n(dir_);
  NEEDLE_START_BPF(n, config("NEEDLEONE"));
  exec_markers("nats-all", 100);
  ASSERT_EQ(n.stop(), 0) << n.err();
  EXPECT_NE(n.err().find("created stream NEEDLEONE"), std::string::npos) << n.err();
  expect_exactly_once("NEEDLEONE", 100, "nats-all");
  size_t sent = read_events(dir_.file("events.jsonl")).size();
  for (int server = 1; server <= 3; ++server) {
    EXPECT_TRUE(eventually([&] {
      return replica_count(server, "NEEDLEONE") == static_cast<int64_t>(sent);
    })) << "server n"
        << server << " holds " << replica_count(server, "NEEDLEONE") << " of " << sent;
  }
}

TEST_F(NatsSink, KillingTheConnectedServerMidRunLosesAndDuplicatesNothing) {
  Needle n(dir_);
  NEEDLE_START_BPF(n, config("NEEDLEKILL"));
  // Which server does needle publish through? That is the one to kill.
  int victim = 0;
  ASSERT_TRUE(eventually([&] {
    for (int s = 1; s <= 3 && victim == 0; ++s) {
      if (http_get(monitor(s), "/connz").find("\"name\": \"needle\"") != std::string::npos) {
        victim = s;
      }
    }
    return victim != 0;
  })) << "needle's connection is on no server";
  std::atomic<bool> killed{false};
  std::thread load([&] {
    for (int i = 0; i < 300; ++i) {
      int status = 0;
      spawn_wait("/bin/true", {"true", "nats-kill", std::to_string(i)}, &status);
      if (i == 100) {
        Result r =
            run({"/bin/bash", script(), "kill", dir_.file("cluster"), std::to_string(victim)});
        killed = r.exit_code == 0;
      }
    }
  });
  load.join();
  ASSERT_TRUE(killed.load());
  ASSERT_EQ(n.stop(SIGTERM, std::chrono::seconds(90)), 0) << n.err();
  std::printf("[ measure ] killed n%d, the server needle published through\n", victim);
  std::istringstream log(n.err());
  for (std::string line; std::getline(log, line);) {
    if (line.find("nats") != std::string::npos) {
      std::printf("[ needle  ] %s\n", line.c_str());  // the failover as needle saw it
    }
  }
  EXPECT_NE(n.err().find("nats: disconnected"), std::string::npos) << n.err();
  EXPECT_NE(n.err().find("needle summary (clean)"), std::string::npos) << n.err();
  expect_exactly_once("NEEDLEKILL", 300, "nats-kill");
}

TEST_F(NatsSink, CheckConnectNamesAMissingStream) {
  std::string cfg = needle_section() + "[[sink]]\nplugin = \"nats\"\nservers = " + servers_toml() +
                    "\nstream = \"NOSUCHSTREAM\"\n";
  write_file(dir_.file("c.toml"), cfg);
  Result r = run({needle_bin(), "check", "--connect", "-c", dir_.file("c.toml")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("stream NOSUCHSTREAM does not exist"), std::string::npos) << r.err;
}

TEST(NatsSinkConfig, BadValuesAreConfigErrorsNamingTheKey) {
  TempDir d;
  struct Case {
    std::string keys;
    std::string key;
    std::string says;
  } cases[] = {
      {"servers = [\"127.0.0.1:4222\"]", "servers", "expected nats://"},
      {"servers = [\"nats://127.0.0.1:0\"]", "servers", "1 to 65535"},
      {"servers = []", "servers", "at least one"},
      {"subject = \"needle.{host}\"", "subject", "{host}"},
      {"subject = \"needle.>\"", "subject", "not '>'"},
      {"format = \"xml\"", "format", "json or msgpack"},
      {"create_stream = true", "create_stream", "stream name"},
      {"stream = \"a.b\"", "stream", "cannot hold '.'"},
      {"stream_replicas = 7", "stream_replicas", "1 to 5"},
      {"ack_timeout_ms = -1", "ack_timeout_ms", "from 1"},
      {"ca_file = \"/nonexistent.pem\"", "ca_file", "no such file"},
      {"password_file = \"/etc/hostname\"", "password_file", "needs a user"},
  };
  for (const auto& c : cases) {
    write_file(d.file("bad.toml"),
               needle_section() + "[[sink]]\nplugin = \"nats\"\n" + c.keys + "\n");
    Result r = run({needle_bin(), "check", "-c", d.file("bad.toml")});
    EXPECT_EQ(r.exit_code, 2) << c.keys << "\n" << r.err;
    EXPECT_NE(r.err.find(c.key), std::string::npos) << c.keys << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.keys << "\n" << r.err;
  }
}

TEST(NatsSinkConfig, CheckConnectNamesUnreachableServers) {
  TempDir d;
  uint16_t p = free_base();
  std::string url = "nats://127.0.0.1:" + std::to_string(p);
  write_file(d.file("c.toml"), needle_section() + "[[sink]]\nplugin = \"nats\"\nservers = [\"" +
                                   url + "\"]\nconnect_timeout_ms = 500\n");
  Result plain = run({needle_bin(), "check", "-c", d.file("c.toml")});
  EXPECT_EQ(plain.exit_code, 0) << "check without --connect does no network I/O: " << plain.err;
  Result r = run({needle_bin(), "check", "--connect", "-c", d.file("c.toml")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot connect to any of " + url), std::string::npos) << r.err;
}

}  // namespace
}  // namespace needle::test
