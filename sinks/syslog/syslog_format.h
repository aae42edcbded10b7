// sink/syslog, the pure part: address and name parsing, the few event fields a syslog header
// needs (read from the core's JSON without a full parse), RFC 5424 / RFC 3164 messages and the
// octet-counting frame of RFC 6587 / RFC 5425. No I/O: unit-tested and fuzzable.
#ifndef NEEDLE_SINKS_SYSLOG_FORMAT_H
#define NEEDLE_SINKS_SYSLOG_FORMAT_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "needle/result.h"

namespace needle::syslog {

enum class Transport { kUdp, kTcp, kTls, kUnix };

struct Address {
  Transport transport = Transport::kUdp;
  std::string host;  // without brackets for IPv6; empty for unix
  uint16_t port = 0;
  std::string path;  // unix only
  std::string text;  // as configured, for messages
};

/// "udp://host[:514]", "tcp://host[:514]", "tls://host[:6514]", "unix:///abs/path". IPv6 hosts
/// in brackets. The error names the key `address`.
Result<Address> parse_address(std::string_view text);

/// RFC 5424 facility names (kern, user, ..., local0..local7) to 0..23.
Result<int> parse_facility(std::string_view name);
/// RFC 5424 severity names (emerg, alert, crit, err|error, warning|warn, notice, info, debug).
Result<int> parse_severity(std::string_view name);

/// Builds one SD-ELEMENT `[id name="value" ...]` from "name=value" strings; values are escaped
/// (`"`, `\`, `]`). Empty `params` gives "". Errors name the key `structured_data` or `sd_id`.
Result<std::string> build_structured_data(std::string_view sd_id,
                                          const std::vector<std::string>& params);

/// The header fields found in an encoded event: raw (still JSON-escaped) string contents, empty
/// when absent or not a string.
struct EventFields {
  std::string_view time;
  std::string_view type;
  std::string_view host;
};
/// Reads top-level `time`, `type` and `host.name` from one JSON object. Never reads past `json`;
/// malformed input gives whatever was found before the fault.
EventFields scan_event(std::string_view json);

struct Header {
  int facility = 16;  // local0
  int severity = 6;   // info
  std::string app_name = "needle";
  std::string procid;           // needle's pid
  std::string fallback_host;    // when the event has no host.name
  std::string structured_data;  // "" for NILVALUE
};

/// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG` (RFC 5424). The timestamp is the event's
/// time cut to microseconds (the RFC allows at most 6 fractional digits); header fields are
/// cut to their RFC lengths and anything outside printable US-ASCII becomes '_'. Appends to
/// `out`.
void format_rfc5424(const Header& h, std::string_view event_json, std::string& out);
/// `<PRI>Mmm dd hh:mm:ss HOST APP[PROCID]: MSG` (RFC 3164), the time in UTC.
void format_rfc3164(const Header& h, std::string_view event_json, std::string& out);
/// Appends "LEN SP" (octet counting, RFC 6587 3.4.1 and RFC 5425 4.3) then `msg`.
void append_octet_counted(std::string_view msg, std::string& out);

}  // namespace needle::syslog

#endif  // NEEDLE_SINKS_SYSLOG_FORMAT_H
