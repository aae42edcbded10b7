// The ABI is append-only and versioned: this test fails when sdk/include/needle/abi.h changes
// without a version bump. abi_freeze.txt records, per ABI version, a hash of the header with
// comments and blank lines removed; a change of the header under the same version fails here.
// To release a change: bump NEEDLE_ABI_MINOR (append) or NEEDLE_ABI_MAJOR (break), then add a
// line for the new version (the failure message prints it).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "needle/abi.h"

namespace {

std::string normalized(const std::string& text) {
  // Drop comments and whitespace so that documentation edits do not count.
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "/*") == 0) {
      size_t end = text.find("*/", i + 2);
      i = end == std::string::npos ? text.size() : end + 1;
      continue;
    }
    if (text.compare(i, 2, "//") == 0) {
      size_t end = text.find('\n', i);
      i = end == std::string::npos ? text.size() : end;
      continue;
    }
    if (!std::isspace(static_cast<unsigned char>(text[i]))) {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string fnv(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

TEST(AbiFreeze, HeaderMatchesTheRecordForItsVersion) {
  std::ifstream in(NEEDLE_ABI_HEADER);
  ASSERT_TRUE(in) << NEEDLE_ABI_HEADER;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string hash = fnv(normalized(ss.str()));
  std::string version = std::to_string(NEEDLE_ABI_MAJOR) + "." + std::to_string(NEEDLE_ABI_MINOR);
  std::ifstream freeze(NEEDLE_ABI_FREEZE);
  ASSERT_TRUE(freeze) << NEEDLE_ABI_FREEZE;
  std::string v, h;
  bool found = false;
  while (freeze >> v >> h) {
    if (v == version) {
      found = true;
      EXPECT_EQ(h, hash) << "abi.h changed but NEEDLE_ABI_MINOR/MAJOR did not: bump the version "
                            "(append-only changes bump the minor) and record\n"
                         << "  <new version> " << hash << "\nin " << NEEDLE_ABI_FREEZE;
    }
  }
  EXPECT_TRUE(found) << "no record for ABI " << version << "; add the line\n  " << version << " "
                     << hash << "\nto " << NEEDLE_ABI_FREEZE;
}

TEST(AbiFreeze, TablesStartWithTheirSize) {
  EXPECT_EQ(offsetof(needle_plugin_vtable, struct_size), 0u);
  EXPECT_EQ(offsetof(needle_host_api, struct_size), 0u);
  EXPECT_EQ(offsetof(needle_plugin_descriptor, struct_size), 0u);
  EXPECT_EQ(offsetof(needle_config_key, struct_size), 0u);
  EXPECT_EQ(offsetof(needle_bpf_program, struct_size), 0u);
}

}  // namespace
