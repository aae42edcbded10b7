// Pure helpers of enricher/cri: endpoint syntax, the digest inside an image reference, label
// keys as event field names. No I/O; unit-tested without a runtime.
#ifndef NEEDLE_ENRICHERS_CRI_FORMAT_H
#define NEEDLE_ENRICHERS_CRI_FORMAT_H

#include <string>
#include <string_view>

#include "needle/result.h"

namespace needle::cri {

/// containerd's and CRI-O's sockets (CRI-O's /var/run path is a link to /run on most hosts).
inline constexpr std::string_view kContainerdEndpoint = "unix:///run/containerd/containerd.sock";
inline constexpr std::string_view kCrioEndpoint = "unix:///run/crio/crio.sock";

/// An endpoint as gRPC dials it: "unix:///abs/path". Accepts "unix:///abs/path" and
/// "/abs/path"; anything else (tcp, a relative path, an empty one) is an error naming it.
Result<std::string> normalize_endpoint(std::string_view endpoint);

/// The runtime an endpoint belongs to, from its socket name: "containerd", "cri-o", or "".
std::string_view runtime_of_endpoint(std::string_view endpoint);

/// The digest in an image reference ("repo@sha256:..." -> "sha256:..."), or "" when the
/// reference names no digest (a tag, or a bare image id).
std::string_view digest_of(std::string_view image_ref);

/// A label key as one event field name: dots become underscores (as Beats "dedots" them), so
/// that `io.kubernetes.pod.name` stays one key under `container.labels`.
std::string dedot(std::string_view key);

}  // namespace needle::cri

#endif  // NEEDLE_ENRICHERS_CRI_FORMAT_H
