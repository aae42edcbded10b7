#include "http_body.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>

namespace needle::http {

namespace {

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

Result<Url> parse_url(std::string_view text) {
  Url u;
  u.text = std::string(text);
  auto bad = [&](const std::string& why) {
    return make_error("url '" + std::string(text) + "' " + why +
                          " (expected http://HOST[:PORT]/PATH or https://...)",
                      "url");
  };
  std::string_view rest;
  if (text.substr(0, 7) == "http://") {
    rest = text.substr(7);
    u.port = 80;
  } else if (text.substr(0, 8) == "https://") {
    rest = text.substr(8);
    u.tls = true;
    u.port = 443;
  } else {
    return bad("must start with http:// or https://");
  }
  if (rest.find('#') != std::string_view::npos) {
    return bad("has a fragment");
  }
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.target[0] == '?') {
    u.target.insert(0, "/");
  }
  for (char c : u.target) {
    if (c <= ' ' || c >= 127) {
      return bad("has a space or control character in its path");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return bad("has user information; use headers or bearer_token_file");
  }
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return bad("has an unclosed '['");
    }
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
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
    size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) {
        return bad("has an empty port");
      }
    }
  }
  if (u.host.empty()) {
    return bad("has no host");
  }
  for (char c : u.host) {
    if (c <= ' ' || c >= 127) {
      return bad("has a bad host");
    }
  }
  if (!port.empty()) {
    unsigned v = 0;
    auto r = std::from_chars(port.data(), port.data() + port.size(), v);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || v == 0 || v > 65535) {
      return bad("has a bad port '" + std::string(port) + "' (1 to 65535)");
    }
    u.port = static_cast<uint16_t>(v);
  }
  bool v6 = u.host.find(':') != std::string::npos;
  u.host_header = v6 ? "[" + u.host + "]" : u.host;
  if (u.port != (u.tls ? 443 : 80)) {
    u.host_header += ":" + std::to_string(u.port);
  }
  return u;
}

Result<std::pair<std::string, std::string>> parse_header(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error("header '" + std::string(line) + "' must be \"Name: value\"", "headers");
  }
  std::string_view name = line.substr(0, colon);
  for (char c : name) {
    if (!is_tchar(c)) {
      return make_error("header '" + std::string(line) + "' has a bad name", "headers");
    }
  }
  std::string_view value = trim(line.substr(colon + 1));
  for (char c : value) {
    if ((c >= 0 && c < 32 && c != '\t') || c == 127) {
      return make_error("header '" + std::string(name) + "' has a control character in its value",
                        "headers");
    }
  }
  static constexpr std::string_view kOwned[] = {
      "host",      "content-length", "content-type", "content-encoding", "transfer-encoding",
      "connection"};
  std::string lname = lower(name);
  for (std::string_view o : kOwned) {
    if (lname == o) {
      return make_error("header '" + std::string(name) + "' is set by the sink itself", "headers");
    }
  }
  return std::make_pair(std::string(name), std::string(value));
}

size_t next_chunk(std::span<const std::string_view> items, size_t begin, size_t max_events,
                  size_t max_bytes, BodyFormat format) {
  size_t extra = format == BodyFormat::kNdjson ? 1 : 0;
  size_t bytes = items[begin].size() + extra;
  size_t end = begin + 1;
  while (end < items.size() && end - begin < max_events) {
    size_t next = items[end].size() + extra;
    if (bytes + next > max_bytes) {
      break;
    }
    bytes += next;
    ++end;
  }
  return end;
}

void build_body(std::span<const std::string_view> items, BodyFormat format, std::string& out) {
  for (std::string_view ev : items) {
    out.append(ev);
    if (format == BodyFormat::kNdjson) {
      out.push_back('\n');
    }
  }
}

bool gzip(std::string_view in, std::string& out, int level) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return false;
  }
  out.resize(deflateBound(&z, static_cast<uLong>(in.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  size_t produced = out.size() - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    return false;
  }
  out.resize(produced);
  return true;
}

std::chrono::milliseconds parse_retry_after(std::string_view value, int64_t now_unix) {
  value = trim(value);
  if (value.empty()) {
    return std::chrono::milliseconds(-1);
  }
  if (value[0] >= '0' && value[0] <= '9') {
    int64_t s = 0;
    auto r = std::from_chars(value.data(), value.data() + value.size(), s);
    if (r.ec != std::errc() || r.ptr != value.data() + value.size()) {
      return std::chrono::milliseconds(-1);
    }
    return std::chrono::milliseconds(std::min<int64_t>(s, 86400) * 1000);
  }
  // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  std::string v(value);
  const char* end = strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') {
    return std::chrono::milliseconds(-1);
  }
  int64_t when = timegm(&tm);
  return std::chrono::milliseconds(std::clamp<int64_t>(when - now_unix, 0, 86400) * 1000);
}

std::chrono::milliseconds backoff(unsigned failures, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap, double random01) {
  double d = static_cast<double>(base.count()) *
             std::ldexp(1.0, static_cast<int>(std::min(failures, 30u)));
  d = std::min(d, static_cast<double>(cap.count()));
  return std::chrono::milliseconds(static_cast<int64_t>(d / 2 + d / 2 * random01));
}

bool status_is_transient(unsigned status) {
  return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

}  // namespace needle::http
