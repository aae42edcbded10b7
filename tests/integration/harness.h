// Integration-test harness: starts the real needle from the build tree with a config written
// by the test, waits for its readiness line, stops it, and reads the events it wrote. Tests that
// need BPF skip with a reason when it cannot load here, unless NEEDLE_REQUIRE_BPF=1 (CI), which
// turns the skip into a failure.
#ifndef NEEDLE_TESTS_INTEGRATION_HARNESS_H
#define NEEDLE_TESTS_INTEGRATION_HARNESS_H

#include <gtest/gtest.h>
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace needle::test {

std::string build_dir();
std::string source_dir();
std::string needle_bin();
std::string plugin_dir();        // <build>/lib/needle/plugins
std::string test_plugin_dir();   // <build>/tests/plugins
bool bpf_required();

/// A fresh folder for one test, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

/// Parses JSON lines; a line that is not JSON fails the test.
std::vector<nlohmann::json> read_events(const std::string& path);
/// A dotted field of an event ("process.pid"), or nullptr.
const nlohmann::json* field(const nlohmann::json& ev, const std::string& dotted);
std::string str_field(const nlohmann::json& ev, const std::string& dotted);
int64_t int_field(const nlohmann::json& ev, const std::string& dotted, int64_t missing = -1);

struct Result {
  int exit_code = -1;       // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

/// Runs a command to completion (argv[0] is a path), capturing stdout and stderr.
Result run(const std::vector<std::string>& argv, int timeout_s = 60);
/// fork + execv + waitpid; returns the child's pid and fills the raw wait status.
pid_t spawn_wait(const std::string& path, const std::vector<std::string>& argv, int* status);

class Needle {
 public:
  explicit Needle(const TempDir& dir) : dir_(dir) {}
  ~Needle();
  Needle(const Needle&) = delete;
  Needle& operator=(const Needle&) = delete;

  /// Writes `config` to <dir>/needle.toml and starts `needle run`. Returns true once the
  /// readiness line appears; false if needle exited first (exit_code() tells why).
  bool start(const std::string& config, std::chrono::seconds timeout = std::chrono::seconds(30));
  /// Sends `sig` and waits for exit; returns the exit code (-1 on timeout or signal death).
  int stop(int sig = SIGTERM, std::chrono::seconds timeout = std::chrono::seconds(30));
  /// Seconds from start() to the readiness line.
  double ready_seconds() const { return ready_s_; }
  /// Seconds stop() waited for the process to exit.
  double stop_seconds() const { return stop_s_; }
  pid_t pid() const { return pid_; }
  int exit_code() const { return exit_code_; }
  std::string err() const;
  std::string out() const;
  std::string config_path() const { return dir_.file("needle.toml"); }

 private:
  bool wait_exit(std::chrono::milliseconds timeout);
  const TempDir& dir_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  double ready_s_ = 0;
  double stop_s_ = 0;
};

/// `[needle]` with the build tree's plugin folders (real and test plugins).
std::string needle_section(const std::string& extra = "");

/// Waits until `pred` holds or `timeout` passes.
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace needle::test

/// Skips a BPF test with a reason, or fails it when NEEDLE_REQUIRE_BPF=1.
#define NEEDLE_SKIP_OR_FAIL(reason)                                                  \
  do {                                                                               \
    if (::needle::test::bpf_required()) {                                            \
      FAIL() << "NEEDLE_REQUIRE_BPF=1 and BPF is needed but unavailable: " << reason; \
    } else {                                                                         \
      GTEST_SKIP() << reason;                                                        \
    }                                                                                \
  } while (0)

/// Starts needle for a BPF test: skips (or fails in CI) when it cannot load BPF here.
#define NEEDLE_START_BPF(needle, config)                                                     \
  do {                                                                                       \
    if (geteuid() != 0) {                                                                    \
      NEEDLE_SKIP_OR_FAIL("loading BPF needs root");                                         \
    }                                                                                        \
    if (!(needle).start(config)) {                                                           \
      if ((needle).exit_code() == 4) {                                                       \
        NEEDLE_SKIP_OR_FAIL("needle could not load its BPF programs here:\n" << (needle).err()); \
      }                                                                                      \
      FAIL() << "needle did not start (exit " << (needle).exit_code() << "):\n"             \
             << (needle).err();                                                             \
    }                                                                                        \
  } while (0)

#endif  // NEEDLE_TESTS_INTEGRATION_HARNESS_H
