#include "syslog_format.h"

#include <array>
#include <charconv>
#include <cstdio>

namespace needle::syslog {

namespace {

constexpr std::array<std::string_view, 24> kFacilities = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog", "lpr",    "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "audit",  "alert",  "clock",
    "local0", "local1", "local2",   "local3", "local4", "local5", "local6", "local7"};

constexpr std::array<std::string_view, 8> kSeverities = {"emerg",   "alert",  "crit", "err",
                                                         "warning", "notice", "info", "debug"};

Result<uint16_t> parse_port(std::string_view s, std::string_view whole) {
  unsigned v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v == 0 || v > 65535) {
    return make_error(
        "address '" + std::string(whole) + "' has a bad port '" + std::string(s) + "' (1 to 65535)",
        "address");
  }
  return static_cast<uint16_t>(v);
}

// Printable US-ASCII (33..126), as every RFC 5424 header field requires; at most `max` bytes.
void append_field(std::string_view v, size_t max, std::string& out) {
  if (v.empty()) {
    out.push_back('-');
    return;
  }
  size_t n = std::min(v.size(), max);
  for (size_t i = 0; i < n; ++i) {
    char c = v[i];
    out.push_back(c > 32 && c < 127 ? c : '_');
  }
}

void append_pri(const Header& h, std::string& out) {
  char buf[8];
  int n = std::snprintf(buf, sizeof buf, "<%d>", h.facility * 8 + h.severity);
  out.append(buf, static_cast<size_t>(n));
}

// Skips whitespace; returns the new position.
size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
    ++i;
  }
  return i;
}

// At an opening quote: returns the raw contents and moves `i` past the closing quote.
// npos in `i` when unterminated.
std::string_view read_string(std::string_view s, size_t& i) {
  size_t start = i + 1;
  for (size_t j = start; j < s.size(); ++j) {
    if (s[j] == '\\') {
      ++j;
      continue;
    }
    if (s[j] == '"') {
      i = j + 1;
      return s.substr(start, j - start);
    }
  }
  i = std::string_view::npos;
  return {};
}

// Skips one JSON value starting at `i` (after whitespace); npos when malformed.
size_t skip_value(std::string_view s, size_t i) {
  i = skip_ws(s, i);
  if (i >= s.size()) {
    return std::string_view::npos;
  }
  if (s[i] == '"') {
    read_string(s, i);
    return i;
  }
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        read_string(s, i);
        if (i == std::string_view::npos) {
          return i;
        }
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          return i + 1;
        }
      }
      ++i;
    }
    return std::string_view::npos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']') {
    ++i;
  }
  return i;
}

// Calls `on(key, value_pos)` for each member of the object at `i`; `on` returns the position
// after the value (or npos to stop).
template <typename F>
void for_each_member(std::string_view s, size_t i, F&& on) {
  i = skip_ws(s, i);
  if (i >= s.size() || s[i] != '{') {
    return;
  }
  ++i;
  while (true) {
    i = skip_ws(s, i);
    if (i >= s.size() || s[i] != '"') {
      return;
    }
    std::string_view key = read_string(s, i);
    if (i == std::string_view::npos) {
      return;
    }
    i = skip_ws(s, i);
    if (i >= s.size() || s[i] != ':') {
      return;
    }
    i = on(key, skip_ws(s, i + 1));
    if (i == std::string_view::npos) {
      return;
    }
    i = skip_ws(s, i);
    if (i >= s.size() || s[i] != ',') {
      return;
    }
    ++i;
  }
}

// A string value at `i`: its raw contents, and the position after it.
size_t string_value(std::string_view s, size_t i, std::string_view& out) {
  if (i < s.size() && s[i] == '"') {
    std::string_view v = read_string(s, i);
    if (i != std::string_view::npos) {
      out = v;
    }
    return i;
  }
  return skip_value(s, i);
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

Result<Address> parse_address(std::string_view text) {
  Address a;
  a.text = std::string(text);
  auto bad = [&](const std::string& why) {
    return make_error("address '" + std::string(text) + "' " + why +
                          " (expected udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT or "
                          "unix:///PATH)",
                      "address");
  };
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    return bad("has no scheme");
  }
  std::string_view scheme = text.substr(0, sep);
  std::string_view rest = text.substr(sep + 3);
  uint16_t default_port = 514;
  if (scheme == "udp") {
    a.transport = Transport::kUdp;
  } else if (scheme == "tcp") {
    a.transport = Transport::kTcp;
  } else if (scheme == "tls") {
    a.transport = Transport::kTls;
    default_port = 6514;
  } else if (scheme == "unix") {
    a.transport = Transport::kUnix;
    if (rest.empty() || rest[0] != '/') {
      return bad("needs an absolute socket path");
    }
    if (rest.size() >= 108) {  // sun_path
      return bad("has a socket path longer than 107 bytes");
    }
    a.path = std::string(rest);
    return a;
  } else {
    return bad("has an unknown scheme '" + std::string(scheme) + "'");
  }
  if (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  if (rest.find('/') != std::string_view::npos) {
    return bad("has a path, which only unix:// takes");
  }
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return bad("has an unclosed '['");
    }
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return bad("has text after ']'");
      }
      port = after.substr(1);
      if (port.empty()) {
        return bad("has an empty port");
      }
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && rest.find(':') != colon) {
      return bad("has an IPv6 host without brackets");
    }
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) {
        return bad("has an empty port");
      }
    }
  }
  if (host.empty()) {
    return bad("has no host");
  }
  for (char c : host) {
    if (c <= ' ' || c == '@' || c == '?' || c == '#' || c > 126) {
      return bad("has a bad host");
    }
  }
  a.host = std::string(host);
  a.port = default_port;
  if (!port.empty()) {
    auto p = parse_port(port, text);
    if (!p) {
      return p.error();
    }
    a.port = *p;
  }
  return a;
}

Result<int> parse_facility(std::string_view name) {
  for (size_t i = 0; i < kFacilities.size(); ++i) {
    if (kFacilities[i] == name) {
      return static_cast<int>(i);
    }
  }
  return make_error("facility '" + std::string(name) +
                        "' is not one of kern, user, mail, daemon, auth, syslog, lpr, news, "
                        "uucp, cron, authpriv, ftp, ntp, audit, alert, clock, local0..local7",
                    "facility");
}

Result<int> parse_severity(std::string_view name) {
  if (name == "error") {
    return 3;
  }
  if (name == "warn") {
    return 4;
  }
  for (size_t i = 0; i < kSeverities.size(); ++i) {
    if (kSeverities[i] == name) {
      return static_cast<int>(i);
    }
  }
  return make_error("severity '" + std::string(name) +
                        "' is not one of emerg, alert, crit, err, warning, notice, info, debug",
                    "severity");
}

Result<std::string> build_structured_data(std::string_view sd_id,
                                          const std::vector<std::string>& params) {
  if (params.empty()) {
    return std::string();
  }
  // SD-NAME: 1*32 printable US-ASCII except '=', SP, ']' and '"'.
  auto valid_name = [](std::string_view n) {
    if (n.empty() || n.size() > 32) {
      return false;
    }
    for (char c : n) {
      if (c <= 32 || c >= 127 || c == '=' || c == ']' || c == '"') {
        return false;
      }
    }
    return true;
  };
  if (!valid_name(sd_id)) {
    return make_error("sd_id '" + std::string(sd_id) +
                          "' must be 1 to 32 printable ASCII characters without '=', ' ', ']' "
                          "or '\"' (e.g. needle@32473)",
                      "sd_id");
  }
  std::string out = "[" + std::string(sd_id);
  for (const std::string& p : params) {
    size_t eq = p.find('=');
    std::string_view name = std::string_view(p).substr(0, eq);
    if (eq == std::string::npos || !valid_name(name)) {
      return make_error("structured_data entry '" + p +
                            "' must be name=value with a name of 1 to 32 printable ASCII "
                            "characters without '=', ' ', ']' or '\"'",
                        "structured_data");
    }
    out.push_back(' ');
    out.append(name);
    out.append("=\"");
    for (char c : std::string_view(p).substr(eq + 1)) {
      if (c == '"' || c == '\\' || c == ']') {
        out.push_back('\\');
      }
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back(']');
  return out;
}

EventFields scan_event(std::string_view json) {
  EventFields f;
  for_each_member(json, 0, [&](std::string_view key, size_t i) -> size_t {
    if (key == "time") {
      return string_value(json, i, f.time);
    }
    if (key == "type") {
      return string_value(json, i, f.type);
    }
    if (key == "host" && i < json.size() && json[i] == '{') {
      size_t end = skip_value(json, i);
      if (end == std::string_view::npos) {
        return end;
      }
      std::string_view obj = json.substr(i, end - i);
      for_each_member(obj, 0, [&](std::string_view k, size_t j) -> size_t {
        if (k == "name") {
          return string_value(obj, j, f.host);
        }
        return skip_value(obj, j);
      });
      return end;
    }
    return skip_value(json, i);
  });
  return f;
}

void format_rfc5424(const Header& h, std::string_view event_json, std::string& out) {
  EventFields f = scan_event(event_json);
  append_pri(h, out);
  out.append("1 ");
  // "2026-01-02T03:04:05.123456789Z" -> "2026-01-02T03:04:05.123456Z"
  std::string_view t = f.time;
  if (t.size() >= 20 && t[10] == 'T' && t.back() == 'Z') {
    size_t dot = t.find('.');
    if (dot != std::string_view::npos && t.size() - dot - 2 > 6) {
      out.append(t.substr(0, dot + 7));
      out.push_back('Z');
    } else {
      out.append(t);
    }
  } else {
    out.push_back('-');
  }
  out.push_back(' ');
  append_field(f.host.empty() ? std::string_view(h.fallback_host) : f.host, 255, out);
  out.push_back(' ');
  append_field(h.app_name, 48, out);
  out.push_back(' ');
  append_field(h.procid, 128, out);
  out.push_back(' ');
  append_field(f.type, 32, out);
  out.push_back(' ');
  if (h.structured_data.empty()) {
    out.push_back('-');
  } else {
    out.append(h.structured_data);
  }
  out.push_back(' ');
  out.append(event_json);
}

void format_rfc3164(const Header& h, std::string_view event_json, std::string& out) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  EventFields f = scan_event(event_json);
  append_pri(h, out);
  std::string_view t = f.time;
  int month = 0;
  if (t.size() >= 19 && is_digit(t[5]) && is_digit(t[6])) {
    month = (t[5] - '0') * 10 + (t[6] - '0');
  }
  if (month >= 1 && month <= 12 && is_digit(t[8]) && is_digit(t[9])) {
    out.append(kMonths[static_cast<size_t>(month - 1)]);
    out.push_back(' ');
    out.push_back(t[8] == '0' ? ' ' : t[8]);  // day padded with a space, as the RFC shows
    out.push_back(t[9]);
    out.push_back(' ');
    out.append(t.substr(11, 8));
  } else {
    out.append("Jan  1 00:00:00");
  }
  out.push_back(' ');
  append_field(f.host.empty() ? std::string_view(h.fallback_host) : f.host, 255, out);
  out.push_back(' ');
  append_field(h.app_name, 32, out);  // TAG: at most 32 characters
  out.push_back('[');
  append_field(h.procid, 16, out);
  out.append("]: ");
  out.append(event_json);
}

void append_octet_counted(std::string_view msg, std::string& out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, msg.size());
  out.append(buf, r.ptr);
  out.push_back(' ');
  out.append(msg);
}

}  // namespace needle::syslog
