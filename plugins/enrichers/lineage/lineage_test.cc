// enricher/lineage with synthetic process events (the fields the process source emits): parents
// and ancestors of a process chain, context for other sources' events, the exit grace period,
// pid reuse, and a table that stays bounded under a fork storm.
#include "lineage_enricher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "test_host.h"

namespace needle::lineage {
namespace {

using enrich::test::TestEvent;
using enrich::test::TestHost;

std::string entity_of(uint32_t pid, uint32_t gen = 0) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", gen, pid);
  return buf;
}

struct Proc {
  uint32_t pid;
  uint32_t ppid;
  std::string exe;
  std::vector<std::string> args;
  uint32_t gen = 0;
};

void fill(Event ev, const std::string& type, const Proc& p, bool with_exe = true,
          bool with_args = true) {
  ev.set("type", type);
  Event pr = ev.object("process");
  pr.set("pid", p.pid);
  pr.set("tid", p.pid);
  pr.set("ppid", p.ppid);
  pr.set("uid", uint32_t{1000});
  pr.set("comm", p.exe.substr(p.exe.rfind('/') + 1).substr(0, 15));
  pr.set("entity_id", entity_of(p.pid, p.gen));
  if (with_exe && !p.exe.empty()) {
    pr.set("exe", p.exe);
  }
  if (with_args && (type == "process.exec" || type == "process.snapshot")) {
    Event a = pr.array("args");
    for (const std::string& s : p.args) {
      a.push(s);
    }
  }
}

std::string feed(LineageEnricher& en, const std::string& type, const Proc& p,
                 bool with_exe = true) {
  TestEvent t;
  fill(t.view(), type, p, with_exe);
  Event ev = t.view();
  uint64_t deadline = 0;
  EXPECT_EQ(en.enrich(ev, deadline), NEEDLE_OK);
  return t.json();
}

LineageOptions opts(uint32_t depth = 8) {
  LineageOptions o;
  o.depth = depth;
  return o;
}

// init -> bash -> sh -c -> true, each seen the way the process source reports it.
// A file.open of `pid` as the file source gives it, enriched; its JSON.
std::string file_open_json(LineageEnricher& en, uint32_t pid) {
  TestEvent t;
  Event ev = t.view();
  ev.set("type", "file.open");
  ev.set("process.pid", pid);
  ev.set("process.entity_id", entity_of(pid));
  uint64_t d = 0;
  EXPECT_EQ(en.enrich(ev, d), NEEDLE_OK);
  return t.json();
}

// The ancestors of a child of 200 in chain() below.
constexpr std::string_view kChainAncestors =
    R"("ancestors":[{"pid":200,"exe":"/bin/sh"},{"pid":100,"exe":"/bin/bash"},)"
    R"({"pid":1,"exe":"/sbin/init"}])";

void chain(LineageEnricher& en) {
  feed(en, "process.snapshot", {1, 0, "/sbin/init", {"/sbin/init"}});
  feed(en, "process.snapshot", {100, 1, "/bin/bash", {"-bash"}});
  feed(en, "process.fork", {200, 100, "/bin/bash", {}});
  feed(en, "process.exec", {200, 100, "/bin/sh", {"sh", "-c", "true"}});
  feed(en, "process.fork", {300, 200, "/bin/sh", {}});
}

TEST(Lineage, ThreeDeepChainGivesParentAndAncestors) {
  TestHost th("lineage");
  LineageEnricher en(th.host(), opts());
  chain(en);
  std::string j = feed(en, "process.exec", {300, 200, "/bin/true", {"true"}});
  EXPECT_NE(j.find("\"parent\":{\"pid\":200,\"exe\":\"/bin/sh\",\"args\":[\"sh\",\"-c\",\"true\"],"
                   "\"uid\":1000,\"comm\":\"sh\",\"entity_id\":\"" +
                   entity_of(200) + "\"}"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find(kChainAncestors), std::string::npos) << j;
  EXPECT_EQ(th.counter("unknown_parent"), 0u);
}

TEST(Lineage, DepthBoundsTheAncestorList) {
  TestHost th("lineage");
  LineageEnricher en(th.host(), opts(2));
  chain(en);
  std::string j = feed(en, "process.exec", {300, 200, "/bin/true", {"true"}});
  EXPECT_NE(j.find("\"ancestors\":[{\"pid\":200,\"exe\":\"/bin/sh\"},{\"pid\":100,\"exe\":"
                   "\"/bin/bash\"}]"),
            std::string::npos)
      << j;
}

TEST(Lineage, DepthZeroOmitsAncestorsButKeepsParent) {
  TestHost th("lineage");
  LineageEnricher en(th.host(), opts(0));
  chain(en);
  std::string j = feed(en, "process.exec", {300, 200, "/bin/true", {"true"}});
  EXPECT_EQ(j.find("ancestors"), std::string::npos) << j;
  EXPECT_NE(j.find("\"parent\":{\"pid\":200"), std::string::npos) << j;
}

TEST(Lineage, UnknownParentIsListedByPidAndCounted) {
  TestHost th("lineage");
  LineageEnricher en(th.host(), opts());
  std::string j = feed(en, "process.exec", {400, 399, "/bin/true", {"true"}});
  EXPECT_NE(j.find("\"parent\":{\"pid\":399}"), std::string::npos) << j;
  EXPECT_NE(j.find("\"ancestors\":[{\"pid\":399}]"), std::string::npos) << j;
  EXPECT_EQ(th.counter("unknown_parent"), 1u);
}

TEST(Lineage, OtherSourcesEventsGetProcessContext) {
  TestHost th("lineage");
  LineageEnricher en(th.host(), opts());
  chain(en);
  feed(en, "process.exec", {300, 200, "/usr/bin/curl", {"curl", "-s", "http://x"}});
  TestEvent t;
  Event ev = t.view();
  ev.set("type", "net.connect");
  ev.set("process.pid", uint32_t{300});
  ev.set("process.entity_id", entity_of(300));
  uint64_t d = 0;
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_OK);
  std::string j = t.json();
  EXPECT_NE(
      j.find("\"exe\":\"/usr/bin/curl\",\"args\":[\"curl\",\"-s\",\"http://x\"],\"ppid\":200"),
      std::string::npos)
      << j;
  EXPECT_NE(j.find("\"parent\":{\"pid\":200,\"exe\":\"/bin/sh\""), std::string::npos) << j;
}

// Events of a known process after the first get parent and ancestors copied from a template:
// they must equal what the table gives, change as soon as the table does (the parent execs,
// exits and goes, a new process appears), and every template goes back to the host.
TEST(Lineage, CopiedLineageFollowsEveryChangeOfTheTable) {
  TestHost th("lineage");
  {
    LineageEnricher en(th.host(), opts());
    chain(en);
    feed(en, "process.exec", {300, 200, "/usr/bin/curl", {"curl"}});
    auto other = [&](uint32_t pid) {
      std::string j = file_open_json(en, pid);
      return j.substr(j.find("\"parent\""));
    };
    const std::string first = other(300);
    EXPECT_NE(first.find("\"parent\":{\"pid\":200,\"exe\":\"/bin/sh\",\"args\":[\"sh\",\"-c\","
                         "\"true\"]"),
              std::string::npos)
        << first;
    EXPECT_NE(first.find(kChainAncestors), std::string::npos) << first;
    EXPECT_EQ(other(300), first);   // from the template, identical
    EXPECT_EQ(other(300), first);
    // The parent execs another program: the next event shows it.
    feed(en, "process.exec", {200, 100, "/usr/bin/python3", {"python3", "x.py"}});
    const std::string after_exec = other(300);
    EXPECT_NE(after_exec.find("\"parent\":{\"pid\":200,\"exe\":\"/usr/bin/python3\",\"args\":"
                              "[\"python3\",\"x.py\"]"),
              std::string::npos)
        << after_exec;
    EXPECT_NE(after_exec.find("{\"pid\":200,\"exe\":\"/usr/bin/python3\"}"), std::string::npos)
        << after_exec;
    // A grandparent's change reaches the ancestors too.
    feed(en, "process.exec", {100, 1, "/bin/zsh", {"zsh"}});
    EXPECT_NE(other(300).find("{\"pid\":100,\"exe\":\"/bin/zsh\"}"), std::string::npos);
    EXPECT_EQ(th.counter("unknown_parent"), 0u);
    // An unknown parent is counted on every event, copied or not.
    feed(en, "process.exec", {400, 399, "/bin/x", {"x"}});
    other(400);
    other(400);
    EXPECT_EQ(th.counter("unknown_parent"), 3u);   // the exec and both copies
  }
  EXPECT_EQ(th.intake().live(), 0);   // every template discarded
}

// Other processes' execs, forks and exits change the table but not what a template was built
// from: it is kept (no new template event), and what it gives stays right; a change to the
// parent still shows at once.
TEST(Lineage, TemplatesOutliveUnrelatedChurn) {
  TestHost th("lineage");
  {
    LineageEnricher en(th.host(), opts());
    chain(en);
    feed(en, "process.exec", {300, 200, "/usr/bin/curl", {"curl"}});
    auto context = [&](uint32_t pid) {   // the event from `process` on (ids differ)
      std::string j = file_open_json(en, pid);
      return j.substr(j.find("\"process\""));
    };
    const std::string first = context(300);
    context(300);   // templates built (parent, args)
    context(300);
    const int64_t built = th.intake().acquired();
    for (uint32_t i = 0; i < 20; ++i) {
      feed(en, "process.fork", {600 + i, 1, "/bin/true", {"true"}});
      feed(en, "process.exec", {600 + i, 1, "/bin/true", {"true"}});
      feed(en, "process.exit", {600 + i, 1, "/bin/true", {"true"}});
      EXPECT_EQ(context(300), first);
    }
    EXPECT_EQ(th.intake().acquired(), built);   // no template rebuilt
    feed(en, "process.exec", {200, 100, "/usr/bin/python3", {"python3"}});
    EXPECT_NE(file_open_json(en, 300).find("\"parent\":{\"pid\":200,\"exe\":\"/usr/bin/python3\""),
              std::string::npos);
  }
  EXPECT_EQ(th.intake().live(), 0);
}

// A process's own args on its other events come from a per-process template once it is warm,
// and follow its next exec.
TEST(Lineage, CopiedArgsFollowTheProcessesExec) {
  TestHost th("lineage");
  {
    LineageEnricher en(th.host(), opts());
    chain(en);
    feed(en, "process.exec", {300, 200, "/usr/bin/curl", {"curl", "-s", "x"}});
    auto args_of = [&](uint32_t pid) {
      std::string j = file_open_json(en, pid);
      size_t at = j.find("\"args\":");
      return at == std::string::npos ? std::string() : j.substr(at, j.find(']', at) - at + 1);
    };
    for (int i = 0; i < 4; ++i) {   // set, template built, copied, shared
      EXPECT_EQ(args_of(300), R"("args":["curl","-s","x"])") << i;
    }
    feed(en, "process.exec", {300, 200, "/usr/bin/wget", {"wget", "y"}});
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(args_of(300), R"("args":["wget","y"])") << i;
    }
  }
  EXPECT_EQ(th.intake().live(), 0);   // every template discarded
}

TEST(Lineage, ContextNeverOverwritesWhatTheSourceSet) {
  TestHost th("lineage");
  LineageEnricher en(th.host(), opts());
  chain(en);
  TestEvent t;
  Event ev = t.view();
  ev.set("type", "file.open");
  ev.set("process.pid", uint32_t{200});
  ev.set("process.exe", "/from/the/source");
  uint64_t d = 0;
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("process.exe").value_or(""), "/from/the/source");
}

// From a process's second event on, exe, args and ppid come merged from a template: on every
// event the source's own fields stay, the rest is the table's, and truncated args are marked.
TEST(Lineage, MergedContextKeepsTheSourcesFieldsOnEveryEvent) {
  TestHost th("lineage");
  LineageOptions o = opts();
  o.limits.max_arg_bytes = 8;
  LineageEnricher en(th.host(), o);
  chain(en);
  feed(en, "process.exec", {300, 200, "/usr/bin/curl", {"curl", "-s"}});
  feed(en, "process.exec", {500, 200, "/bin/echo", {"echo", "0123456789"}});
  const auto event = [&](uint32_t pid, bool own_exe) {
    TestEvent t;
    Event ev = t.view();
    ev.set("type", "file.open");
    ev.set("process.pid", pid);
    ev.set("process.entity_id", entity_of(pid));
    if (own_exe) {
      ev.set("process.exe", "/from/the/source");
      ev.set("process.ppid", uint32_t{7});
    }
    uint64_t d = 0;
    EXPECT_EQ(en.enrich(ev, d), NEEDLE_OK);
    std::string j = t.json();
    return j.substr(j.find("\"process\""));
  };
  for (int i = 0; i < 5; ++i) {   // set, template built, merged, then shared
    std::string own = event(300, true);
    EXPECT_EQ(own.rfind(R"("process":{"pid":300,"entity_id":")" + entity_of(300) +
                            R"(","exe":"/from/the/source","ppid":7,"args":["curl","-s"]},)",
                        0),
              0u)
        << i << own;
    std::string plain = event(300, false);
    EXPECT_NE(plain.find(R"("exe":"/usr/bin/curl","args":["curl","-s"],"ppid":200})"),
              std::string::npos)
        << i << plain;
    std::string cut = event(500, false);
    EXPECT_NE(cut.find(R"("exe":"/bin/echo","args":["echo","012"],"ppid":200})"),
              std::string::npos)
        << i << cut;
    EXPECT_NE(cut.find(R"("truncated":["process.args",)"), std::string::npos) << i << cut;
  }
}

TEST(Lineage, ForkedChildInheritsItsParentsProgramAndArguments) {
  TestHost th("lineage");
  LineageEnricher en(th.host(), opts());
  chain(en);
  // A file event of the child between its fork and its exec.
  TestEvent t;
  Event ev = t.view();
  ev.set("type", "file.open");
  ev.set("process.pid", uint32_t{300});
  ev.set("process.entity_id", entity_of(300));
  uint64_t d = 0;
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_OK);
  std::string j = t.json();
  EXPECT_NE(j.find("\"exe\":\"/bin/sh\",\"args\":[\"sh\",\"-c\",\"true\"]"), std::string::npos)
      << j;
}

TEST(Lineage, ExitedParentResolvesDuringGraceThenGoes) {
  TestHost th("lineage");
  LineageOptions o = opts();
  o.limits.exit_grace_ns = 50'000'000;  // 50 ms
  LineageEnricher en(th.host(), o);
  chain(en);
  feed(en, "process.exec", {300, 200, "/bin/true", {"true"}});
  feed(en, "process.exit", {200, 100, "", {}});
  std::string late = feed(en, "process.exit", {300, 200, "", {}});
  EXPECT_NE(late.find("\"parent\":{\"pid\":200,\"exe\":\"/bin/sh\""), std::string::npos) << late;
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  std::string later = feed(en, "process.exec", {301, 200, "/bin/true", {"true"}});
  EXPECT_NE(later.find("\"parent\":{\"pid\":200}"), std::string::npos) << later;
  EXPECT_GE(th.counter("expired"), 2u);
}

TEST(Lineage, ReusedPidReplacesTheOldProcess) {
  TestHost th("lineage");
  LineageEnricher en(th.host(), opts());
  chain(en);
  feed(en, "process.exec", {300, 200, "/bin/old", {"old", "arg"}});
  // pid 300 is reused by a process whose fork needle missed: its exec has another entity id.
  Proc reused{300, 100, "/bin/new", {"new"}, 7};
  std::string j = feed(en, "process.exec", reused);
  EXPECT_NE(j.find("\"parent\":{\"pid\":100,\"exe\":\"/bin/bash\""), std::string::npos) << j;
  TestEvent t;
  Event ev = t.view();
  ev.set("type", "file.open");
  ev.set("process.pid", uint32_t{300});
  ev.set("process.entity_id", entity_of(300, 7));
  uint64_t d = 0;
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("process.exe").value_or(""), "/bin/new");
}

TEST(Lineage, ArgumentsAreBoundedAndMarkedTruncated) {
  TestHost th("lineage");
  LineageOptions o = opts();
  o.limits.max_arg_bytes = 8;
  LineageEnricher en(th.host(), o);
  feed(en, "process.exec", {500, 1, "/bin/echo", {"echo", "0123456789", "more"}});
  std::string j = feed(en, "process.fork", {501, 500, "/bin/echo", {}});
  EXPECT_NE(j.find("\"parent\":{\"pid\":500,\"exe\":\"/bin/echo\",\"args\":[\"echo\",\"012\"]"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"truncated\":[\"parent.args\"]"), std::string::npos) << j;
}

TEST(Lineage, ForkStormStaysWithinMaxProcessesAndCountsEvictions) {
  TestHost th("lineage");
  LineageOptions o = opts();
  o.limits.max_processes = 1024;
  LineageEnricher en(th.host(), o);
  feed(en, "process.exec", {1, 0, "/sbin/init", {"init"}});
  for (uint32_t i = 0; i < 5000; ++i) {
    feed(en, "process.fork", {10000 + i, 1, "/sbin/init", {}});
  }
  EXPECT_EQ(en.table().size(), 1024u);
  EXPECT_EQ(th.counter("evictions"), 5001u - 1024u);
  // The parent is used by every fork, so it is the most recently used and never evicted.
  std::string j = feed(en, "process.fork", {20000, 1, "/sbin/init", {}});
  EXPECT_NE(j.find("\"parent\":{\"pid\":1,\"exe\":\"/sbin/init\""), std::string::npos) << j;
}

TEST(ProcessTable, IndexStaysConsistentUnderRandomInsertAndRemove) {
  TableLimits l;
  l.max_processes = 4096;
  l.exit_grace_ns = 0;
  ProcessTable t(l);
  std::unordered_map<uint32_t, bool> model;
  std::mt19937 rng(42);
  for (int i = 0; i < 200000; ++i) {
    uint32_t pid = rng() % 3000 + 1;
    if (rng() % 3 == 0) {
      t.exited(pid, 1);
      t.expire(2);
      model.erase(pid);
    } else {
      bool ev = false;
      t.upsert(pid, ev).ppid = pid + 1;
      ASSERT_FALSE(ev);
      model[pid] = true;
    }
  }
  for (uint32_t pid = 1; pid <= 3000; ++pid) {
    ProcessInfo* p = t.find(pid, false);
    ASSERT_EQ(p != nullptr, model.count(pid) == 1) << pid;
    if (p != nullptr) {
      EXPECT_EQ(p->ppid, pid + 1);
    }
  }
  EXPECT_EQ(t.size(), model.size());
}

}  // namespace
}  // namespace needle::lineage
