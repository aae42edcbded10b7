#include "cri_format.h"

namespace needle::cri {

Result<std::string> normalize_endpoint(std::string_view endpoint) {
  std::string_view path = endpoint;
  if (path.starts_with("unix://")) {
    path.remove_prefix(7);
  } else if (path.find("://") != std::string_view::npos) {
    return make_error("endpoint '" + std::string(endpoint) +
                      "' is not a unix socket (use unix:///path or /path)");
  }
  if (path.empty() || path.front() != '/') {
    return make_error("endpoint '" + std::string(endpoint) +
                      "' must name an absolute socket path (unix:///path or /path)");
  }
  if (path.size() > 107) {
    return make_error("endpoint '" + std::string(endpoint) +
                      "' is longer than a unix socket path may be (107 bytes)");
  }
  return "unix://" + std::string(path);
}

std::string_view runtime_of_endpoint(std::string_view endpoint) {
  size_t slash = endpoint.rfind('/');
  std::string_view name = slash == std::string_view::npos ? endpoint : endpoint.substr(slash + 1);
  if (name.find("containerd") != std::string_view::npos) {
    return "containerd";
  }
  if (name.find("crio") != std::string_view::npos) {
    return "cri-o";
  }
  return "";
}

std::string_view digest_of(std::string_view image_ref) {
  size_t at = image_ref.rfind('@');
  if (at == std::string_view::npos) {
    return {};
  }
  std::string_view d = image_ref.substr(at + 1);
  return d.find(':') == std::string_view::npos ? std::string_view{} : d;
}

std::string dedot(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    if (c == '.') {
      c = '_';
    }
  }
  return out;
}

}  // namespace needle::cri
