// needle's command line: run, check, plugins, version (DESIGN.md, "CLI").
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "config.h"
#include "encode.h"
#include "needle/abi.h"
#include "plugin_loader.h"
#include "runtime.h"

#ifndef NEEDLE_VERSION
#define NEEDLE_VERSION "0.0.0"
#endif

namespace {

using namespace needle::core;

constexpr const char* kDefaultConfig = "/etc/needle/needle.toml";

const char* kUsage =
    "usage: needle <command> [options]\n"
    "\n"
    "commands:\n"
    "  run       capture events and deliver them to the configured sinks\n"
    "  check     validate a configuration and create every plugin it names\n"
    "  plugins   list the plugins found and the keys each one takes\n"
    "  version   print needle's version and plugin ABI\n"
    "\n"
    "`needle <command> --help` explains each command.\n"
    "exit codes: 0 ok, 1 runtime error, 2 bad config or usage, 3 plugin refused,\n"
    "            4 BPF load or attach failure\n";

const char* kRunHelp =
    "usage: needle run [-c FILE] [--insecure-plugin-dirs]\n"
    "\n"
    "Loads the plugins the configuration names, attaches the sources' BPF programs (finding\n"
    "each hook's rung on this kernel), emits a snapshot of the running processes and delivers\n"
    "events until SIGTERM or SIGINT. Logs go to stderr; stdout carries only the stdout sink.\n"
    "SIGHUP reopens sink files. Needs root, or CAP_BPF and CAP_PERFMON, CAP_NET_ADMIN for\n"
    "the dns and network sources' cgroup socket programs and CAP_SYS_ADMIN where tracefs\n"
    "must be mounted; once attached, needle keeps only CAP_DAC_READ_SEARCH and\n"
    "CAP_SYS_PTRACE (to read /proc). Exit codes: see man 8 needle.\n"
    "\n"
    "  -c, --config FILE          configuration (default /etc/needle/needle.toml)\n"
    "      --insecure-plugin-dirs load plugins from folders or files writable by others\n";

const char* kCheckHelp =
    "usage: needle check [-c FILE] [--connect] [--insecure-plugin-dirs]\n"
    "\n"
    "Validates the configuration and creates every plugin it names, with no kernel or network\n"
    "I/O (no root needed). Errors name the file, line and key.\n"
    "\n"
    "  -c, --config FILE          configuration (default /etc/needle/needle.toml)\n"
    "      --connect              also dial the sinks' endpoints and load (not attach) the BPF\n"
    "                             objects\n"
    "      --insecure-plugin-dirs accept plugin folders or files writable by others\n";

const char* kPluginsHelp =
    "usage: needle plugins [--plugin-dir DIR]... [--format text|json] [--insecure-plugin-dirs]\n"
    "\n"
    "Lists every plugin found (default folder: <dir of needle>/../lib/needle/plugins): kind,\n"
    "name, version, ABI, status, path, and each configuration key with its type, default,\n"
    "whether it is required, and help.\n";

const char* kVersionHelp = "usage: needle version\n\nPrints `needle <semver> abi <major>.<minor>`.\n";

bool is_help(const std::string& a) { return a == "-h" || a == "--help"; }

int usage_error(const std::string& msg, const char* help) {
  std::fprintf(stderr, "needle: %s\n\n%s", msg.c_str(), help);
  return kExitConfig;
}

int parse_common(const std::vector<std::string>& args, Options& opts, const char* help,
                 bool allow_connect) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (is_help(a)) {
      std::fputs(help, stdout);
      return -1;
    }
    if (a == "-c" || a == "--config") {
      if (i + 1 >= args.size()) {
        return usage_error(a + " needs a file", help);
      }
      opts.config = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      opts.config = a.substr(9);
    } else if (a == "--insecure-plugin-dirs") {
      opts.insecure_plugin_dirs = true;
    } else if (a == "--connect" && allow_connect) {
      opts.connect = true;
    } else {
      return usage_error("unknown option " + a, help);
    }
  }
  return 0;
}

void print_plugin_text(const LoadedPlugin& lp) {
  const needle_plugin_descriptor* d = lp.desc;
  std::printf("%s/%s %s (abi %u.%u, %s)\n  %s\n  %s\n", kind_name(d->kind), d->name,
              d->version ? d->version : "?", d->abi_major, d->abi_minor,
              d->status ? d->status : "unknown", d->description ? d->description : "",
              lp.path.c_str());
  const auto* base = reinterpret_cast<const unsigned char*>(d->keys);
  for (size_t i = 0; d->keys && i < d->key_count; ++i) {
    const auto* k = reinterpret_cast<const needle_config_key*>(base + i * d->key_size);
    if (!k->name) {
      continue;
    }
    std::printf("    %-18s %-18s %s%s  %s\n", k->name, type_name(k->type),
                k->required ? "required" : "default ",
                k->required ? "" : (std::string(" ") + (k->default_value ? k->default_value : "(none)")).c_str(),
                k->help ? k->help : "");
  }
}

std::string plugin_json(const LoadedPlugin& lp) {
  const needle_plugin_descriptor* d = lp.desc;
  std::string o = "{\"kind\":";
  json_string(kind_name(d->kind), o);
  o += ",\"name\":";
  json_string(d->name, o);
  o += ",\"version\":";
  json_string(d->version ? d->version : "", o);
  o += ",\"abi\":";
  json_string(std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor), o);
  o += ",\"status\":";
  json_string(d->status ? d->status : "", o);
  o += ",\"description\":";
  json_string(d->description ? d->description : "", o);
  o += ",\"path\":";
  json_string(lp.path, o);
  o += ",\"keys\":[";
  const auto* base = reinterpret_cast<const unsigned char*>(d->keys);
  bool first = true;
  for (size_t i = 0; d->keys && i < d->key_count; ++i) {
    const auto* k = reinterpret_cast<const needle_config_key*>(base + i * d->key_size);
    if (!k->name) {
      continue;
    }
    o += first ? "{" : ",{";
    first = false;
    o += "\"name\":";
    json_string(k->name, o);
    o += ",\"type\":";
    json_string(type_name(k->type), o);
    if (k->default_value) {
      o += ",\"default\":";
      json_string(k->default_value, o);
    }
    o += std::string(",\"required\":") + (k->required ? "true" : "false");
    o += ",\"help\":";
    json_string(k->help ? k->help : "", o);
    o += "}";
  }
  return o + "]}";
}

int cmd_plugins(const std::vector<std::string>& args) {
  std::vector<std::string> dirs;
  std::string format = "text";
  bool insecure = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (is_help(a)) {
      std::fputs(kPluginsHelp, stdout);
      return 0;
    }
    if (a == "--plugin-dir" && i + 1 < args.size()) {
      dirs.push_back(args[++i]);
    } else if (a == "--format" && i + 1 < args.size()) {
      format = args[++i];
      if (format != "text" && format != "json") {
        return usage_error("--format takes text or json", kPluginsHelp);
      }
    } else if (a == "--insecure-plugin-dirs") {
      insecure = true;
    } else {
      return usage_error("unknown option " + a, kPluginsHelp);
    }
  }
  setup_logging("warn");
  PluginLoader loader(dirs, insecure);
  std::vector<std::string> errors;
  auto found = loader.discover(errors);
  if (format == "json") {
    std::string out = "[";
    for (size_t i = 0; i < found.size(); ++i) {
      out += (i ? "," : "") + plugin_json(found[i]);
    }
    std::printf("%s]\n", out.c_str());
  } else {
    for (auto& lp : found) {
      print_plugin_text(lp);
    }
  }
  for (auto& e : errors) {
    std::fprintf(stderr, "needle: %s\n", e.c_str());
  }
  return errors.empty() ? 0 : kExitPlugin;
}

// Each of needle's threads allocates from its own glibc arena, whose free top glibc hands back
// to the kernel whenever it passes the trim threshold, faulting zeroed pages in again on the
// next burst: under a DNS flood `perf` put a quarter of the ring thread's time in the kernel,
// mostly that churn. A megabyte of top pad, which an arena keeps when it trims, stops it
// (GLIBC_TUNABLES=glibc.malloc.top_pad=... still decides when given).
void keep_arena_slack() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables == nullptr || std::strstr(tunables, "malloc.top_pad") == nullptr) {
    mallopt(M_TOP_PAD, 1 << 20);
  }
}

}  // namespace

int main(int argc, char** argv) {
  keep_arena_slack();
  setup_logging("info");   // errors before the config is read go to stderr too
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || is_help(args[0])) {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? kExitConfig : 0;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  Options opts;
  opts.config = kDefaultConfig;
  if (cmd == "run") {
    int rc = parse_common(args, opts, kRunHelp, false);
    return rc < 0 ? 0 : (rc ? rc : run_needle(opts));
  }
  if (cmd == "check") {
    int rc = parse_common(args, opts, kCheckHelp, true);
    return rc < 0 ? 0 : (rc ? rc : check_needle(opts));
  }
  if (cmd == "plugins") {
    return cmd_plugins(args);
  }
  if (cmd == "version" || cmd == "--version") {
    if (!args.empty() && is_help(args[0])) {
      std::fputs(kVersionHelp, stdout);
      return 0;
    }
    std::printf("needle %s abi %d.%d\n", NEEDLE_VERSION, NEEDLE_ABI_MAJOR, NEEDLE_ABI_MINOR);
    return 0;
  }
  return usage_error("unknown command " + cmd, kUsage);
}
