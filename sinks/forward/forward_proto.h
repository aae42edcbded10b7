// The Fluentd Forward protocol v1 as pure functions: addresses, tags, EventTime, PackedForward
// and CompressedPackedForward messages, the length-prefixed stream framing, chunk ids and acks,
// and the shared-key handshake (HELO / PING / PONG). No I/O here, so every piece is unit-tested.
#ifndef NEEDLE_SINKS_FORWARD_PROTO_H
#define NEEDLE_SINKS_FORWARD_PROTO_H

#include <cstdint>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "needle/result.h"

namespace needle::forward {

enum class Scheme { kTcp, kTls, kUnix };

struct Address {
  Scheme scheme = Scheme::kTcp;
  std::string host;   // tcp, tls (brackets of an IPv6 literal removed)
  uint16_t port = 0;  // tcp, tls
  std::string path;   // unix
  std::string text;   // as written, for messages
};

/// "tcp://HOST:PORT", "tls://HOST:PORT" or "unix:///absolute/path".
Result<Address> parse_address(std::string_view text);

enum class Mode { kPacked, kCompressed, kStream };
Result<Mode> parse_mode(std::string_view text);

/// A tag with an optional `{type}` placeholder ("needle.{type}" → "needle.process.exec").
class TagTemplate {
 public:
  static Result<TagTemplate> parse(std::string_view text);
  /// Appends the tag of an event of `type` to `out`.
  void expand(std::string_view type, std::string& out) const;
  bool has_type() const { return has_type_; }

 private:
  std::string prefix_;
  std::string suffix_;
  bool has_type_ = false;
};

/// "2026-11-29T12:34:56.123456789Z" (or with a ±HH:MM offset) → seconds since the epoch and
/// nanoseconds. False when it is not RFC 3339.
bool parse_rfc3339(std::string_view text, int64_t& seconds, uint32_t& nanos);

/// Appends one PackedForward entry: [EventTime(seconds, nanos), record], with `record` the
/// msgpack map the core encoded, copied as it is.
void append_entry(std::string& out, uint32_t seconds, uint32_t nanos, std::string_view record);

/// Appends [tag, bin(entries), {"size": count[, "chunk": chunk][, "compressed": "gzip"]}].
/// `entries` are the (possibly gzip-compressed) concatenated entries.
void append_packed_forward(std::string& out, std::string_view tag, std::string_view entries,
                           size_t count, std::string_view chunk, bool compressed);

/// gzip (RFC 1952) of `in`, appended to `out`.
Result<void> gzip_append(std::string_view in, std::string& out, int level);

/// Appends the plain stream framing: 4-byte big-endian length, then the msgpack event.
void append_stream_frame(std::string& out, std::string_view event);

/// A chunk id: base64 of 16 bytes that depend only on `seed` and `content`, so a batch offered
/// again gets the same ids.
std::string chunk_id(uint64_t seed, std::string_view content);

/// {"ack": chunk} → chunk; an error for anything else.
Result<std::string> parse_ack(const msgpack::object& obj);

/// Lower-case hex SHA-512 of the concatenated parts.
std::string sha512_hex(std::initializer_list<std::string_view> parts);

struct Helo {
  std::string nonce;
  std::string auth_salt;  // empty: the server wants no username/password
  bool keepalive = true;
};
/// ["HELO", {"nonce": …, "auth": …, "keepalive": …}].
Result<Helo> parse_helo(const msgpack::object& obj);

struct PingParams {
  std::string_view self_hostname;
  std::string_view shared_key_salt;
  std::string_view shared_key;
  std::string_view username;
  std::string_view password;
};
/// ["PING", self_hostname, salt, sha512_hex(salt + self_hostname + nonce + shared_key),
///  username, sha512_hex(auth_salt + username + password) or ""].
std::string make_ping(const Helo& helo, const PingParams& p);

/// Checks ["PONG", ok, reason, server_hostname, sha512_hex(salt + server_hostname + nonce +
/// shared_key)]: an error carries the server's reason, or says the server's digest is wrong
/// (the server does not know our key).
Result<void> check_pong(const msgpack::object& obj, const Helo& helo, const PingParams& p);

}  // namespace needle::forward

#endif  // NEEDLE_SINKS_FORWARD_PROTO_H
