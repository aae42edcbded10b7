// enricher/cri against a fake CRI runtime served by this test on a unix socket: metadata and pod
// filled after a short park, a container the runtime does not know, a runtime slower than
// timeout_ms, no runtime at all (events go on at once) and one that appears later (reconnect).
// The real containerd is exercised by tests/integration/cri_test.cc.
#include "cri_enricher.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "cri_api.grpc.pb.h"
#include "test_host.h"

namespace needle::cri {
namespace {

using enrich::test::TestEvent;
using enrich::test::TestHost;
using Clock = std::chrono::steady_clock;

constexpr char kKnown[] = "aaaa000000000000000000000000000000000000000000000000000000000001";
constexpr char kUnknown[] = "bbbb000000000000000000000000000000000000000000000000000000000002";

class FakeRuntime final : public runtime::v1::RuntimeService::Service {
 public:
  std::atomic<int> delay_ms{0};
  std::atomic<int> status_calls{0};

  grpc::Status Version(grpc::ServerContext*, const runtime::v1::VersionRequest*,
                       runtime::v1::VersionResponse* rs) override {
    rs->set_runtime_name("fake");
    rs->set_runtime_version("1.0");
    rs->set_runtime_api_version("v1");
    return grpc::Status::OK;
  }
  grpc::Status ContainerStatus(grpc::ServerContext*, const runtime::v1::ContainerStatusRequest* rq,
                               runtime::v1::ContainerStatusResponse* rs) override {
    status_calls++;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
    if (rq->container_id() != kKnown) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such container");
    }
    auto* s = rs->mutable_status();
    s->set_id(kKnown);
    s->mutable_metadata()->set_name("web");
    s->mutable_image()->set_image("docker.io/library/nginx:1.25");
    s->set_image_ref("docker.io/library/nginx@sha256:feedface");
    (*s->mutable_labels())["io.kubernetes.container.name"] = "web";
    return grpc::Status::OK;
  }
  grpc::Status ListContainers(grpc::ServerContext*, const runtime::v1::ListContainersRequest* rq,
                              runtime::v1::ListContainersResponse* rs) override {
    if (rq->filter().id() == kKnown) {
      auto* c = rs->add_containers();
      c->set_id(kKnown);
      c->set_pod_sandbox_id("sandbox-1");
    }
    return grpc::Status::OK;
  }
  grpc::Status PodSandboxStatus(grpc::ServerContext*,
                                const runtime::v1::PodSandboxStatusRequest* rq,
                                runtime::v1::PodSandboxStatusResponse* rs) override {
    if (rq->pod_sandbox_id() != "sandbox-1") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such sandbox");
    }
    auto* m = rs->mutable_status()->mutable_metadata();
    m->set_name("frontend-7d4b9");
    m->set_namespace_("shop");
    m->set_uid("3f9c1a7e-0000-4000-8000-0000000000cc");
    return grpc::Status::OK;
  }
};

class CriTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sock_ = "/tmp/needle-cri-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".sock";
    sock_ = sock_.substr(0, 100);
    std::filesystem::remove(sock_);
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    }
    std::filesystem::remove(sock_);
  }
  void serve() {
    grpc::ServerBuilder b;
    b.AddListeningPort("unix://" + sock_, grpc::InsecureServerCredentials());
    b.RegisterService(&fake_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  CriOptions options() {
    CriOptions o;
    o.endpoints = {"unix://" + sock_};
    o.timeout_ms = 2000;
    o.rpc_timeout_ms = 3000;
    return o;
  }
  static void container_event(TestEvent& t, const char* id, const char* runtime = "containerd",
                              const char* type = "process.exec") {
    Event e = t.view();
    e.set("type", type);
    e.set("container.id", id);
    if (runtime != nullptr) {
      e.set("container.runtime", runtime);
    }
  }
  // Calls enrich as the core does for a parked event until it is done (at most `limit`).
  static needle_rc settle(CriEnricher& en, Event& ev,
                          std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto until = Clock::now() + limit;
    uint64_t d = 0;
    needle_rc rc = en.enrich(ev, d);
    while (rc == NEEDLE_PENDING && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      rc = en.enrich(ev, d);
    }
    return rc;
  }

  std::string sock_;
  FakeRuntime fake_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(CriTest, KnownContainerIsParkedThenCarriesMetadataAndPod) {
  serve();
  TestHost th("cri");
  CriEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  TestEvent t;
  container_event(t, kKnown);
  Event ev = t.view();
  uint64_t d = 0;
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_PENDING);
  ASSERT_EQ(settle(en, ev), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("container.name").value_or(""), "web");
  EXPECT_EQ(ev.get_str("container.image").value_or(""), "docker.io/library/nginx:1.25");
  EXPECT_EQ(ev.get_str("container.image_digest").value_or(""), "sha256:feedface");
  EXPECT_EQ(ev.get_str("container.labels.io_kubernetes_container_name").value_or(""), "web");
  EXPECT_EQ(ev.get_str("pod.name").value_or(""), "frontend-7d4b9");
  EXPECT_EQ(ev.get_str("pod.namespace").value_or(""), "shop");
  EXPECT_EQ(ev.get_str("pod.uid").value_or(""), "3f9c1a7e-0000-4000-8000-0000000000cc");
  EXPECT_EQ(t.json().find("incomplete"), std::string::npos) << t.json();
  // The next event of the container is answered from the cache, without a call.
  TestEvent t2;
  container_event(t2, kKnown);
  Event ev2 = t2.view();
  EXPECT_EQ(en.enrich(ev2, d), NEEDLE_OK);
  EXPECT_EQ(ev2.get_str("pod.name").value_or(""), "frontend-7d4b9");
  EXPECT_EQ(fake_.status_calls.load(), 1);
  en.stop();
}

TEST_F(CriTest, UnknownContainerGoesOnWithoutMetadataAndIsNotIncomplete) {
  serve();
  TestHost th("cri");
  CriEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  TestEvent t;
  container_event(t, kUnknown);
  Event ev = t.view();
  ASSERT_EQ(settle(en, ev), NEEDLE_OK);
  EXPECT_FALSE(ev.find("container.name").valid());
  EXPECT_FALSE(ev.find("pod").valid());
  EXPECT_EQ(t.json().find("incomplete"), std::string::npos) << t.json();
  EXPECT_EQ(th.counter("unknown_containers"), 1u);
  en.stop();
}

TEST_F(CriTest, SlowRuntimeIsWaitedForAtMostTimeoutMs) {
  serve();
  fake_.delay_ms = 1500;
  TestHost th("cri");
  CriOptions o = options();
  o.timeout_ms = 100;
  CriEnricher en(th.host(), o);
  ASSERT_TRUE(en.start().ok());
  TestEvent t;
  container_event(t, kKnown);
  Event ev = t.view();
  auto t0 = Clock::now();
  ASSERT_EQ(settle(en, ev), NEEDLE_OK);
  auto waited = Clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(90));
  EXPECT_LT(waited, std::chrono::milliseconds(1000));
  EXPECT_NE(t.json().find("\"incomplete\":[\"container.name\",\"container.image\","
                          "\"container.image_digest\",\"pod.name\",\"pod.namespace\"]"),
            std::string::npos)
      << t.json();
  EXPECT_EQ(th.counter("timeouts"), 1u);
  en.stop();
}

TEST_F(CriTest, WithoutRuntimeEventsGoOnAtOnceThenItIsFoundWhenItComes) {
  TestHost th("cri");
  CriEnricher en(th.host(), options());  // nothing listens on the socket yet
  ASSERT_TRUE(en.start().ok());
  {
    TestEvent t;
    container_event(t, kKnown);
    Event ev = t.view();
    ASSERT_EQ(settle(en, ev), NEEDLE_OK);
    EXPECT_NE(t.json().find("\"incomplete\":[\"container.name\""), std::string::npos);
  }
  // Once the runtime is known to be down, events are not parked at all.
  TestEvent t;
  container_event(t, kKnown);
  Event ev = t.view();
  uint64_t d = 0;
  EXPECT_EQ(en.enrich(ev, d), NEEDLE_OK);
  EXPECT_GE(th.counter("runtime_down"), 1u);
  serve();
  auto until = Clock::now() + std::chrono::seconds(10);
  while (!en.connected() && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(en.connected());
  TestEvent t2;
  container_event(t2, kKnown);
  Event ev2 = t2.view();
  ASSERT_EQ(settle(en, ev2), NEEDLE_OK);
  EXPECT_EQ(ev2.get_str("pod.namespace").value_or(""), "shop");
  en.stop();
}

TEST_F(CriTest, DockerAndPodmanContainersAreNotLookedUp) {
  serve();
  TestHost th("cri");
  CriEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  for (const char* rt : {"docker", "podman"}) {
    TestEvent t;
    container_event(t, kKnown, rt);
    Event ev = t.view();
    uint64_t d = 0;
    EXPECT_EQ(en.enrich(ev, d), NEEDLE_OK);
    EXPECT_FALSE(ev.find("container.name").valid());
  }
  EXPECT_EQ(fake_.status_calls.load(), 0);
  en.stop();
}

TEST_F(CriTest, ContainerCreatePrefetchesForTheFirstExec) {
  serve();
  TestHost th("cri");
  CriEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  TestEvent create;
  container_event(create, kKnown, nullptr, "container.create");
  Event c = create.view();
  ASSERT_EQ(settle(en, c), NEEDLE_OK);
  EXPECT_EQ(c.get_str("container.name").value_or(""), "web");
  TestEvent exec;
  container_event(exec, kKnown);
  Event e = exec.view();
  uint64_t d = 0;
  EXPECT_EQ(en.enrich(e, d), NEEDLE_OK);  // no park: already cached
  EXPECT_EQ(e.get_str("pod.name").value_or(""), "frontend-7d4b9");
  en.stop();
}

}  // namespace
}  // namespace needle::cri
