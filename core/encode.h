// Encodings of an event for sinks: JSON (one object, no trailing newline) and msgpack (the same
// map). The core encodes each event once per format that some sink wants.
#ifndef NEEDLE_CORE_ENCODE_H
#define NEEDLE_CORE_ENCODE_H

#include <string>

#include "event.h"

namespace needle::core {

/// Appends the JSON form of `ev` to `out`.
void encode_json(const Event& ev, std::string& out);
/// Appends the msgpack form of `ev` to `out`.
void encode_msgpack(const Event& ev, std::string& out);
/// Appends `s` as a JSON string literal (quoted, escaped).
void json_string(std::string_view s, std::string& out);

}  // namespace needle::core

#endif  // NEEDLE_CORE_ENCODE_H
