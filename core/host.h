// A plugin instance as the core holds it (needle_host of the ABI), and the host API table.
#ifndef NEEDLE_CORE_HOST_H
#define NEEDLE_CORE_HOST_H

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"
#include "event.h"
#include "needle/abi.h"

namespace needle::core {

struct LoadedPlugin;
class Metrics;

/// Where events made outside the ring go (host->event_new / event_submit).
class EventIntake {
 public:
  virtual ~EventIntake() = default;
  virtual Event* acquire_event() = 0;
  virtual void submit_event(needle_host* from, Event* ev) = 0;
  virtual void release_event(Event* ev) = 0;
};

}  // namespace needle::core

/// One configured plugin instance. Owned by the runtime; lives until exit.
struct needle_host {
  std::string kind;      // "source", "enricher", "sink"
  std::string id;
  std::string plugin;
  const needle::core::LoadedPlugin* lp = nullptr;
  needle_config cfg;
  needle_plugin* self = nullptr;
  std::string error;
  std::string error_key;
  std::vector<std::atomic<uint64_t>*> counters;
  std::string state_dir;
  needle::core::Metrics* metrics = nullptr;
  needle::core::EventIntake* intake = nullptr;
  uint32_t source_index = 0;   // sources: index in the ring header
};

namespace needle::core {

using Instance = needle_host;

/// The table handed to every plugin.
const needle_host_api* host_api();

inline Event* as_core(needle_event* e) { return reinterpret_cast<Event*>(e); }
inline const Event* as_core(const needle_event* e) { return reinterpret_cast<const Event*>(e); }
inline needle_event* as_abi(Event* e) { return reinterpret_cast<needle_event*>(e); }

/// The instance's last error, with the plugin file: "plugin FILE (kind 'id'): message".
std::string describe_error(const Instance& inst, const std::string& what);

}  // namespace needle::core

#endif  // NEEDLE_CORE_HOST_H
