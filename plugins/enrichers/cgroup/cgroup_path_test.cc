// sdk/include/needle/cgroup_path.h: every runtime and driver layout, as recorded on real hosts
// (the containerd, CRI and podman paths were read from /proc/<pid>/cgroup on the test machine;
// the systemd-driver layouts, which need systemd as PID 1, follow the runtimes' documented
// formats), and the cgroup paths that must not be taken for containers.
#include "needle/cgroup_path.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace needle {
namespace {

constexpr std::string_view kId = "eebc65c5a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a7f0d";
constexpr std::string_view kId2 =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr std::string_view kUid = "3f9c1a7e-0000-4000-8000-0000000000cc";
constexpr std::string_view kUidUnderscores = "3f9c1a7e_0000_4000_8000_0000000000cc";

std::string s(std::string_view a) {
  return std::string(a);
}

void expect_container(const std::string& path, ContainerRuntime rt, std::string_view id,
                      std::string_view pod_uid = {}) {
  CgroupContainer c = parse_cgroup_path(path);
  EXPECT_EQ(c.runtime, rt) << path;
  EXPECT_EQ(c.id, id) << path;
  EXPECT_EQ(c.pod_uid(), pod_uid) << path;
}

void expect_none(const std::string& path) {
  CgroupContainer c = parse_cgroup_path(path);
  EXPECT_FALSE(c.is_container()) << path << " parsed as " << runtime_name(c.runtime) << " " << c.id;
}

TEST(CgroupPath, DockerCgroupfsDriver) {
  expect_container("/docker/" + s(kId), ContainerRuntime::kDocker, kId);
}

TEST(CgroupPath, DockerSystemdDriver) {
  expect_container("/system.slice/docker-" + s(kId) + ".scope", ContainerRuntime::kDocker, kId);
}

TEST(CgroupPath, ContainerdCtrRunNamespaceAndName) {
  // Recorded: `ctr run docker.io/sensortest/busybox:1 demo1` in namespace "default".
  expect_container("/default/demo1", ContainerRuntime::kContainerd, "demo1");
}

TEST(CgroupPath, ContainerdCriWithoutCgroupParent) {
  // Recorded: a CRI container created without linux.cgroup_parent.
  expect_container("/k8s.io/" + s(kId), ContainerRuntime::kContainerd, kId);
}

TEST(CgroupPath, ContainerdCustomNamespaceNeedsHexIdOrConfiguration) {
  expect_container("/buildkit/" + s(kId), ContainerRuntime::kContainerd, kId);
  expect_none("/buildkit/worker1");
  constexpr std::string_view ns[] = {"buildkit"};
  CgroupContainer c = parse_cgroup_path("/buildkit/worker1", ns);
  EXPECT_EQ(c.runtime, ContainerRuntime::kContainerd);
  EXPECT_EQ(c.id, "worker1");
}

TEST(CgroupPath, CriCgroupfsDriverBestEffortAndBurstable) {
  // Recorded: cgroup_parent=/kubepods/besteffort/pod<uid> (the kubelet cgroupfs layout).
  expect_container("/kubepods/besteffort/pod" + s(kUid) + "/" + s(kId),
                   ContainerRuntime::kContainerd, kId, kUid);
  expect_container("/kubepods/burstable/pod" + s(kUid) + "/" + s(kId),
                   ContainerRuntime::kContainerd, kId, kUid);
}

TEST(CgroupPath, CriCgroupfsDriverGuaranteedHasNoQosFolder) {
  expect_container("/kubepods/pod" + s(kUid) + "/" + s(kId), ContainerRuntime::kContainerd, kId,
                   kUid);
}

TEST(CgroupPath, CriContainerdSystemdDriver) {
  expect_container("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                       s(kUidUnderscores) + ".slice/cri-containerd-" + s(kId) + ".scope",
                   ContainerRuntime::kContainerd, kId, kUid);
  expect_container("/kubepods.slice/kubepods-pod" + s(kUidUnderscores) + ".slice/cri-containerd-" +
                       s(kId) + ".scope",
                   ContainerRuntime::kContainerd, kId, kUid);
}

TEST(CgroupPath, ContainerdSystemdDriverOutsideKubernetes) {
  expect_container("/system.slice/cri-containerd-" + s(kId) + ".scope",
                   ContainerRuntime::kContainerd, kId);
}

TEST(CgroupPath, CrioSystemdDriver) {
  expect_container("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                       s(kUidUnderscores) + ".slice/crio-" + s(kId) + ".scope",
                   ContainerRuntime::kCrio, kId, kUid);
}

TEST(CgroupPath, CrioCgroupfsDriver) {
  expect_container("/kubepods/burstable/pod" + s(kUid) + "/crio-" + s(kId), ContainerRuntime::kCrio,
                   kId, kUid);
}

TEST(CgroupPath, CrioConmonIsNotAContainer) {
  CgroupContainer c = parse_cgroup_path(
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod" +
      s(kUidUnderscores) + ".slice/crio-conmon-" + s(kId) + ".scope");
  EXPECT_FALSE(c.is_container());
  EXPECT_EQ(c.pod_uid(), kUid);  // still inside the pod
}

TEST(CgroupPath, PodmanCgroupfsDriver) {
  // Recorded: rootful podman without systemd (cgroupManager cgroupfs).
  expect_container("/libpod_parent/libpod-" + s(kId), ContainerRuntime::kPodman, kId);
}

TEST(CgroupPath, PodmanSystemdDriverRootfulRootlessAndInPod) {
  expect_container("/machine.slice/libpod-" + s(kId) + ".scope", ContainerRuntime::kPodman, kId);
  expect_container(
      "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + s(kId) + ".scope",
      ContainerRuntime::kPodman, kId);
  expect_container(
      "/machine.slice/machine-libpod_pod_" + s(kId2) + ".slice/libpod-" + s(kId) + ".scope",
      ContainerRuntime::kPodman, kId);
}

TEST(CgroupPath, PodmanConmonIsNotAContainer) {
  expect_none("/libpod_parent/conmon");
  expect_none("/machine.slice/libpod-conmon-" + s(kId) + ".scope");
}

TEST(CgroupPath, InnermostContainerWinsWhenNested) {
  expect_container("/docker/" + s(kId2) + "/docker/" + s(kId), ContainerRuntime::kDocker, kId);
  // kind: a node container running a CRI pod.
  expect_container("/docker/" + s(kId2) + "/kubepods/besteffort/pod" + s(kUid) + "/" + s(kId),
                   ContainerRuntime::kContainerd, kId, kUid);
}

TEST(CgroupPath, SubCgroupsInsideAContainerKeepItsId) {
  expect_container("/docker/" + s(kId) + "/init.scope", ContainerRuntime::kDocker, kId);
  expect_container("/system.slice/docker-" + s(kId) + ".scope/system.slice/cron.service",
                   ContainerRuntime::kDocker, kId);
}

TEST(CgroupPath, PodFolderWithoutContainerGivesOnlyThePod) {
  CgroupContainer c = parse_cgroup_path("/kubepods/besteffort/pod" + s(kUid));
  EXPECT_FALSE(c.is_container());
  EXPECT_EQ(c.pod_uid(), kUid);
}

TEST(CgroupPath, HostCgroupsAreNotContainers) {
  expect_none("/");
  expect_none("");
  expect_none("/init.scope");
  expect_none("/user.slice/user-0.slice/session-1.scope");
  expect_none("/system.slice/containerd.service");
  expect_none("/system.slice/docker.service");
  expect_none("/kubepods/besteffort");
  expect_none("/kubepods.slice/kubepods-besteffort.slice");
  // Recorded on the test machine: the memory cgroup its init puts every process in.
  expect_none("/process_api/eb2cae260f9fdbeb82d34a871f0d274a");
}

TEST(CgroupPath, MalformedIdsAreRejected) {
  expect_none("/docker/notahexid");
  expect_none("/docker/" + s(kId.substr(1)));                              // 63 digits
  expect_none("/system.slice/docker-" + s(kId) + "0.scope");               // 65 digits
  expect_none("/system.slice/docker-EEBC" + s(kId.substr(4)) + ".scope");  // upper case
  expect_none("/libpod_parent/libpod-" + s(kId.substr(0, 12)));            // short id
  CgroupContainer c = parse_cgroup_path("/kubepods/besteffort/pod1234/" + s(kId));
  EXPECT_EQ(c.pod_uid(), "");  // not a pod uid: the bare id is then no CRI container either
  EXPECT_FALSE(c.is_container());
}

TEST(CgroupPath, RuntimeNames) {
  EXPECT_EQ(runtime_name(ContainerRuntime::kDocker), "docker");
  EXPECT_EQ(runtime_name(ContainerRuntime::kContainerd), "containerd");
  EXPECT_EQ(runtime_name(ContainerRuntime::kCrio), "cri-o");
  EXPECT_EQ(runtime_name(ContainerRuntime::kPodman), "podman");
  EXPECT_EQ(runtime_name(ContainerRuntime::kNone), "");
}

TEST(ProcCgroup, HybridMachineTenLinesAllNamingTheCriContainer) {
  // Recorded shape of /proc/<pid>/cgroup for a CRI container on the test machine.
  std::string p = "/kubepods/besteffort/pod" + s(kUid) + "/" + s(kId);
  std::string text = "9:name=systemd:" + p + "\n8:pids:" + p + "\n7:blkio:" + p +
                     "\n6:freezer:" + p + "\n5:devices:" + p + "\n4:memory:" + p +
                     "\n3:cpuset:" + p + "\n2:cpuacct:" + p + "\n1:cpu:" + p + "\n0::" + p + "\n";
  std::string_view from;
  CgroupContainer c = parse_proc_cgroup(text, &from);
  EXPECT_EQ(c.runtime, ContainerRuntime::kContainerd);
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.pod_uid(), kUid);
  EXPECT_EQ(from, p);
}

TEST(ProcCgroup, V1OnlyMachineUsesTheHierarchyLines) {
  std::string text = "12:pids:/docker/" + s(kId) + "\n11:memory:/docker/" + s(kId) +
                     "\n1:name=systemd:/docker/" + s(kId) + "\n";
  std::string_view from;
  CgroupContainer c = parse_proc_cgroup(text, &from);
  EXPECT_EQ(c.runtime, ContainerRuntime::kDocker);
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(from, "/docker/" + s(kId));
}

TEST(ProcCgroup, HybridWithTheProcessOnlyInV1Hierarchies) {
  std::string text = "4:memory:/libpod_parent/libpod-" + s(kId) + "\n0::/\n";
  CgroupContainer c = parse_proc_cgroup(text);
  EXPECT_EQ(c.runtime, ContainerRuntime::kPodman);
  EXPECT_EQ(c.id, kId);
}

TEST(ProcCgroup, HostProcessOnTheTestMachine) {
  std::string text =
      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/eb2cae260f9fdbeb82d34a871f0d274a\n0::/\n";
  std::string_view from;
  CgroupContainer c = parse_proc_cgroup(text, &from);
  EXPECT_FALSE(c.is_container());
  EXPECT_EQ(from, "/");
}

TEST(ProcCgroup, MalformedLinesAreSkipped) {
  std::string text = "garbage\n\n7\n0::/docker/" + s(kId);  // no trailing newline
  CgroupContainer c = parse_proc_cgroup(text);
  EXPECT_EQ(c.runtime, ContainerRuntime::kDocker);
}

}  // namespace
}  // namespace needle
