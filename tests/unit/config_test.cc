// How needle treats bad configuration: every error names the file, the line and the key, and
// is thrown while reading the config (so `needle check` and `needle run` exit 2).
#include <gtest/gtest.h>

#include "config.h"

namespace needle::core {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_config(text, "/etc/needle/test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Config, MalformedTomlNamesFileAndLine) {
  std::string e = error_of("[needle]\nlog_level = \"info\"\n[[source]\nplugin = \"x\"\n");
  EXPECT_NE(e.find("/etc/needle/test.toml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("malformed TOML"), std::string::npos) << e;
}

TEST(Config, UnknownNeedleKeyIsRejectedWithItsLine) {
  std::string e = error_of("[needle]\nlog_level = \"info\"\nring_kb = 4\n");
  EXPECT_NE(e.find("test.toml:3: key 'needle.ring_kb'"), std::string::npos) << e;
}

TEST(Config, WrongTypeOfCoreKey) {
  std::string e = error_of("[needle]\nring_flush_ms = \"fast\"\n");
  EXPECT_NE(e.find(":2: key 'needle.ring_flush_ms': must be an integer"), std::string::npos) << e;
}

TEST(Config, RingSizeMustBeAPowerOfTwo) {
  std::string e = error_of("[needle]\nring_kib = 1000\n");
  EXPECT_NE(e.find("power of two"), std::string::npos) << e;
}

TEST(Config, UnknownTopLevelKey) {
  std::string e = error_of("[needle]\n[[sources]]\nplugin = \"process\"\n");
  EXPECT_NE(e.find(":2: key 'sources': unknown top-level key"), std::string::npos) << e;
}

TEST(Config, EntryWithoutPlugin) {
  std::string e = error_of("[[sink]]\npath = \"/tmp/x\"\n");
  EXPECT_NE(e.find("sink[0].plugin"), std::string::npos) << e;
}

TEST(Config, DuplicateIdWithinAKind) {
  std::string e = error_of(
      "[[sink]]\nplugin = \"file\"\npath = \"a\"\n[[sink]]\nplugin = \"file\"\npath = \"b\"\n");
  EXPECT_NE(e.find(":4: key 'id': duplicate sink id 'file'"), std::string::npos) << e;
}

TEST(Config, SameIdInDifferentKindsIsFine) {
  Config c = parse_config("[[source]]\nplugin = \"file\"\n[[sink]]\nplugin = \"file\"\n", "t.toml");
  ASSERT_EQ(c.entries.size(), 2u);
  EXPECT_EQ(c.entries[0].id, "file");
  EXPECT_EQ(c.entries[1].id, "file");
}

TEST(Config, CoreSinkKeysAreTakenOutOfThePluginTable) {
  Config c = parse_config(
      "[[sink]]\nplugin = \"file\"\npath = \"out.jsonl\"\nevents = [\"process.*\"]\n"
      "queue_size = 10\non_full = \"drop_oldest\"\n",
      "/etc/needle/n.toml");
  const Entry& e = c.entries.at(0);
  EXPECT_EQ(e.queue_size, 10);
  EXPECT_EQ(e.on_full, "drop_oldest");
  EXPECT_EQ(e.keys.size(), 1u);
  EXPECT_TRUE(e.keys.count("path"));
}

TEST(Config, BadOnFullValue) {
  std::string e = error_of("[[sink]]\nplugin = \"file\"\non_full = \"wait\"\n");
  EXPECT_NE(e.find(":3: key 'on_full': must be block, drop_oldest or spill"), std::string::npos)
      << e;
}

TEST(Config, RungPinsPerHook) {
  Config c = parse_config("[[source]]\nplugin = \"process\"\nrung.exec = \"tp\"\n", "t.toml");
  EXPECT_EQ(c.entries[0].hook_rungs.at("exec"), "tp");
}

const needle_config_key kKeys[] = {
    {sizeof(needle_config_key), NEEDLE_CFG_PATH, "path", nullptr, "where", 1, 0},
    {sizeof(needle_config_key), NEEDLE_CFG_STRING, "format", "\"json\"", "fmt", 0, 0},
    {sizeof(needle_config_key), NEEDLE_CFG_INT, "mode", "0o640", "mode", 0, 0},
    {sizeof(needle_config_key), NEEDLE_CFG_DOUBLE, "ratio", "1", "ratio", 0, 0},
    {sizeof(needle_config_key), NEEDLE_CFG_STRING_ARRAY, "paths", "[]", "paths", 0, 0},
};

needle_config validate(const std::string& text) {
  Config c = parse_config(text, "/etc/needle/v.toml");
  return validate_entry(c, c.entries.at(0), kKeys, std::size(kKeys), sizeof(needle_config_key));
}

std::string validate_error(const std::string& text) {
  try {
    validate(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Config, PluginKeysGetDefaultsAndRelativePathsResolve) {
  needle_config v = validate("[[sink]]\nplugin = \"file\"\npath = \"logs/e.jsonl\"\nratio = 2\n");
  EXPECT_EQ(std::get<std::string>(v.values.at("path")), "/etc/needle/logs/e.jsonl");
  EXPECT_EQ(std::get<std::string>(v.values.at("format")), "json");
  EXPECT_EQ(std::get<int64_t>(v.values.at("mode")), 0640);
  EXPECT_DOUBLE_EQ(std::get<double>(v.values.at("ratio")), 2.0);   // an integer fits a float
  EXPECT_TRUE(std::get<std::vector<std::string>>(v.values.at("paths")).empty());
}

TEST(Config, UndeclaredPluginKeyNamesLineAndKnownKeys) {
  std::string e = validate_error("[[sink]]\nplugin = \"file\"\npath = \"x\"\nfromat = \"json\"\n");
  EXPECT_NE(e.find("v.toml:4: key 'fromat': unknown key for sink 'file'"), std::string::npos) << e;
  EXPECT_NE(e.find("known: format, mode, path, paths, ratio"), std::string::npos) << e;
}

TEST(Config, WrongPluginKeyType) {
  std::string e = validate_error("[[sink]]\nplugin = \"file\"\npath = \"x\"\nmode = \"rw\"\n");
  EXPECT_NE(e.find(":4: key 'mode': wrong type"), std::string::npos) << e;
  EXPECT_NE(e.find("expected integer, got string"), std::string::npos) << e;
}

TEST(Config, MissingRequiredKeyNamesTheEntryLine) {
  std::string e = validate_error("[needle]\n\n[[sink]]\nplugin = \"file\"\n");
  EXPECT_NE(e.find("v.toml:3: key 'path': missing required key"), std::string::npos) << e;
}

TEST(EventFilter, IncludesExcludesAndGap) {
  EventFilter f({"process.*", "file.*", "!file.open"});
  EXPECT_TRUE(f.matches("process.exec"));
  EXPECT_TRUE(f.matches("file.create"));
  EXPECT_FALSE(f.matches("file.open"));
  EXPECT_FALSE(f.matches("net.connect"));
  EXPECT_TRUE(f.matches("needle.gap"));   // gaps reach every sink ...
  EventFilter no_gap({"*", "!needle.gap"});
  EXPECT_FALSE(no_gap.matches("needle.gap"));   // ... unless excluded by name
  EXPECT_TRUE(no_gap.matches("dns.query"));
  EventFilter star({"*.exec"});
  EXPECT_TRUE(star.matches("process.exec"));
  EXPECT_FALSE(star.matches("process.exit"));
}

}  // namespace
}  // namespace needle::core
