// The `dns` source: dns.query and dns.response from the packets of this host's processes (see
// README.md).
#ifndef NEEDLE_PLUGINS_SOURCES_DNS_DNS_SOURCE_H
#define NEEDLE_PLUGINS_SOURCES_DNS_DNS_SOURCE_H

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "decode.h"
#include "dns_message.h"
#include "needle/abi.h"
#include "needle/event.h"
#include "needle/plugin.h"
#include "needle/record.h"
#include "needle/result.h"

namespace needle::dns {

/// Validated configuration (key `ports`).
struct DnsOptions {
  std::vector<uint16_t> ports{53};
};

/// The kernel's port filter: bit p of word p / 64 is set for each port p.
using PortBitmap = std::array<uint64_t, 1024>;
PortBitmap port_bitmap(std::span<const uint16_t> ports);

class DnsSource : public Source {
 public:
  /// Registers the plugin's counters; no kernel I/O (this runs for `needle check`).
  DnsSource(Host host, DnsOptions options);

  /// The embedded object and its program table; valid for the plugin's lifetime.
  needle_bpf_spec bpf_spec() override;
  /// Sets the port bitmap before load.
  Result<void> bpf_configure(Bpf& bpf) override;
  /// Ring thread. A malformed record is a decode gap (NEEDLE_ERROR); a packet whose DNS header
  /// cannot be read (too short, a TCP segment that does not start a message) is counted as a
  /// parse error and dropped (NEEDLE_SKIP); a message malformed further on is reported with
  /// what was parsed, `dns.error` naming the fault, and counted.
  needle_rc decode(std::span<const std::byte> raw, Event& ev) override;

  const DnsOptions& options() const { return options_; }

 private:
  // The `process` objects of recurring task contexts, shared (decode thread only).
  ProcessContexts contexts_{api(), host().raw()};
  DnsOptions options_;
  uint32_t malformed_counter_;
  uint32_t parse_error_counter_;
  uint32_t unowned_counter_;
  std::unique_ptr<Message> msg_;  // ring thread only; reused (about 34 KiB)
};

/// Maps a decoded packet and its parsed message onto `ev`.
void fill_event(const needle_host_api* api, const Packet& p, const Message& msg,
                const Parsed& parsed, Event& ev, ProcessContexts* contexts = nullptr);

}  // namespace needle::dns

#endif  // NEEDLE_PLUGINS_SOURCES_DNS_DNS_SOURCE_H
