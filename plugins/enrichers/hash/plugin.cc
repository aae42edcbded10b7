// ABI glue of enricher/hash: its keys, their validation, the export.
#include <cstdint>
#include <string>

#include "hash_enricher.h"
#include "needle/config.h"
#include "needle/plugin.h"

namespace {

using needle::hash::HashOptions;

constexpr needle_config_key kKeys[] = {
    needle::key_int("max_file_mib", "64",
                    "Executables larger than this are not hashed (1-4096); the digest is then "
                    "listed under incomplete"),
    needle::key_int("max_mib_per_s", "64", "Reading pace of the hashing thread (1-10000 MiB/s)"),
    needle::key_int("timeout_ms", "500",
                    "Longest an event waits for a digest (1-60000), then goes on with it listed "
                    "under incomplete"),
    needle::key_int("cache_entries", "8192", "Digests remembered (16-1048576)"),
};

HashOptions options_from(const needle::Config& cfg) {
  HashOptions o;
  o.max_file_bytes = static_cast<uint64_t>(cfg.get_int_in("max_file_mib", 1, 4096)) << 20;
  o.bytes_per_s = static_cast<uint64_t>(cfg.get_int_in("max_mib_per_s", 1, 10000)) << 20;
  o.timeout_ms = static_cast<uint64_t>(cfg.get_int_in("timeout_ms", 1, 60000));
  o.cache_entries = static_cast<size_t>(cfg.get_int_in("cache_entries", 16, 1 << 20));
  return o;
}

class HashPlugin final : public needle::hash::HashEnricher {
 public:
  HashPlugin(needle::Host host, const needle::Config& cfg)
      : HashEnricher(host, options_from(cfg)) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_ENRICHER, HashPlugin, "hash", "0.1.0",
              "SHA-256 of the executables of processes and their parents", "alpha", kKeys)
