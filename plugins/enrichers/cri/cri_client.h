// A CRI RuntimeService/ImageService client on one unix socket: the lookups enricher/cri makes,
// each bounded by a deadline. Blocking; used by the enricher's worker thread only.
#ifndef NEEDLE_ENRICHERS_CRI_CLIENT_H
#define NEEDLE_ENRICHERS_CRI_CLIENT_H

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace needle::cri {

/// What the runtime said of one container.
struct ContainerInfo {
  std::string name;
  std::string image;
  std::string image_digest;  // "" when the runtime has none
  std::vector<std::pair<std::string, std::string>> labels;
  bool pod_found = false;
  std::string pod_uid;
  std::string pod_name;
  std::string pod_namespace;
};

enum class CallStatus {
  kOk,
  kNotFound,     // the runtime does not know the container
  kUnavailable,  // no runtime on the socket (down, restarting, missing)
  kTimeout,      // the runtime did not answer within the deadline
  kError,        // any other failure
};

class CriClient {
 public:
  /// `endpoint` as normalize_endpoint() returns it. Dialling is lazy.
  CriClient(std::string endpoint, std::chrono::milliseconds deadline);
  ~CriClient();
  CriClient(const CriClient&) = delete;
  CriClient& operator=(const CriClient&) = delete;

  const std::string& endpoint() const { return endpoint_; }

  /// Version: "<runtime_name> <runtime_version> (CRI <api version>)" into `what`.
  CallStatus version(std::string& what, std::string& error);
  /// ContainerStatus, then ListContainers{id} for the sandbox id and PodSandboxStatus for the
  /// pod (cached per sandbox), and ImageStatus when the reference holds no digest.
  CallStatus lookup(const std::string& container_id, ContainerInfo& out, std::string& error);

 private:
  struct Impl;
  std::string endpoint_;
  std::chrono::milliseconds deadline_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace needle::cri

#endif  // NEEDLE_ENRICHERS_CRI_CLIENT_H
