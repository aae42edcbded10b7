// Plugin refusal: another ABI major, a newer minor, no entry symbol, a file named for another
// plugin, and folders or files writable by others. Each message names the file.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "plugin_loader.h"

namespace needle::core {
namespace {

namespace fs = std::filesystem;

std::string build_dir() {
  const char* b = std::getenv("NEEDLE_BUILD_DIR");
  return b ? b : NEEDLE_BUILD_DIR_DEFAULT;
}
std::string test_plugins() { return build_dir() + "/tests/plugins"; }

std::string refusal(const std::string& path, bool insecure = true) {
  try {
    PluginLoader loader({}, insecure);
    loader.load_file(path);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(PluginLoader, RefusesAnotherAbiMajorNamingTheFile) {
  std::string p = test_plugins() + "/needle-sink-badabi.so";
  std::string e = refusal(p);
  EXPECT_NE(e.find(p), std::string::npos) << e;
  EXPECT_NE(e.find("built for ABI 99.0"), std::string::npos) << e;
}

TEST(PluginLoader, RefusesANewerMinor) {
  std::string e = refusal(test_plugins() + "/needle-sink-newminor.so");
  EXPECT_NE(e.find("newer than this needle"), std::string::npos) << e;
}

TEST(PluginLoader, RefusesALibraryWithoutEntrySymbol) {
  std::string e = refusal(test_plugins() + "/needle-sink-noentry.so");
  EXPECT_NE(e.find("no entry symbol needle_plugin_entry"), std::string::npos) << e;
}

TEST(PluginLoader, RefusesAFileNamedForAnotherPlugin) {
  fs::path dir = fs::temp_directory_path() / ("needle-lt-" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms(0755));
  fs::copy_file(test_plugins() + "/needle-sink-stall.so", dir / "needle-sink-other.so",
                fs::copy_options::overwrite_existing);
  std::string e = refusal((dir / "needle-sink-other.so").string());
  EXPECT_NE(e.find("must be named needle-sink-stall.so"), std::string::npos) << e;
  fs::remove_all(dir);
}

TEST(PluginLoader, UnknownPluginListsTheFoldersSearched) {
  PluginLoader loader({test_plugins()}, true);
  try {
    loader.load("sink", "nosuch");
    FAIL() << "loaded a plugin that does not exist";
  } catch (const PluginError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("unknown plugin sink/nosuch"), std::string::npos) << m;
    EXPECT_NE(m.find(test_plugins()), std::string::npos) << m;
  }
}

TEST(PluginLoader, LoadsAGoodPluginAndCopiesItsSlots) {
  PluginLoader loader({test_plugins()}, true);
  const LoadedPlugin& lp = loader.load("sink", "stall");
  EXPECT_STREQ(lp.desc->name, "stall");
  EXPECT_NE(lp.slots.write, nullptr);
  EXPECT_EQ(lp.slots.decode, nullptr);
  // Loading twice gives the same instance of the library.
  EXPECT_EQ(&loader.load("sink", "stall"), &lp);
}

class TrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("needle-trust-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms(0755));
    so_ = dir_ / "needle-sink-stall.so";
    fs::copy_file(test_plugins() + "/needle-sink-stall.so", so_,
                  fs::copy_options::overwrite_existing);
    fs::permissions(so_, fs::perms(0644));
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  fs::path so_;
};

TEST_F(TrustTest, AcceptsRootOwnedFilesNotWritableByOthers) {
  EXPECT_EQ(check_trusted(so_.string()), "");
  PluginLoader loader({dir_.string()}, false);
  EXPECT_NO_THROW(loader.load("sink", "stall"));
}

TEST_F(TrustTest, RefusesAFolderWritableByOthers) {
  fs::permissions(dir_, fs::perms(0777));
  PluginLoader loader({dir_.string()}, false);
  try {
    loader.load("sink", "stall");
    FAIL() << "accepted a world-writable plugin folder";
  } catch (const PluginError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("plugin folder " + dir_.string() + " refused"), std::string::npos) << m;
    EXPECT_NE(m.find("writable by group or others"), std::string::npos) << m;
    EXPECT_NE(m.find("--insecure-plugin-dirs"), std::string::npos) << m;
  }
  PluginLoader insecure({dir_.string()}, true);
  EXPECT_NO_THROW(insecure.load("sink", "stall"));
}

TEST_F(TrustTest, RefusesASharedObjectWritableByGroup) {
  fs::permissions(so_, fs::perms(0664));
  std::string e = refusal(so_.string(), false);
  EXPECT_NE(e.find(so_.string()), std::string::npos) << e;
  EXPECT_NE(e.find("mode 0664"), std::string::npos) << e;
}

TEST_F(TrustTest, RefusesAFileOwnedByAnotherUser) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to chown";
  }
  ASSERT_EQ(chown(so_.c_str(), 12345, 12345), 0);
  std::string e = refusal(so_.string(), false);
  EXPECT_NE(e.find("owned by uid 12345"), std::string::npos) << e;
}

TEST_F(TrustTest, StickyRootFolderAncestorIsAccepted) {
  // /tmp is root-owned, sticky and world-writable: allowed as an ancestor, not as the folder.
  EXPECT_EQ(check_trusted(so_.string()), "");
}

TEST(PluginLoader, MissingFolderIsReported) {
  PluginLoader loader({"/nonexistent/needle/plugins"}, false);
  std::vector<std::string> errors;
  auto found = loader.discover(errors);
  EXPECT_TRUE(found.empty());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("/nonexistent/needle/plugins is missing"), std::string::npos);
}

}  // namespace
}  // namespace needle::core
