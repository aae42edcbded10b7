// The command line as operators and outside test suites use it: exit codes, messages that name
// file, line and key, and plugin refusal. None of these need root or BPF.
#include <sys/stat.h>

#include <filesystem>

#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;

Result check(const TempDir& dir, const std::string& toml, std::vector<std::string> extra = {}) {
  write_file(dir.file("c.toml"), toml);
  std::vector<std::string> argv{needle_bin(), "check", "-c", dir.file("c.toml")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv);
}

const char* kSinks = "[[sink]]\nplugin = \"stdout\"\n";

TEST(Cli, VersionPrintsSemverAndAbi) {
  Result r = run({needle_bin(), "version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "needle 0.1.0 abi 1.3\n");   // ABI 1.3: reads by handle, merge (abi.h)
}

TEST(Cli, EveryCommandHasHelp) {
  for (const char* cmd : {"run", "check", "plugins", "version"}) {
    Result r = run({needle_bin(), cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find(std::string("usage: needle ") + cmd), std::string::npos) << r.out;
  }
  Result r = run({needle_bin()});
  EXPECT_EQ(r.exit_code, 2);
  Result bad = run({needle_bin(), "frobnicate"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown command frobnicate"), std::string::npos);
}

TEST(Cli, CheckAcceptsAValidConfigWithoutRoot) {
  TempDir d;
  Result r = check(d, needle_section() + kSinks +
                          "[[sink]]\nplugin = \"file\"\npath = \"out/e.jsonl\"\nformat = \"msgpack\"\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("configuration is valid"), std::string::npos);
  EXPECT_FALSE(fs::exists(d.file("out/e.jsonl")));   // check does no I/O of the sinks
}

TEST(Cli, MalformedTomlExits2WithFileAndLine) {
  TempDir d;
  Result r = check(d, needle_section() + "[[sink]\nplugin = \"stdout\"\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(d.file("c.toml") + ":5"), std::string::npos) << r.err;
}

TEST(Cli, UnknownPluginKeyExits2NamingLineAndKey) {
  TempDir d;
  Result r = check(d, needle_section() + "[[sink]]\nplugin = \"file\"\npath = \"x\"\ncolour = 1\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("c.toml:8: key 'colour': unknown key for sink 'file'"), std::string::npos)
      << r.err;
}

TEST(Cli, WrongTypeExits2) {
  TempDir d;
  Result r = check(d, needle_section() + "[[sink]]\nplugin = \"file\"\npath = 5\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("c.toml:7: key 'path': wrong type"), std::string::npos) << r.err;
}

TEST(Cli, MissingRequiredKeyExits2) {
  TempDir d;
  Result r = check(d, needle_section() + "[[sink]]\nplugin = \"file\"\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("key 'path': missing required key"), std::string::npos) << r.err;
}

TEST(Cli, DuplicateIdExits2) {
  TempDir d;
  Result r = check(d, needle_section() + kSinks + kSinks);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("duplicate sink id 'stdout'"), std::string::npos) << r.err;
}

TEST(Cli, UnknownPluginExits3ListingFolders) {
  TempDir d;
  Result r = check(d, needle_section() + "[[sink]]\nplugin = \"kafka\"\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("unknown plugin sink/kafka"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(plugin_dir()), std::string::npos) << r.err;
}

TEST(Cli, OtherAbiMajorExits3NamingTheFile) {
  TempDir d;
  Result r = check(d, needle_section() + "[[sink]]\nplugin = \"badabi\"\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find(test_plugin_dir() + "/needle-sink-badabi.so refused: built for ABI 99.0"),
            std::string::npos)
      << r.err;
}

TEST(Cli, PluginWhoseCreateFailsExits3NamingTheFile) {
  TempDir d;
  Result r = check(d, needle_section() + "[[sink]]\nplugin = \"failcreate\"\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("needle-sink-failcreate.so (sink 'failcreate'): create failed: cannot "
                       "reach the backend"),
            std::string::npos)
      << r.err;
}

TEST(Cli, PluginRejectingAValueExits2NamingLineAndKey) {
  TempDir d;
  Result r = check(d, needle_section() + "[[sink]]\nplugin = \"throwcreate\"\nlevel = 9\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("c.toml:7: key 'level': level must be at most 3"), std::string::npos)
      << r.err;
}

TEST(Cli, PluginFolderWritableByOthersIsRefusedUnlessInsecure) {
  TempDir d;
  fs::create_directories(d.file("plugins"));
  fs::copy_file(plugin_dir() + "/needle-sink-stdout.so", d.file("plugins/needle-sink-stdout.so"));
  fs::permissions(d.file("plugins"), fs::perms(0777));
  std::string toml = "[needle]\nplugin_dirs = [\"plugins\"]\n" + std::string(kSinks);
  Result r = check(d, toml);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("plugin folder " + d.file("plugins") + " refused"), std::string::npos)
      << r.err;
  Result ok = check(d, toml, {"--insecure-plugin-dirs"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(Cli, MissingPluginFolderExits3) {
  TempDir d;
  Result r = check(d, "[needle]\nplugin_dirs = [\"/nonexistent/plugins\"]\n" + std::string(kSinks));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("/nonexistent/plugins (missing)"), std::string::npos) << r.err;
}

TEST(Cli, MissingConfigFileExits2) {
  Result r = run({needle_bin(), "check", "-c", "/nonexistent/needle.toml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/nonexistent/needle.toml: cannot read"), std::string::npos) << r.err;
}

TEST(Cli, PluginsListsEveryKeyAsJson) {
  Result r = run({needle_bin(), "plugins", "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json v = nlohmann::json::parse(r.out);
  bool found = false;
  for (auto& o : v) {
    if (o.at("kind") == "sink" && o.at("name") == "file") {
      found = true;
      EXPECT_EQ(o.at("abi"), "1.3");
      bool path_required = false;
      for (auto& k : o.at("keys")) {
        if (k.at("name") == "path") {
          path_required = k.at("required").get<bool>();
        }
      }
      EXPECT_TRUE(path_required);
    }
  }
  EXPECT_TRUE(found) << r.out;
}

TEST(Cli, PluginsFindsTheBuildTreeFolderWithNoFlag) {
  Result r = run({needle_bin(), "plugins"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sink/stdout"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("source/process"), std::string::npos) << r.out;
}

TEST(Cli, DefaultConfigChecksClean) {
  std::string cfg = source_dir() + "/configs/needle.toml";
  Result r = run({needle_bin(), "check", "-c", cfg});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace needle::test
