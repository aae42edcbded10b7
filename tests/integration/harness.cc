#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace needle::test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string build_dir() {
  const char* b = std::getenv("NEEDLE_BUILD_DIR");
  if (b != nullptr) {
    return b;
  }
  return NEEDLE_BUILD_DIR_DEFAULT;
}

std::string source_dir() {
  const char* s = std::getenv("NEEDLE_SOURCE_DIR");
  return s != nullptr ? s : NEEDLE_SOURCE_DIR_DEFAULT;
}
std::string needle_bin() { return build_dir() + "/bin/needle"; }
std::string plugin_dir() { return build_dir() + "/lib/needle/plugins"; }
std::string test_plugin_dir() { return build_dir() + "/tests/plugins"; }
bool bpf_required() {
  const char* r = std::getenv("NEEDLE_REQUIRE_BPF");
  return r && std::string(r) == "1";
}

TempDir::TempDir() {
  static std::atomic<int> n{0};
  path_ = "/tmp/needle-it-" + std::to_string(getpid()) + "-" + std::to_string(n++);
  fs::remove_all(path_);
  fs::create_directories(path_);
  fs::permissions(path_, fs::perms(0755));
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::vector<nlohmann::json> read_events(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) {
      continue;
    }
    nlohmann::json v = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded() || !v.is_object()) {
      ADD_FAILURE() << path << ":" << n << " is not a JSON object: " << line.substr(0, 200);
      continue;
    }
    out.push_back(std::move(v));
  }
  return out;
}

const nlohmann::json* field(const nlohmann::json& ev, const std::string& dotted) {
  const nlohmann::json* cur = &ev;
  size_t start = 0;
  while (true) {
    if (!cur->is_object()) {
      return nullptr;
    }
    size_t dot = dotted.find('.', start);
    std::string part = dotted.substr(start, dot == std::string::npos ? dot : dot - start);
    auto it = cur->find(part);
    if (it == cur->end()) {
      return nullptr;
    }
    if (dot == std::string::npos) {
      return &*it;
    }
    cur = &*it;
    start = dot + 1;
  }
}

std::string str_field(const nlohmann::json& ev, const std::string& dotted) {
  const nlohmann::json* v = field(ev, dotted);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

int64_t int_field(const nlohmann::json& ev, const std::string& dotted, int64_t missing) {
  const nlohmann::json* v = field(ev, dotted);
  if (v == nullptr) {
    return missing;
  }
  return v->is_number_integer() ? v->get<int64_t>() : missing;
}

Result run(const std::vector<std::string>& argv, int timeout_s) {
  TempDir tmp;
  std::string out = tmp.file("out");
  std::string err = tmp.file("err");
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  Result r;
  int status = 0;
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

pid_t spawn_wait(const std::string& path, const std::vector<std::string>& argv, int* status) {
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    execv(path.c_str(), args.data());
    _exit(127);
  }
  waitpid(pid, status, 0);
  return pid;
}

Needle::~Needle() {
  if (pid_ > 0 && exit_code_ == -1) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool Needle::start(const std::string& config, std::chrono::seconds timeout) {
  write_file(config_path(), config);
  std::string out = dir_.file("needle.stdout");
  std::string err = dir_.file("needle.stderr");
  // A second needle in the same folder must not find the first one's readiness line.
  fs::remove(out);
  fs::remove(err);
  auto t0 = Clock::now();
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);   // a killed test leaves no needle behind
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::string bin = needle_bin();
    std::string cfg = config_path();
    execl(bin.c_str(), bin.c_str(), "run", "-c", cfg.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  while (Clock::now() - t0 < timeout) {
    if (read_file(err).find("needle running:") != std::string::npos) {
      ready_s_ = std::chrono::duration<double>(Clock::now() - t0).count();
      return true;
    }
    if (wait_exit(std::chrono::milliseconds(0))) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

bool Needle::wait_exit(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return true;
    }
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int Needle::stop(int sig, std::chrono::seconds timeout) {
  if (pid_ <= 0) {
    return -1;
  }
  if (exit_code_ != -1) {
    return exit_code_;
  }
  auto t0 = Clock::now();
  kill(pid_, sig);
  if (!wait_exit(timeout)) {
    kill(pid_, SIGKILL);
    wait_exit(std::chrono::seconds(5));
    return -1;
  }
  stop_s_ = std::chrono::duration<double>(Clock::now() - t0).count();
  return exit_code_;
}

std::string Needle::err() const { return read_file(dir_.file("needle.stderr")); }
std::string Needle::out() const { return read_file(dir_.file("needle.stdout")); }

std::string needle_section(const std::string& extra) {
  return "[needle]\nplugin_dirs = [\"" + plugin_dir() + "\", \"" + test_plugin_dir() +
         "\"]\nlog_level = \"info\"\n" + extra + "\n";
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace needle::test
