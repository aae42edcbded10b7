// sink/http, the pure part: the URL and header options, how a batch is cut into requests, the
// request body (NDJSON or msgpack, optionally gzip), Retry-After and the backoff. No I/O.
#ifndef NEEDLE_SINKS_HTTP_BODY_H
#define NEEDLE_SINKS_HTTP_BODY_H

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "needle/result.h"

namespace needle::http {

struct Url {
  bool tls = false;
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string target;  // path and query, at least "/"
  std::string host_header;
  std::string text;
};

/// "http://host[:port]/path?query" or "https://...". Errors name the key `url`.
Result<Url> parse_url(std::string_view text);

/// "Name: value" with a token name and no control characters; names the body or transport
/// already sets (Host, Content-Length, Content-Type, Content-Encoding, Transfer-Encoding,
/// Connection, Authorization with bearer_token_file) are refused. Errors name `headers`.
Result<std::pair<std::string, std::string>> parse_header(std::string_view line);

enum class BodyFormat { kNdjson, kMsgpack };

/// The end (exclusive) of the next request's events starting at `begin`: at most `max_events`
/// and, past the first, at most `max_bytes` of body before compression. Always > begin.
size_t next_chunk(std::span<const std::string_view> items, size_t begin, size_t max_events,
                  size_t max_bytes, BodyFormat format);

/// Appends the body of `items` (NDJSON: each event and '\n'; msgpack: the maps one after the
/// other).
void build_body(std::span<const std::string_view> items, BodyFormat format, std::string& out);

/// gzip (RFC 1952) of `in` into `out` (replaced). False when zlib fails.
bool gzip(std::string_view in, std::string& out, int level);

/// Retry-After as delay-seconds or an HTTP-date (relative to `now_unix`); -1 when absent or
/// malformed.
std::chrono::milliseconds parse_retry_after(std::string_view value, int64_t now_unix);

/// Exponential backoff with jitter: a uniform draw in [d/2, d] with d = min(cap, base * 2^n).
/// `random01` is in [0, 1).
std::chrono::milliseconds backoff(unsigned failures, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap, double random01);

/// Transient answers worth retrying: 408, 429 and every 5xx. Other non-2xx are permanent.
bool status_is_transient(unsigned status);

}  // namespace needle::http

#endif  // NEEDLE_SINKS_HTTP_BODY_H
