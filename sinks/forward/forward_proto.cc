#include "forward_proto.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <array>
#include <charconv>
#include <cstring>

namespace needle::forward {

namespace {

struct StringBuffer {
  std::string* out;
  void write(const char* p, size_t n) { out->append(p, n); }
};
using Packer = msgpack::packer<StringBuffer>;

void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void put_be32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out.append(b, 4);
}

// A str or bin object's bytes.
bool bytes_of(const msgpack::object& o, std::string& out) {
  if (o.type == msgpack::type::STR) {
    out.assign(o.via.str.ptr, o.via.str.size);
    return true;
  }
  if (o.type == msgpack::type::BIN) {
    out.assign(o.via.bin.ptr, o.via.bin.size);
    return true;
  }
  return false;
}

const msgpack::object* map_find(const msgpack::object& m, std::string_view key) {
  if (m.type != msgpack::type::MAP) {
    return nullptr;
  }
  for (uint32_t i = 0; i < m.via.map.size; ++i) {
    const msgpack::object& k = m.via.map.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
      return &m.via.map.ptr[i].val;
    }
  }
  return nullptr;
}

bool is_str(const msgpack::object& o, std::string_view s) {
  return o.type == msgpack::type::STR && std::string_view(o.via.str.ptr, o.via.str.size) == s;
}

// Days since 1970-01-01 of a civil date (proleptic Gregorian).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool digits(std::string_view s, size_t pos, size_t n, unsigned& out) {
  if (pos + n > s.size()) {
    return false;
  }
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    out = out * 10 + static_cast<unsigned>(s[i] - '0');
  }
  return true;
}

uint64_t fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string base64(const unsigned char* p, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = static_cast<uint32_t>(p[i]) << 16;
    if (i + 1 < n) {
      v |= static_cast<uint32_t>(p[i + 1]) << 8;
    }
    if (i + 2 < n) {
      v |= p[i + 2];
    }
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kAlphabet[v & 63] : '=');
  }
  return out;
}

}  // namespace

Result<Address> parse_address(std::string_view text) {
  Address a;
  a.text = std::string(text);
  auto take = [&](std::string_view prefix) {
    if (text.substr(0, prefix.size()) == prefix) {
      text.remove_prefix(prefix.size());
      return true;
    }
    return false;
  };
  if (take("unix://")) {
    a.scheme = Scheme::kUnix;
    if (text.empty() || text[0] != '/') {
      return make_error("'" + a.text + "': a unix address is unix:///absolute/path");
    }
    a.path = std::string(text);
    return a;
  }
  if (take("tcp://")) {
    a.scheme = Scheme::kTcp;
  } else if (take("tls://")) {
    a.scheme = Scheme::kTls;
  } else {
    return make_error("'" + a.text +
                      "': expected tcp://HOST:PORT, tls://HOST:PORT or unix:///PATH");
  }
  size_t colon;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error("'" + a.text + "': an IPv6 address is written [ADDR]:PORT");
    }
    a.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return make_error("'" + a.text + "': the port is missing (HOST:PORT)");
    }
    a.host = std::string(text.substr(0, colon));
  }
  std::string_view port = text.substr(colon + 1);
  unsigned v = 0;
  auto r = std::from_chars(port.data(), port.data() + port.size(), v);
  if (a.host.empty() || a.host.find_first_of("/ ") != std::string::npos) {
    return make_error("'" + a.text + "': the host is missing or malformed");
  }
  if (port.empty() || r.ec != std::errc() || r.ptr != port.data() + port.size() || v == 0 ||
      v > 65535) {
    return make_error("'" + a.text + "': the port must be a number from 1 to 65535");
  }
  a.port = static_cast<uint16_t>(v);
  return a;
}

Result<Mode> parse_mode(std::string_view text) {
  if (text == "packed") {
    return Mode::kPacked;
  }
  if (text == "compressed") {
    return Mode::kCompressed;
  }
  if (text == "stream") {
    return Mode::kStream;
  }
  return make_error("'" + std::string(text) + "': mode must be packed, compressed or stream");
}

Result<TagTemplate> TagTemplate::parse(std::string_view text) {
  TagTemplate t;
  size_t open = text.find('{');
  if (open == std::string_view::npos) {
    if (text.find('}') != std::string_view::npos) {
      return make_error("'" + std::string(text) + "': unbalanced '}'");
    }
    t.prefix_ = std::string(text);
  } else {
    size_t close = text.find('}', open);
    if (close == std::string_view::npos) {
      return make_error("'" + std::string(text) + "': unbalanced '{'");
    }
    std::string_view name = text.substr(open + 1, close - open - 1);
    if (name != "type") {
      return make_error("'" + std::string(text) + "': unknown placeholder {" + std::string(name) +
                        "} (only {type} is known)");
    }
    t.prefix_ = std::string(text.substr(0, open));
    t.suffix_ = std::string(text.substr(close + 1));
    t.has_type_ = true;
    if (t.suffix_.find_first_of("{}") != std::string::npos) {
      return make_error("'" + std::string(text) + "': at most one {type}");
    }
  }
  if (t.prefix_.empty() && t.suffix_.empty() && !t.has_type_) {
    return make_error("the tag must not be empty");
  }
  return t;
}

void TagTemplate::expand(std::string_view type, std::string& out) const {
  out.append(prefix_);
  if (has_type_) {
    out.append(type.empty() ? std::string_view("unknown") : type);
  }
  out.append(suffix_);
}

bool parse_rfc3339(std::string_view s, int64_t& seconds, uint32_t& nanos) {
  unsigned y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, sec)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
    return false;
  }
  size_t i = 19;
  nanos = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    uint32_t scale = 100000000;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      nanos += static_cast<uint32_t>(s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) {
      return false;
    }
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    unsigned oh, om;
    if (!digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !digits(s, i + 4, 2, om)) {
      return false;
    }
    offset = (s[i] == '+' ? 1 : -1) * static_cast<int64_t>(oh * 3600 + om * 60);
    i += 6;
  } else {
    return false;
  }
  if (i != s.size()) {
    return false;
  }
  seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
  return true;
}

void append_entry(std::string& out, uint32_t seconds, uint32_t nanos, std::string_view record) {
  out.push_back(static_cast<char>(0x92));  // fixarray of 2
  out.push_back(static_cast<char>(0xd7));  // fixext 8
  out.push_back(0);                        // ext type 0: EventTime
  put_be32(out, seconds);
  put_be32(out, nanos);
  out.append(record);
}

void append_packed_forward(std::string& out, std::string_view tag, std::string_view entries,
                           size_t count, std::string_view chunk, bool compressed) {
  StringBuffer buf{&out};
  Packer pk(buf);
  pk.pack_array(3);
  pack_str(pk, tag);
  pk.pack_bin(static_cast<uint32_t>(entries.size()));
  pk.pack_bin_body(entries.data(), static_cast<uint32_t>(entries.size()));
  pk.pack_map(1 + (chunk.empty() ? 0 : 1) + (compressed ? 1 : 0));
  pack_str(pk, "size");
  pk.pack_uint64(count);
  if (!chunk.empty()) {
    pack_str(pk, "chunk");
    pack_str(pk, chunk);
  }
  if (compressed) {
    pack_str(pk, "compressed");
    pack_str(pk, "gzip");
  }
}

Result<void> gzip_append(std::string_view in, std::string& out, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return make_error("gzip: deflateInit2 failed");
  }
  size_t start = out.size();
  out.resize(start + deflateBound(&zs, static_cast<uLong>(in.size())));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data() + start);
  zs.avail_out = static_cast<uInt>(out.size() - start);
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    out.resize(start);
    return make_error("gzip: deflate failed");
  }
  out.resize(start + produced);
  return {};
}

void append_stream_frame(std::string& out, std::string_view event) {
  put_be32(out, static_cast<uint32_t>(event.size()));
  out.append(event);
}

std::string chunk_id(uint64_t seed, std::string_view content) {
  std::array<unsigned char, 16> raw{};
  uint64_t a = fnv1a(14695981039346656037ull ^ seed, content);
  uint64_t b = fnv1a(0x9e3779b97f4a7c15ull ^ (seed * 31 + 7), content);
  std::memcpy(raw.data(), &a, 8);
  std::memcpy(raw.data() + 8, &b, 8);
  return base64(raw.data(), raw.size());
}

Result<std::string> parse_ack(const msgpack::object& obj) {
  const msgpack::object* ack = map_find(obj, "ack");
  std::string chunk;
  if (ack == nullptr || !bytes_of(*ack, chunk)) {
    return make_error("expected {\"ack\": chunk} from the server");
  }
  return chunk;
}

std::string sha512_hex(std::initializer_list<std::string_view> parts) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr);
  for (std::string_view p : parts) {
    EVP_DigestUpdate(ctx, p.data(), p.size());
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

Result<Helo> parse_helo(const msgpack::object& obj) {
  if (obj.type != msgpack::type::ARRAY || obj.via.array.size != 2 ||
      !is_str(obj.via.array.ptr[0], "HELO")) {
    return make_error("expected a HELO from the server (is shared_key set on this side only?)");
  }
  const msgpack::object& opts = obj.via.array.ptr[1];
  Helo h;
  const msgpack::object* nonce = map_find(opts, "nonce");
  if (nonce == nullptr || !bytes_of(*nonce, h.nonce)) {
    return make_error("the server's HELO has no nonce");
  }
  if (const msgpack::object* auth = map_find(opts, "auth")) {
    (void)bytes_of(*auth, h.auth_salt);
  }
  if (const msgpack::object* ka = map_find(opts, "keepalive")) {
    h.keepalive = ka->type != msgpack::type::BOOLEAN || ka->via.boolean;
  }
  return h;
}

std::string make_ping(const Helo& helo, const PingParams& p) {
  std::string out;
  StringBuffer buf{&out};
  Packer pk(buf);
  pk.pack_array(6);
  pack_str(pk, "PING");
  pack_str(pk, p.self_hostname);
  pack_str(pk, p.shared_key_salt);
  pack_str(pk, sha512_hex({p.shared_key_salt, p.self_hostname, helo.nonce, p.shared_key}));
  if (!helo.auth_salt.empty()) {
    pack_str(pk, p.username);
    pack_str(pk, sha512_hex({helo.auth_salt, p.username, p.password}));
  } else {
    pack_str(pk, "");
    pack_str(pk, "");
  }
  return out;
}

Result<void> check_pong(const msgpack::object& obj, const Helo& helo, const PingParams& p) {
  if (obj.type != msgpack::type::ARRAY || obj.via.array.size != 5 ||
      !is_str(obj.via.array.ptr[0], "PONG")) {
    return make_error("expected a PONG from the server");
  }
  const msgpack::object* a = obj.via.array.ptr;
  std::string reason;
  std::string server_host;
  std::string digest;
  (void)bytes_of(a[2], reason);
  (void)bytes_of(a[3], server_host);
  (void)bytes_of(a[4], digest);
  if (a[1].type != msgpack::type::BOOLEAN || !a[1].via.boolean) {
    return make_error("the server refused the handshake: " +
                      (reason.empty() ? std::string("no reason given") : reason));
  }
  if (server_host == p.self_hostname) {
    return make_error("the server has our own hostname '" + server_host +
                      "': set self_hostname to this sensor's name");
  }
  if (digest != sha512_hex({p.shared_key_salt, server_host, helo.nonce, p.shared_key})) {
    return make_error("the server '" + server_host +
                      "' answered with a wrong shared-key digest: it does not know our key");
  }
  return {};
}

}  // namespace needle::forward
