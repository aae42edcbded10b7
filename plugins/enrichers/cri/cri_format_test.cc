// enricher/cri's pure helpers: the endpoint forms of containerd and CRI-O (CRI-O is not
// packaged for Debian 12, so its socket forms are checked here only), image digests and label
// keys.
#include "cri_format.h"

#include <gtest/gtest.h>

namespace needle::cri {
namespace {

TEST(Endpoint, ContainerdAndCrioSocketsInBothForms) {
  EXPECT_EQ(*normalize_endpoint("unix:///run/containerd/containerd.sock"),
            "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(*normalize_endpoint("/run/containerd/containerd.sock"),
            "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(*normalize_endpoint("unix:///run/crio/crio.sock"), "unix:///run/crio/crio.sock");
  EXPECT_EQ(*normalize_endpoint("unix:///var/run/crio/crio.sock"),
            "unix:///var/run/crio/crio.sock");
  EXPECT_EQ(*normalize_endpoint("/var/run/crio/crio.sock"), "unix:///var/run/crio/crio.sock");
  EXPECT_EQ(std::string(kContainerdEndpoint), "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(std::string(kCrioEndpoint), "unix:///run/crio/crio.sock");
}

TEST(Endpoint, NonUnixOrRelativeEndpointsAreRefusedNamingThem) {
  for (const char* bad : {"tcp://127.0.0.1:10010", "unix://run/crio.sock", "crio.sock", "",
                          "unix://", "npipe:////./pipe/containerd"}) {
    auto r = normalize_endpoint(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos)
        << r.error().message;
  }
  EXPECT_FALSE(normalize_endpoint("/" + std::string(120, 'x')).ok());  // sun_path is 108 bytes
}

TEST(Endpoint, RuntimeIsKnownFromTheSocketName) {
  EXPECT_EQ(runtime_of_endpoint("unix:///run/containerd/containerd.sock"), "containerd");
  EXPECT_EQ(runtime_of_endpoint("unix:///run/k3s/containerd/containerd.sock"), "containerd");
  EXPECT_EQ(runtime_of_endpoint("unix:///var/run/crio/crio.sock"), "cri-o");
  EXPECT_EQ(runtime_of_endpoint("unix:///tmp/fake.sock"), "");
}

TEST(ImageDigest, TakenFromADigestedReferenceOnly) {
  EXPECT_EQ(digest_of("docker.io/sensortest/busybox@sha256:0123abcd"), "sha256:0123abcd");
  EXPECT_EQ(digest_of("registry:5000/a/b@sha256:ff"), "sha256:ff");
  EXPECT_EQ(digest_of("sha256:0123abcd"), "");  // an image id, not a manifest digest
  EXPECT_EQ(digest_of("docker.io/library/busybox:1.36"), "");
  EXPECT_EQ(digest_of("broken@"), "");
}

TEST(Labels, DotsBecomeUnderscores) {
  EXPECT_EQ(dedot("io.kubernetes.pod.name"), "io_kubernetes_pod_name");
  EXPECT_EQ(dedot("app"), "app");
  EXPECT_EQ(dedot("example.com/team"), "example_com/team");
}

}  // namespace
}  // namespace needle::cri
