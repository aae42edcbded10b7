// The SDK's ProcessContexts (needle/record.h): a source's `process` objects from templates of
// recurring task contexts, through the core's real host API and events.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "needle/record.h"
#include "test_host.h"

namespace needle {
namespace {

using enrich::test::TestEvent;
using enrich::test::TestHost;

needle_task_ctx task(uint32_t tgid, uint32_t tid, uint32_t uid) {
  needle_task_ctx t{};
  t.tgid = tgid;
  t.pid = tid;
  t.ppid = 1;
  t.uid = uid;
  t.gid = uid;
  t.euid = uid;
  t.cgroup_id = 77;
  t.start_ns = 123'456'789;
  std::strncpy(t.comm, "worker", sizeof t.comm);
  return t;
}

// An event's JSON from `process` on (each test event has its own id).
std::string process_json(const TestEvent& e) {
  std::string j = e.json();
  return j.substr(j.find("\"process\""));
}

std::string direct(const TestHost& th, const needle_task_ctx& t) {
  TestEvent e;
  fill_process(th.api(), e.view(), t);
  return process_json(e);
}

// The same task's events, then another task in the same slot, then the first again: each
// event's process fields are exactly fill_process's; one template lives while the task
// recurs, and none once the contexts go.
TEST(ProcessContexts, RecurringTasksGetTheSameFieldsFromATemplate) {
  TestHost th("file");
  {
    ProcessContexts contexts(th.api(), th.host().raw());
    const needle_task_ctx a = task(4000, 4001, 0);
    const needle_task_ctx b = task(4000, 4001, 1000);   // same thread id: same slot
    for (const needle_task_ctx* t : {&a, &a, &a, &a, &b, &b, &b, &a, &a}) {
      TestEvent e;
      contexts.fill(e.view(), *t);
      EXPECT_EQ(process_json(e), direct(th, *t));
    }
    EXPECT_EQ(th.intake().live(), 1);   // a's template (b's was dropped when a came back)
    // An event that already has process fields keeps them, with these set among them.
    TestEvent e;
    e.view().set("process.exe", "/bin/x");
    contexts.fill(e.view(), a);
    EXPECT_NE(e.json().find(R"("process":{"exe":"/bin/x","pid":4000,"tid":4001)"),
              std::string::npos)
        << e.json();
  }
  EXPECT_EQ(th.intake().live(), 0);
}

// TemplateEvent::find remembers the nodes it found, per template: a template moved keeps them,
// one replaced by another (laid out differently) forgets them.
TEST(TemplateEvent, FindRemembersNodesOfItsOwnEventOnly) {
  TestHost th("file");
  const Field a(th.api(), "a");
  const Field b(th.api(), "b");
  const Field y(th.api(), "y");
  TemplateEvent t(th.api(), th.host().raw());
  ASSERT_TRUE(t);
  t.view().set("a.x", uint64_t{1});
  t.view().set("b.y", "first");
  EXPECT_EQ(t.find(b).get_str(y).value_or(""), "first");
  EXPECT_EQ(t.find(b).node(), t.view().find(b).node());
  TemplateEvent moved = std::move(t);
  EXPECT_EQ(moved.find(b).get_str(y).value_or(""), "first");
  EXPECT_EQ(moved.find(a).node(), moved.view().find(a).node());

  moved = TemplateEvent(th.api(), th.host().raw());   // b first now, and no a
  moved.view().set("b.y", "second");
  EXPECT_EQ(moved.find(b).get_str(y).value_or(""), "second");
  EXPECT_EQ(moved.find(b).node(), moved.view().find(b).node());
  EXPECT_FALSE(moved.find(a).valid());
  moved.reset();
  EXPECT_FALSE(moved);
  EXPECT_EQ(th.intake().live(), 0);
}

// FieldTemplates: a value made from a key gives every event the same fields as making it
// directly, whether the key recurs (template, then shared copies), alternates with another key
// in its slot, or makes nothing; no template outlives the object.
TEST(FieldTemplates, RecurringKeysGiveTheSameFieldsAsMakingThemDirectly) {
  TestHost th("file");
  const Field flags(th.api(), "flags");
  const auto fill_for = [](uint64_t key) {
    return [key](Event obj, const Field& field) {
      if (key == 0) {
        return;   // nothing to set
      }
      Event arr = obj.array(field);
      for (uint64_t bit = 1; bit <= key; bit <<= 1) {
        if ((key & bit) != 0) {
          arr.push("F" + std::to_string(bit));
        }
      }
    };
  };
  const auto direct = [&](uint64_t key) {
    TestEvent e;
    fill_for(key)(e.view().object("file"), flags);
    return e.json().substr(e.json().find("\"file\""));
  };
  {
    FieldTemplates templates(th.api(), th.host().raw());
    // 5 and 5 + (1 << 40) land in different slots or the same: both orders are checked.
    const uint64_t a = 5;
    const uint64_t b = 5 + (uint64_t{1} << 40);
    for (uint64_t key : {a, a, a, a, b, b, a, uint64_t{0}, uint64_t{0}, uint64_t{0}, uint64_t{3},
                         uint64_t{3}, uint64_t{3}}) {
      TestEvent e;
      templates.set(e.view().object("file"), flags, key, fill_for(key));
      EXPECT_EQ(e.json().substr(e.json().find("\"file\"")), direct(key)) << key;
    }
    EXPECT_GE(th.intake().live(), 1);   // 3's template at least
  }
  EXPECT_EQ(th.intake().live(), 0);
}

}  // namespace
}  // namespace needle
