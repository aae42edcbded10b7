// Finding, checking and loading plugin shared objects (Boost.DLL). A loaded plugin is never
// unloaded: its code may still be referenced by threads, timers or static data.
#ifndef NEEDLE_CORE_PLUGIN_LOADER_H
#define NEEDLE_CORE_PLUGIN_LOADER_H

#include <stdexcept>
#include <string>
#include <vector>

#include "needle/abi.h"

namespace needle::core {

/// A plugin refused (exit code 3): the message names the file.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LoadedPlugin {
  std::string path;
  const needle_plugin_descriptor* desc = nullptr;
  const needle_plugin_vtable* vtable = nullptr;   // copied size-checked view below
  needle_plugin_vtable slots{};                    // host-side copy, zero past the plugin's size
};

const char* kind_name(uint32_t kind);
uint32_t kind_from_name(const std::string& kind);

/// <dir of the running binary>/../lib/needle/plugins.
std::string default_plugin_dir();

/// Checks that `path` (a folder or a file) and its ancestors are owned by root or the running
/// user and not writable by group or others (root-owned sticky folders excepted). Returns an
/// empty string when fine, else the reason.
std::string check_trusted(const std::string& path);

class PluginLoader {
 public:
  PluginLoader(std::vector<std::string> dirs, bool insecure);

  /// Loads needle-<kind>-<name>.so from the first folder that has it. Throws PluginError.
  const LoadedPlugin& load(const std::string& kind, const std::string& name);
  /// Loads one file (no search); used by `needle plugins` and the tests.
  LoadedPlugin load_file(const std::string& path) const;
  /// Every needle-*.so in the folders, loaded; files that fail are reported in `errors`.
  std::vector<LoadedPlugin> discover(std::vector<std::string>& errors) const;

  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  std::vector<std::string> dirs_;
  bool insecure_;
  std::vector<LoadedPlugin> loaded_;   // stable addresses: reserved, never erased
};

}  // namespace needle::core

#endif  // NEEDLE_CORE_PLUGIN_LOADER_H
