#include "plugin_loader.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

#include <boost/dll/shared_library.hpp>

namespace needle::core {

namespace fs = std::filesystem;

const char* kind_name(uint32_t kind) {
  switch (kind) {
    case NEEDLE_KIND_SOURCE:
      return "source";
    case NEEDLE_KIND_ENRICHER:
      return "enricher";
    case NEEDLE_KIND_SINK:
      return "sink";
    default:
      return "unknown";
  }
}

uint32_t kind_from_name(const std::string& kind) {
  if (kind == "source") {
    return NEEDLE_KIND_SOURCE;
  }
  if (kind == "enricher") {
    return NEEDLE_KIND_ENRICHER;
  }
  if (kind == "sink") {
    return NEEDLE_KIND_SINK;
  }
  return 0;
}

std::string default_plugin_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return "/usr/lib/needle/plugins";
  }
  return (exe.parent_path().parent_path() / "lib" / "needle" / "plugins").string();
}

std::string check_trusted(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) {
    return "cannot resolve " + path;
  }
  uid_t me = geteuid();
  bool leaf = true;
  for (fs::path cur = p; !cur.empty(); cur = cur.parent_path()) {
    struct stat st {};
    if (lstat(cur.c_str(), &st) != 0) {
      return cur.string() + ": " + std::strerror(errno);
    }
    if (S_ISLNK(st.st_mode) && stat(cur.c_str(), &st) != 0) {
      return cur.string() + ": " + std::strerror(errno);
    }
    if (st.st_uid != 0 && st.st_uid != me) {
      return cur.string() + " is owned by uid " + std::to_string(st.st_uid) +
             " (must be root or the running user)";
    }
    bool writable = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    bool sticky_root_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && st.st_uid == 0;
    if (writable && (leaf || !sticky_root_dir)) {
      return cur.string() + " is writable by group or others (mode " +
             [&] {
               char b[8];
               std::snprintf(b, sizeof b, "%04o", st.st_mode & 07777);
               return std::string(b);
             }() +
             ")";
    }
    leaf = false;
    if (cur == cur.root_path()) {
      break;
    }
  }
  return {};
}

namespace {

// Accepted plugins are never unloaded (threads, timers or static data of theirs may still be
// in use at exit); the registry keeps them reachable for the process's whole life.
void keep_forever(std::unique_ptr<boost::dll::shared_library> lib) {
  static auto* kept = new std::vector<std::unique_ptr<boost::dll::shared_library>>();
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  kept->push_back(std::move(lib));
}

}  // namespace

PluginLoader::PluginLoader(std::vector<std::string> dirs, bool insecure)
    : dirs_(std::move(dirs)), insecure_(insecure) {
  if (dirs_.empty()) {
    dirs_.push_back(default_plugin_dir());
  }
  loaded_.reserve(256);
}

LoadedPlugin PluginLoader::load_file(const std::string& path) const {
  if (!insecure_) {
    std::string why = check_trusted(path);
    if (!why.empty()) {
      throw PluginError("plugin " + path + " refused: " + why +
                        " (fix the permissions or pass --insecure-plugin-dirs)");
    }
  }
  auto lib = std::make_unique<boost::dll::shared_library>();
  std::error_code ec;
  lib->load(fs::path(path),
            boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    const char* dl = dlerror();
    throw PluginError("plugin " + path + " refused: cannot load: " +
                      (dl ? std::string(dl) : ec.message()));
  }
  if (!lib->has(NEEDLE_ENTRY_SYMBOL)) {
    throw PluginError("plugin " + path + " refused: no entry symbol " NEEDLE_ENTRY_SYMBOL
                      " (not a needle plugin, or built without NEEDLE_PLUGIN)");
  }
  auto entry = lib->get<const needle_plugin_descriptor*()>(NEEDLE_ENTRY_SYMBOL);
  const needle_plugin_descriptor* d = entry();
  if (d == nullptr || d->struct_size < offsetof(needle_plugin_descriptor, vtable) + sizeof(void*)) {
    throw PluginError("plugin " + path + " refused: its descriptor is missing or too small");
  }
  if (d->abi_major != NEEDLE_ABI_MAJOR) {
    throw PluginError("plugin " + path + " refused: built for ABI " +
                      std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor) +
                      ", this needle speaks ABI " + std::to_string(NEEDLE_ABI_MAJOR) + "." +
                      std::to_string(NEEDLE_ABI_MINOR) + " (major versions must match)");
  }
  if (d->abi_minor > NEEDLE_ABI_MINOR) {
    throw PluginError("plugin " + path + " refused: built for ABI " +
                      std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor) +
                      ", newer than this needle's " + std::to_string(NEEDLE_ABI_MAJOR) + "." +
                      std::to_string(NEEDLE_ABI_MINOR) + " (upgrade needle)");
  }
  if (d->name == nullptr || d->vtable == nullptr || kind_from_name(kind_name(d->kind)) == 0) {
    throw PluginError("plugin " + path + " refused: descriptor lacks a name, kind or vtable");
  }
  std::string expect = std::string("needle-") + kind_name(d->kind) + "-" + d->name + ".so";
  if (fs::path(path).filename() != expect) {
    throw PluginError("plugin " + path + " refused: it declares " + kind_name(d->kind) + "/" +
                      d->name + ", so its file must be named " + expect);
  }
  if (d->keys != nullptr && d->key_size < offsetof(needle_config_key, help) + sizeof(void*)) {
    throw PluginError("plugin " + path + " refused: config key table entries are too small");
  }
  LoadedPlugin lp;
  lp.path = path;
  lp.desc = d;
  lp.vtable = d->vtable;
  size_t n = std::min<size_t>(d->vtable->struct_size, sizeof(needle_plugin_vtable));
  std::memcpy(&lp.slots, d->vtable, n);
  lp.slots.struct_size = static_cast<uint32_t>(n);
  if (lp.slots.create == nullptr || lp.slots.destroy == nullptr) {
    throw PluginError("plugin " + path + " refused: create and destroy are required");
  }
  if (d->kind == NEEDLE_KIND_SOURCE && lp.slots.decode == nullptr) {
    throw PluginError("plugin " + path + " refused: a source must implement decode");
  }
  if (d->kind == NEEDLE_KIND_ENRICHER && lp.slots.enrich == nullptr) {
    throw PluginError("plugin " + path + " refused: an enricher must implement enrich");
  }
  if (d->kind == NEEDLE_KIND_SINK && lp.slots.write == nullptr) {
    throw PluginError("plugin " + path + " refused: a sink must implement write");
  }
  keep_forever(std::move(lib));
  return lp;
}

const LoadedPlugin& PluginLoader::load(const std::string& kind, const std::string& name) {
  for (auto& lp : loaded_) {
    if (kind_name(lp.desc->kind) == kind && lp.desc->name == name) {
      return lp;
    }
  }
  std::string file = "needle-" + kind + "-" + name + ".so";
  std::string tried;
  for (auto& dir : dirs_) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      tried += "\n  " + dir + " (missing)";
      continue;
    }
    if (!insecure_) {
      std::string why = check_trusted(dir);
      if (!why.empty()) {
        throw PluginError("plugin folder " + dir + " refused: " + why +
                          " (fix the permissions or pass --insecure-plugin-dirs)");
      }
    }
    fs::path p = fs::path(dir) / file;
    if (fs::exists(p, ec)) {
      if (loaded_.size() == loaded_.capacity()) {
        throw PluginError("too many plugins");
      }
      loaded_.push_back(load_file(p.string()));
      return loaded_.back();
    }
    tried += "\n  " + dir;
  }
  throw PluginError("unknown plugin " + kind + "/" + name + ": no " + file + " in" + tried +
                    "\n(`needle plugins` lists what is installed)");
}

std::vector<LoadedPlugin> PluginLoader::discover(std::vector<std::string>& errors) const {
  std::vector<LoadedPlugin> out;
  for (auto& dir : dirs_) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      errors.push_back("plugin folder " + dir + " is missing");
      continue;
    }
    if (!insecure_) {
      std::string why = check_trusted(dir);
      if (!why.empty()) {
        errors.push_back("plugin folder " + dir + " refused: " + why);
        continue;
      }
    }
    std::vector<fs::path> files;
    for (auto& de : fs::directory_iterator(dir, ec)) {
      auto fn = de.path().filename().string();
      if (fn.rfind("needle-", 0) == 0 && de.path().extension() == ".so") {
        files.push_back(de.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      try {
        out.push_back(load_file(f.string()));
      } catch (const PluginError& e) {
        errors.push_back(e.what());
      }
    }
  }
  return out;
}

}  // namespace needle::core
