// enricher/cri against a real containerd with its CRI plugin (tests/peers/containerd.sh, a
// private socket and root): a pod sandbox and a container created through the CRI API from a
// locally imported image, a process run inside whose events (process source, cgroup enricher)
// carry the container's name, image, digest and its pod; a container id containerd does not
// know; containerd stopped and restarted while needle runs; and its socket missing at start.
// A runtime slower than timeout_ms is covered by the unit test with a fake gRPC server
// (plugins/enrichers/cri/cri_enricher_test.cc): a real peer cannot be made slow.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cri_api.grpc.pb.h"
#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;
namespace v1 = runtime::v1;

std::string peer_script() {
  return source_dir() + "/tests/peers/containerd.sh";
}

struct Peer {
  bool attempted = false;
  bool up = false;
  std::string address;  // socket path
  std::string image;
  std::string digest;
  std::string why;
};

Peer& peer() {
  static Peer p;
  return p;
}

// The kubepods folders are shared by every Cri test process ctest runs at the same time: one
// removing them at its end while another's runtime is making a pod below them fails that pod
// (its mkdir of the pod folder finds no parent). Each process holds this lock shared while its
// pods may exist and removes the shared folders only when it can take the lock alone.
int kubepods_lock() {
  static int fd = [] {
    std::error_code ec;   // a failure shows as the open's error below
    fs::create_directories("/run/needle-test", ec);
    return ::open("/run/needle-test/cri-kubepods.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  }();
  return fd;
}

// A failed test's output gets what needle and this process's containerd logged: under load a
// failure could be a pod the runtime did not start or a lookup that ran out of time, and the
// assertion alone does not tell them apart.
class LogsOnFailure {
 public:
  explicit LogsOnFailure(const Needle& n) : n_(n) {}
  LogsOnFailure(const LogsOnFailure&) = delete;
  LogsOnFailure& operator=(const LogsOnFailure&) = delete;
  ~LogsOnFailure() {
    if (!::testing::Test::HasFailure()) {
      return;
    }
    std::cerr << "--- needle's log\n" << n_.err() << "--- the end of containerd's log\n";
    const char* dir = std::getenv("NEEDLE_CTD_DIR");
    std::ifstream in(std::string(dir != nullptr ? dir : "/tmp/needle-test/containerd") +
                     "/containerd.log");
    std::vector<std::string> last;
    for (std::string line; std::getline(in, line);) {
      last.push_back(std::move(line));
      if (last.size() > 40) {
        last.erase(last.begin());
      }
    }
    for (const std::string& line : last) {
      std::cerr << line << '\n';
    }
  }

 private:
  const Needle& n_;
};

class Cri : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Peer& p = peer();
    if (geteuid() != 0) {
      p.why = "the containerd peer needs root";
      return;
    }
    // A containerd of this test process alone: ctest runs tests in parallel, and each test
    // of this file is its own process with its own peer.
    const std::string tag = std::to_string(getpid());
    setenv("NEEDLE_CTD_DIR", ("/tmp/needle-test/containerd-" + tag).c_str(), 1);
    setenv("NEEDLE_CTD_ROOT", ("/var/lib/needle-test/containerd-" + tag).c_str(), 1);
    setenv("NEEDLE_CTD_STATE", ("/run/needle-test/containerd-" + tag).c_str(), 1);
    p.attempted = true;
    if (kubepods_lock() < 0 || ::flock(kubepods_lock(), LOCK_SH) != 0) {
      p.why = std::string("cannot lock /run/needle-test/cri-kubepods.lock: ") +
              std::strerror(errno);
      return;
    }
    Result r = run({"/bin/bash", peer_script(), "up"}, 120);
    if (r.exit_code != 0) {
      p.why = "tests/peers/containerd.sh up failed:\n" + r.out + r.err;
      return;
    }
    std::istringstream in(r.out);
    std::string word;
    while (in >> word) {
      size_t eq = word.find('=');
      std::string k = word.substr(0, eq);
      std::string v = word.substr(eq + 1);
      (k == "address" ? p.address : k == "image" ? p.image : k == "digest" ? p.digest : word) = v;
    }
    p.up = !p.address.empty();
  }
  static void TearDownTestSuite() {
    if (!peer().attempted) {
      return;
    }
    // Also after a failed `up`, which may have left a daemon half-way.
    setenv("PURGE", "1", 1);
    run({"/bin/bash", peer_script(), "down"}, 120);
    unsetenv("PURGE");
    // The kubepods folders, when no other Cri test process may be making pods below them
    // (rmdir fails on a folder in use; see kubepods_lock).
    const int fd = kubepods_lock();
    ::flock(fd, LOCK_UN);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      return;
    }
    std::error_code ec;
    for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      ::rmdir((h.path() / "kubepods/besteffort").c_str());
      ::rmdir((h.path() / "kubepods").c_str());
    }
    ::flock(fd, LOCK_UN);
  }
  void SetUp() override {
    if (!peer().up) {
      NEEDLE_SKIP_OR_FAIL(peer().why);
    }
    channel_ = grpc::CreateChannel("unix://" + peer().address, grpc::InsecureChannelCredentials());
    stub_ = v1::RuntimeService::NewStub(channel_);
  }
  void TearDown() override {
    for (const std::string& id : pods_) {
      call([&](grpc::ClientContext* c) {
        v1::StopPodSandboxRequest rq;
        rq.set_pod_sandbox_id(id);
        v1::StopPodSandboxResponse rs;
        return stub_->StopPodSandbox(c, rq, &rs);
      });
      call([&](grpc::ClientContext* c) {
        v1::RemovePodSandboxRequest rq;
        rq.set_pod_sandbox_id(id);
        v1::RemovePodSandboxResponse rs;
        return stub_->RemovePodSandbox(c, rq, &rs);
      });
    }
    // The pod folders the runtime made below the cgroup parent, and the test's own.
    for (const std::string& rel : cgroups_) {
      for (const auto& h : fs::directory_iterator("/sys/fs/cgroup")) {
        std::vector<fs::path> dirs;
        std::error_code ec;
        fs::path top = h.path() / fs::path(rel).relative_path();
        for (auto it = fs::recursive_directory_iterator(top, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
          if (it->is_directory()) {
            dirs.push_back(it->path());
          }
        }
        std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
          return a.string().size() > b.string().size();
        });
        for (const auto& d : dirs) {
          ::rmdir(d.c_str());
        }
        ::rmdir(top.c_str());
      }
    }
  }

  template <typename F>
  grpc::Status call(F&& f) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return f(&c);
  }

  static std::string uid_for(const std::string& tag) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06x", static_cast<unsigned>(getpid()) & 0xffffff);
    return "3f9c1a7e-" + tag + "-4000-8000-000000" + buf;
  }

  struct Made {
    std::string pod;
    std::string container;
  };

  // A host-network pod (no CNI here) below /kubepods/besteffort/pod<uid>, and a container in
  // it running `sh -c CMD`.
  Made run_pod(const std::string& uid, const std::string& cmd) {
    Made m;
    v1::PodSandboxConfig pod;
    pod.mutable_metadata()->set_name("needle-pod");
    pod.mutable_metadata()->set_namespace_("needle-ns");
    pod.mutable_metadata()->set_uid(uid);
    pod.set_log_directory(std::string(std::getenv("NEEDLE_CTD_DIR")) +
                          "/logs");  // purged at teardown
    (*pod.mutable_labels())["needle-test"] = "1";
    const std::string parent = "/kubepods/besteffort/pod" + uid;
    cgroups_.push_back(parent);
    pod.mutable_linux()->set_cgroup_parent(parent);
    pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        v1::NODE);
    grpc::Status s = call([&](grpc::ClientContext* c) {
      v1::RunPodSandboxRequest rq;
      *rq.mutable_config() = pod;
      v1::RunPodSandboxResponse rs;
      auto st = stub_->RunPodSandbox(c, rq, &rs);
      m.pod = rs.pod_sandbox_id();
      return st;
    });
    EXPECT_TRUE(s.ok()) << "RunPodSandbox: " << s.error_message();
    if (!s.ok()) {
      return m;
    }
    pods_.push_back(m.pod);
    s = call([&](grpc::ClientContext* c) {
      v1::CreateContainerRequest rq;
      rq.set_pod_sandbox_id(m.pod);
      *rq.mutable_sandbox_config() = pod;
      auto* cc = rq.mutable_config();
      cc->mutable_metadata()->set_name("needle-ctr");
      cc->mutable_image()->set_image(peer().image);
      cc->add_command("/bin/sh");
      cc->add_args("-c");
      cc->add_args(cmd);
      cc->set_log_path("needle-ctr-" + uid + ".log");
      (*cc->mutable_labels())["io.kubernetes.container.name"] = "needle-ctr";
      (*cc->mutable_labels())["needle-test"] = "1";
      v1::CreateContainerResponse rs;
      auto st = stub_->CreateContainer(c, rq, &rs);
      m.container = rs.container_id();
      return st;
    });
    EXPECT_TRUE(s.ok()) << "CreateContainer: " << s.error_message();
    if (!s.ok()) {
      return m;
    }
    s = call([&](grpc::ClientContext* c) {
      v1::StartContainerRequest rq;
      rq.set_container_id(m.container);
      v1::StartContainerResponse rs;
      return stub_->StartContainer(c, rq, &rs);
    });
    EXPECT_TRUE(s.ok()) << "StartContainer: " << s.error_message();
    return m;
  }

  // Runs /bin/true in a cgroup the test makes, laid out like a CRI container of `id`.
  pid_t run_in_fake_container(const std::string& uid, const std::string& id) {
    const std::string parent = "/kubepods/besteffort/pod" + uid;
    cgroups_.push_back(parent);
    std::string dir = "/sys/fs/cgroup/unified" + parent + "/" + id;
    std::error_code ec;
    fs::create_directories(dir, ec);
    EXPECT_FALSE(ec) << dir;
    pid_t child = fork();
    if (child == 0) {
      int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) {
        _exit(90);
      }
      ::close(fd);
      execl("/bin/true", "true", static_cast<char*>(nullptr));
      _exit(91);
    }
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    return child;
  }

  static std::string config(const TempDir& d, const std::string& endpoint,
                            const std::string& extra = "") {
    return needle_section() +
           "[[source]]\nplugin = \"process\"\n[[enricher]]\nplugin = "
           "\"cgroup\"\ntimeout_ms = 3000\n[[enricher]]\nplugin = \"cri\"\nendpoints = [\"" +
           endpoint + "\"]\ntimeout_ms = 3000\n" + extra +
           "\n[[sink]]\nplugin = \"file\"\npath = \"" + d.file("events.jsonl") + "\"\n";
  }

  // The exec event whose arguments contain `marker`, once it has been written.
  static nlohmann::json exec_with(const TempDir& d, const std::string& marker) {
    nlohmann::json found;
    eventually(
        [&] {
          for (const auto& e : read_events(d.file("events.jsonl"))) {
            if (str_field(e, "type") == "process.exec" &&
                e.dump().find(marker) != std::string::npos) {
              found = e;
              return true;
            }
          }
          return false;
        },
        std::chrono::seconds(20));
    return found;
  }

  static nlohmann::json exec_of(const TempDir& d, pid_t pid) {
    nlohmann::json found;
    eventually(
        [&] {
          for (const auto& e : read_events(d.file("events.jsonl"))) {
            if (str_field(e, "type") == "process.exec" && int_field(e, "process.pid") == pid) {
              found = e;
              return true;
            }
          }
          return false;
        },
        std::chrono::seconds(20));
    return found;
  }

  void expect_metadata(const nlohmann::json& ev, const Made& m, const std::string& uid) {
    EXPECT_EQ(str_field(ev, "container.id"), m.container) << ev.dump();
    EXPECT_EQ(str_field(ev, "container.runtime"), "containerd");
    EXPECT_EQ(str_field(ev, "container.name"), "needle-ctr");
    EXPECT_EQ(str_field(ev, "container.image"), peer().image);
    EXPECT_EQ(str_field(ev, "container.image_digest"), peer().digest);
    EXPECT_EQ(str_field(ev, "container.labels.io_kubernetes_container_name"), "needle-ctr");
    EXPECT_EQ(str_field(ev, "pod.name"), "needle-pod");
    EXPECT_EQ(str_field(ev, "pod.namespace"), "needle-ns");
    EXPECT_EQ(str_field(ev, "pod.uid"), uid);
    EXPECT_EQ(field(ev, "incomplete"), nullptr) << ev.dump();
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RuntimeService::Stub> stub_;
  std::vector<std::string> pods_;
  std::vector<std::string> cgroups_;
};

TEST_F(Cri, ProcessInACriContainerCarriesContainerImageDigestAndPod) {
  TempDir d;
  Needle n(d);
  LogsOnFailure logs(n);
  NEEDLE_START_BPF(n, config(d, "unix://" + peer().address));
  const std::string uid = uid_for("0001");
  const std::string marker = "needle-cri-" + uid;
  Made m = run_pod(uid, "echo " + marker + "; exec /bin/sleep 600");
  ASSERT_FALSE(m.container.empty());
  nlohmann::json ev = exec_with(d, marker);
  ASSERT_FALSE(ev.is_null()) << "no exec event with " << marker;
  expect_metadata(ev, m, uid);
  // The container's next program (the exec of sleep) comes from the cache.
  nlohmann::json sleep_ev;
  eventually([&] {
    for (const auto& e : read_events(d.file("events.jsonl"))) {
      if (str_field(e, "type") == "process.exec" && str_field(e, "container.id") == m.container &&
          str_field(e, "process.exe") == "/bin/busybox" &&
          e.dump().find("600") != std::string::npos && e.dump().find(marker) == std::string::npos) {
        sleep_ev = e;
        return true;
      }
    }
    return false;
  });
  ASSERT_FALSE(sleep_ev.is_null());
  expect_metadata(sleep_ev, m, uid);
  ASSERT_EQ(n.stop(), 0) << n.err();
}

TEST_F(Cri, ContainerIdUnknownToTheRuntimeGoesOnWithoutCriFields) {
  TempDir d;
  Needle n(d);
  LogsOnFailure logs(n);
  NEEDLE_START_BPF(n, config(d, "unix://" + peer().address));
  const std::string uid = uid_for("0002");
  char hex[65];
  std::snprintf(hex, sizeof hex, "%058x%06x", 0u, static_cast<unsigned>(getpid()) & 0xffffff);
  pid_t pid = run_in_fake_container(uid, hex);
  nlohmann::json ev = exec_of(d, pid);
  ASSERT_EQ(n.stop(), 0) << n.err();
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(str_field(ev, "container.id"), hex);
  EXPECT_EQ(str_field(ev, "container.runtime"), "containerd");
  EXPECT_EQ(field(ev, "container.name"), nullptr) << ev.dump();
  EXPECT_EQ(field(ev, "pod.name"), nullptr);
  EXPECT_EQ(field(ev, "incomplete"), nullptr) << ev.dump();  // the runtime answered: none
}

TEST_F(Cri, ContainerdStoppedAndRestartedMidRunEventsFlowThenMetadataReturns) {
  TempDir d;
  Needle n(d);
  LogsOnFailure logs(n);
  NEEDLE_START_BPF(n, config(d, "unix://" + peer().address));
  ASSERT_TRUE(eventually([&] { return n.err().find("connected to") != std::string::npos; }));
  ASSERT_EQ(run({"/bin/bash", peer_script(), "stop"}, 60).exit_code, 0);
  const std::string uid = uid_for("0003");
  char hex[65];
  std::snprintf(hex, sizeof hex, "%058x%06x", 1u, static_cast<unsigned>(getpid()) & 0xffffff);
  pid_t pid = run_in_fake_container(uid, hex);
  nlohmann::json down = exec_of(d, pid);
  ASSERT_FALSE(down.is_null()) << "events stopped flowing while containerd was down";
  EXPECT_EQ(str_field(down, "container.id"), hex);
  const nlohmann::json* inc = field(down, "incomplete");
  ASSERT_NE(inc, nullptr) << down.dump();
  EXPECT_NE(inc->dump().find("container.name"), std::string::npos);
  ASSERT_EQ(run({"/bin/bash", peer_script(), "start"}, 60).exit_code, 0);
  // Reconnected: a second "connected to" line.
  ASSERT_TRUE(eventually(
      [&] {
        std::string err = n.err();
        size_t first = err.find("connected to");
        return first != std::string::npos &&
               err.find("connected to", first + 1) != std::string::npos;
      },
      std::chrono::seconds(20)))
      << n.err();
  const std::string uid2 = uid_for("0004");
  const std::string marker = "needle-cri-" + uid2;
  Made m = run_pod(uid2, "echo " + marker + "; exec /bin/sleep 600");
  ASSERT_FALSE(m.container.empty());
  nlohmann::json ev = exec_with(d, marker);
  ASSERT_FALSE(ev.is_null());
  expect_metadata(ev, m, uid2);
  ASSERT_EQ(n.stop(), 0) << n.err();
}

TEST_F(Cri, SocketMissingAtStartNeedleRunsAndEventsGoOnIncomplete) {
  TempDir d;
  Needle n(d);
  LogsOnFailure logs(n);
  NEEDLE_START_BPF(n, config(d, "unix://" + d.file("absent.sock")));
  EXPECT_TRUE(eventually([&] {
    return n.err().find("no CRI runtime answers") != std::string::npos;
  })) << n.err();
  const std::string uid = uid_for("0005");
  char hex[65];
  std::snprintf(hex, sizeof hex, "%058x%06x", 2u, static_cast<unsigned>(getpid()) & 0xffffff);
  pid_t pid = run_in_fake_container(uid, hex);
  nlohmann::json ev = exec_of(d, pid);
  ASSERT_EQ(n.stop(), 0) << n.err();
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(str_field(ev, "container.id"), hex);
  const nlohmann::json* inc = field(ev, "incomplete");
  ASSERT_NE(inc, nullptr) << ev.dump();
  EXPECT_NE(inc->dump().find("pod.name"), std::string::npos);
}

}  // namespace
}  // namespace needle::test
