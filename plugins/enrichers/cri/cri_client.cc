#include "cri_client.h"

#include <grpcpp/grpcpp.h>

#include "cri_api.grpc.pb.h"
#include "cri_format.h"
#include "lru_cache.h"

namespace needle::cri {

namespace {

CallStatus status_of(const grpc::Status& s, const char* call, std::string& error) {
  if (s.ok()) {
    return CallStatus::kOk;
  }
  error = std::string(call) + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      return CallStatus::kNotFound;
    case grpc::StatusCode::UNAVAILABLE:
      return CallStatus::kUnavailable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return CallStatus::kTimeout;
    default:
      return CallStatus::kError;
  }
}

struct Pod {
  std::string uid;
  std::string name;
  std::string ns;
};

}  // namespace

struct CriClient::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime;
  std::unique_ptr<runtime::v1::ImageService::Stub> images;
  enrich::LruCache<std::string, Pod> pods{1024};
};

CriClient::CriClient(std::string endpoint, std::chrono::milliseconds deadline)
    : endpoint_(std::move(endpoint)), deadline_(deadline), impl_(std::make_unique<Impl>()) {
  grpc::ChannelArguments args;
  // Reconnect soon after a runtime restart (gRPC's default backoff grows to two minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  impl_->channel = grpc::CreateCustomChannel(endpoint_, grpc::InsecureChannelCredentials(), args);
  impl_->runtime = runtime::v1::RuntimeService::NewStub(impl_->channel);
  impl_->images = runtime::v1::ImageService::NewStub(impl_->channel);
}

CriClient::~CriClient() = default;

CallStatus CriClient::version(std::string& what, std::string& error) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
  runtime::v1::VersionRequest rq;
  rq.set_version("v1");
  runtime::v1::VersionResponse rs;
  CallStatus st = status_of(impl_->runtime->Version(&ctx, rq, &rs), "Version", error);
  if (st == CallStatus::kOk) {
    what =
        rs.runtime_name() + " " + rs.runtime_version() + " (CRI " + rs.runtime_api_version() + ")";
  }
  return st;
}

CallStatus CriClient::lookup(const std::string& container_id, ContainerInfo& out,
                             std::string& error) {
  runtime::v1::ContainerStatusResponse cs;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
    runtime::v1::ContainerStatusRequest rq;
    rq.set_container_id(container_id);
    CallStatus st =
        status_of(impl_->runtime->ContainerStatus(&ctx, rq, &cs), "ContainerStatus", error);
    if (st != CallStatus::kOk) {
      return st;
    }
  }
  const auto& s = cs.status();
  out.name = s.metadata().name();
  out.image = s.image().image();
  out.image_digest = std::string(digest_of(s.image_ref()));
  for (const auto& [k, v] : s.labels()) {
    out.labels.emplace_back(k, v);
  }
  if (out.image_digest.empty() && !s.image_ref().empty()) {
    // A bare image id: the runtime's repo digests name the manifest.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
    runtime::v1::ImageStatusRequest rq;
    rq.mutable_image()->set_image(s.image_ref());
    runtime::v1::ImageStatusResponse rs;
    std::string ignored;
    if (status_of(impl_->images->ImageStatus(&ctx, rq, &rs), "ImageStatus", ignored) ==
            CallStatus::kOk &&
        rs.has_image() && rs.image().repo_digests_size() > 0) {
      out.image_digest = std::string(digest_of(rs.image().repo_digests(0)));
    }
  }
  // ContainerStatus carries no sandbox id: ListContainers filtered by id does.
  std::string sandbox;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
    runtime::v1::ListContainersRequest rq;
    rq.mutable_filter()->set_id(container_id);
    runtime::v1::ListContainersResponse rs;
    CallStatus st =
        status_of(impl_->runtime->ListContainers(&ctx, rq, &rs), "ListContainers", error);
    if (st == CallStatus::kUnavailable || st == CallStatus::kTimeout) {
      return st;
    }
    if (st == CallStatus::kOk && rs.containers_size() > 0) {
      sandbox = rs.containers(0).pod_sandbox_id();
    }
  }
  if (sandbox.empty()) {
    return CallStatus::kOk;  // a container outside any pod
  }
  if (const Pod* p = impl_->pods.find(sandbox)) {
    out.pod_found = true;
    out.pod_uid = p->uid;
    out.pod_name = p->name;
    out.pod_namespace = p->ns;
    return CallStatus::kOk;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
  runtime::v1::PodSandboxStatusRequest rq;
  rq.set_pod_sandbox_id(sandbox);
  runtime::v1::PodSandboxStatusResponse rs;
  CallStatus st =
      status_of(impl_->runtime->PodSandboxStatus(&ctx, rq, &rs), "PodSandboxStatus", error);
  if (st == CallStatus::kUnavailable || st == CallStatus::kTimeout) {
    return st;
  }
  if (st == CallStatus::kOk) {
    const auto& m = rs.status().metadata();
    out.pod_found = true;
    out.pod_uid = m.uid();
    out.pod_name = m.name();
    out.pod_namespace = m.namespace_();
    impl_->pods.put(sandbox, Pod{m.uid(), m.name(), m.namespace_()});
  }
  return CallStatus::kOk;
}

}  // namespace needle::cri
