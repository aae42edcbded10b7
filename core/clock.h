// Time and identity: boot clock to RFC 3339, host id and name.
#ifndef NEEDLE_CORE_CLOCK_H
#define NEEDLE_CORE_CLOCK_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace needle::core {

uint64_t boot_ns_now();
/// Realtime minus boot time, sampled now (re-sampled by the core once a minute).
void resample_clock_offset();
/// RFC 3339 UTC with 9 fractional digits; writes at most cap-1 bytes and a NUL, returns length.
size_t format_boot_time(uint64_t boot_ns, char* out, size_t cap);
std::string format_boot_time(uint64_t boot_ns);
/// The same for nanoseconds since the Unix epoch (UTC; years past 9999 are written as 9999).
size_t format_unix_ns(uint64_t unix_ns, char* out, size_t cap);

/// An event's id: needle's start time as 16 hex digits, "-", the event's sequence number in hex
/// ("%016llx-%llx"). `out` holds kEventIdMax bytes (no NUL written); returns the length.
constexpr size_t kEventIdMax = 16 + 1 + 16;
size_t format_event_id(uint64_t start_ns, uint64_t seq, char* out);

/// /etc/machine-id, else the DMI product uuid, else the boot id.
const std::string& host_id();
/// [needle] host_name, else gethostname(); set once at start.
const std::string& host_name();
void set_host_name(const std::string& name);

}  // namespace needle::core

#endif  // NEEDLE_CORE_CLOCK_H
