// enricher/lineage, enricher/cgroup and enricher/hash on the real kernel with the process
// source: a three-deep process chain made by the test, a process the test moves into cgroups
// it made (container layouts of docker and of a CRI pod), and the digest of a program the test
// copied. Each test selects its own pids and unique paths; the host is shared.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;

std::string config(const TempDir& d, const std::string& enrichers) {
  return needle_section() + "[[source]]\nplugin = \"process\"\n" + enrichers +
         "\n[[sink]]\nplugin = \"file\"\npath = \"" + d.file("events.jsonl") + "\"\n";
}

std::string copy_binary(const TempDir& d, const std::string& from, const std::string& name) {
  std::string to = d.file(name);
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  fs::permissions(to, fs::perms(0755));
  return to;
}

std::vector<nlohmann::json> of(const std::vector<nlohmann::json>& evs, const std::string& type,
                               int64_t pid) {
  std::vector<nlohmann::json> out;
  for (const auto& e : evs) {
    if (str_field(e, "type") == type && int_field(e, "process.pid") == pid) {
      out.push_back(e);
    }
  }
  return out;
}

std::vector<nlohmann::json> execs_of(const std::vector<nlohmann::json>& evs,
                                     const std::string& exe) {
  std::vector<nlohmann::json> out;
  for (const auto& e : evs) {
    if (str_field(e, "type") == "process.exec" && str_field(e, "process.exe") == exe) {
      out.push_back(e);
    }
  }
  return out;
}

std::string cgroup2_root() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t sep = line.find(" - cgroup2 ");
    if (sep == std::string::npos) {
      continue;
    }
    std::istringstream f(line);
    std::string a, b, c, root, mount;
    f >> a >> b >> c >> root >> mount;
    return mount;
  }
  return {};
}

TEST(LineageEnricher, ThreeDeepChainCarriesParentAndAncestors) {
  TempDir d;
  std::string sh = copy_binary(d, "/bin/sh", "needle-lineage-sh");
  std::string leaf = copy_binary(d, "/bin/true", "needle-lineage-leaf");
  Needle n(d);
  NEEDLE_START_BPF(n, config(d, "[[enricher]]\nplugin = \"lineage\"\n"));
  int status = 0;
  // test -> outer sh -> inner sh -> leaf (each `sh -c` forks before it execs the next).
  pid_t outer = spawn_wait(
      sh, {"needle-lineage-sh", "-c", sh + " -c '" + leaf + " lineage-marker; exit 0'; exit 0"},
      &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto leaves = execs_of(evs, leaf);
  ASSERT_EQ(leaves.size(), 1u);
  const auto& ev = leaves[0];
  const int64_t inner = int_field(ev, "parent.pid");
  EXPECT_EQ(int_field(ev, "process.ppid"), inner);
  EXPECT_EQ(str_field(ev, "parent.exe"), sh);
  const nlohmann::json* pargs = field(ev, "parent.args");
  ASSERT_NE(pargs, nullptr) << ev.dump();
  EXPECT_EQ((*pargs)[0], sh);
  EXPECT_EQ((*pargs)[2], leaf + " lineage-marker; exit 0");
  EXPECT_FALSE(str_field(ev, "parent.entity_id").empty());
  // The parent's entity_id is the one its own events carry.
  auto inner_execs = of(evs, "process.exec", inner);
  ASSERT_EQ(inner_execs.size(), 1u);
  EXPECT_EQ(str_field(ev, "parent.entity_id"), str_field(inner_execs[0], "process.entity_id"));
  const nlohmann::json* anc = field(ev, "ancestors");
  ASSERT_NE(anc, nullptr);
  ASSERT_GE(anc->size(), 3u) << ev.dump();
  EXPECT_EQ((*anc)[0]["pid"], inner);
  EXPECT_EQ((*anc)[0]["exe"], sh);
  EXPECT_EQ((*anc)[1]["pid"], outer);
  EXPECT_EQ((*anc)[1]["exe"], sh);
  EXPECT_EQ((*anc)[2]["pid"], getpid());
  EXPECT_EQ((*anc)[2]["exe"], fs::read_symlink("/proc/self/exe").string());
  // The leaf's exit carries its parent too.
  auto exits = of(evs, "process.exit", int_field(ev, "process.pid"));
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(str_field(exits[0], "parent.exe"), sh);
}

TEST(HashEnricher, ExecCarriesTheDigestOfTheProgram) {
  TempDir d;
  std::string leaf = copy_binary(d, "/bin/true", "needle-hash-leaf");
  Needle n(d);
  NEEDLE_START_BPF(n, config(d,
                             "[[enricher]]\nplugin = \"lineage\"\n[[enricher]]\n"
                             "plugin = \"hash\"\n"));
  int status = 0;
  spawn_wait(leaf, {"needle-hash-leaf"}, &status);
  // At start every program of the snapshot is hashed once, and parked events of one cgroup
  // keep their order: wait for the leaf to come through rather than stopping at once (a stop
  // sends parked events on with their digests listed as incomplete).
  EXPECT_TRUE(
      eventually([&] { return !execs_of(read_events(d.file("events.jsonl")), leaf).empty(); },
                 std::chrono::seconds(30)));
  ASSERT_EQ(n.stop(), 0) << n.err();
  Result sum = run({"/usr/bin/sha256sum", leaf});
  ASSERT_EQ(sum.exit_code, 0);
  auto leaves = execs_of(read_events(d.file("events.jsonl")), leaf);
  ASSERT_EQ(leaves.size(), 1u);
  EXPECT_EQ(str_field(leaves[0], "process.exe_sha256"), sum.out.substr(0, 64));
  EXPECT_EQ(str_field(leaves[0], "parent.exe_sha256").size(), 64u) << leaves[0].dump();
  EXPECT_EQ(field(leaves[0], "incomplete"), nullptr) << leaves[0].dump();
}

// A cgroup tree the test makes under the cgroup2 root, removed when the test ends.
class TestCgroup {
 public:
  TestCgroup(const std::string& root, const std::string& rel) : top_(root), path_(root + rel) {
    top_ += "/" + rel.substr(1, rel.find('/', 1) - 1);
    std::error_code ec;
    fs::create_directories(path_, ec);
    ok_ = !ec;
  }
  ~TestCgroup() {
    // Deepest first; a cgroup goes only once its processes have been reaped.
    std::vector<fs::path> dirs;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(top_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory()) {
        dirs.push_back(it->path());
      }
    }
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
      return a.string().size() > b.string().size();
    });
    for (const auto& p : dirs) {
      ::rmdir(p.c_str());
    }
    ::rmdir(top_.c_str());
  }
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

 private:
  std::string top_;
  std::string path_;
  bool ok_ = false;
};

// Runs `exe` in the cgroup `cg` (the child moves itself in before it execs).
pid_t run_in_cgroup(const std::string& cg, const std::string& exe) {
  pid_t child = fork();
  if (child == 0) {
    int fd = ::open((cg + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) {
      _exit(90);
    }
    ::close(fd);
    execl(exe.c_str(), exe.c_str(), static_cast<char*>(nullptr));
    _exit(91);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  return child;
}

TEST(CgroupEnricher, ProcessInTestMadeContainerCgroupsCarriesContainerAndPod) {
  const std::string root = cgroup2_root();
  if (root.empty() || geteuid() != 0) {
    NEEDLE_SKIP_OR_FAIL("needs root and a cgroup2 mount");
  }
  char hex[65];
  std::snprintf(hex, sizeof hex, "%064x", static_cast<unsigned>(getpid()));
  const std::string id(hex);
  const std::string uid = "3f9c1a7e-0000-4000-8000-00000000" + std::string(hex + 60);
  const std::string top = "/needle-it-" + std::to_string(getpid());
  TestCgroup docker(root, top + "/docker/" + id);
  TestCgroup pod(root, top + "-k8s/kubepods/besteffort/pod" + uid + "/" + id);
  ASSERT_TRUE(docker.ok() && pod.ok()) << "cannot make cgroups under " << root;
  TempDir d;
  std::string leaf = copy_binary(d, "/bin/true", "needle-cgroup-leaf");
  Needle n(d);
  NEEDLE_START_BPF(n, config(d, "[[enricher]]\nplugin = \"cgroup\"\n"));
  pid_t in_docker = run_in_cgroup(docker.path(), leaf);
  pid_t in_pod = run_in_cgroup(pod.path(), leaf);
  pid_t on_host = spawn_wait(leaf, {"needle-cgroup-leaf"}, nullptr);
  // A process already gone is found by walking the cgroup tree (rescans are spaced 50 ms):
  // wait for the events rather than stop at once (a stop sends parked events on incomplete).
  EXPECT_TRUE(eventually([&] {
    auto evs = read_events(d.file("events.jsonl"));
    return !of(evs, "process.exit", in_docker).empty() &&
           !of(evs, "process.exit", in_pod).empty() && !of(evs, "process.exec", on_host).empty();
  }));
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto a = of(evs, "process.exec", in_docker);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(str_field(a[0], "container.id"), id) << a[0].dump() << n.err();
  EXPECT_EQ(str_field(a[0], "container.runtime"), "docker");
  EXPECT_EQ(field(a[0], "pod"), nullptr);
  // Its exit, after the process is gone, still resolves (from the cache).
  auto ax = of(evs, "process.exit", in_docker);
  ASSERT_EQ(ax.size(), 1u);
  EXPECT_EQ(str_field(ax[0], "container.id"), id);
  auto b = of(evs, "process.exec", in_pod);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(str_field(b[0], "container.id"), id) << b[0].dump();
  EXPECT_EQ(str_field(b[0], "container.runtime"), "containerd");
  EXPECT_EQ(str_field(b[0], "pod.uid"), uid);
  auto c = of(evs, "process.exec", on_host);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(field(c[0], "container"), nullptr) << c[0].dump();
  EXPECT_EQ(field(c[0], "incomplete"), nullptr) << c[0].dump();
}

TEST(EnricherConfig, OutOfRangeValuesAreRefusedNamingTheKey) {
  TempDir d;
  struct Case {
    std::string entry;
    std::string key;
  };
  const Case cases[] = {
      {"plugin = \"lineage\"\ndepth = 65\n", "depth"},
      {"plugin = \"lineage\"\nmax_processes = 10\n", "max_processes"},
      {"plugin = \"cgroup\"\ntimeout_ms = 0\n", "timeout_ms"},
      {"plugin = \"cgroup\"\ncontainerd_namespaces = [\"a/b\"]\n", "containerd_namespaces"},
      {"plugin = \"hash\"\nmax_file_mib = 0\n", "max_file_mib"},
      {"plugin = \"hash\"\nmax_mib_per_s = 20000\n", "max_mib_per_s"},
  };
  for (const Case& c : cases) {
    write_file(d.file("needle.toml"), config(d, "[[enricher]]\n" + c.entry));
    Result r = run({needle_bin(), "check", "-c", d.file("needle.toml")});
    EXPECT_EQ(r.exit_code, 2) << c.entry << r.err;
    EXPECT_NE(r.err.find(c.key), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace needle::test
