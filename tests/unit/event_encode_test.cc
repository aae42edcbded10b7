// The event tree and its two encodings: nesting by dotted path, replacement in place, marks,
// invalid UTF-8 replaced and listed under `lossy`, and msgpack carrying the same map as JSON.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <msgpack.hpp>

#include "clock.h"
#include "encode.h"
#include "event.h"
#include "host.h"
#include "needle/event.h"

namespace needle::core {
namespace {

std::string json(const Event& ev) {
  std::string out;
  encode_json(ev, out);
  return out;
}

TEST(Event, DottedPathsNestAndKeepInsertionOrder) {
  Event ev;
  ev.set_str(NEEDLE_ROOT, "type", "process.exec");
  ev.set_uint(NEEDLE_ROOT, "process.pid", 42);
  ev.set_str(NEEDLE_ROOT, "process.comm", "sh");
  ev.set_str(NEEDLE_ROOT, "host.name", "h1");
  EXPECT_EQ(json(ev),
            R"({"type":"process.exec","process":{"pid":42,"comm":"sh"},"host":{"name":"h1"}})");
}

TEST(Event, SettingAFieldAgainReplacesItInPlace) {
  Event ev;
  ev.set_str(NEEDLE_ROOT, "type", "");
  ev.set_str(NEEDLE_ROOT, "source", "s");
  ev.set_str(NEEDLE_ROOT, "type", "x.y");
  EXPECT_EQ(json(ev), R"({"type":"x.y","source":"s"})");
}

// Writes by field take a short path when the name is new to an object of the event's own (its
// bit is not in the object's filter of its children's names). Past 32 names the bits repeat:
// a name whose bit a sibling already set goes the general way, and is still found, replaced
// in place, or added once.
TEST(Event, FieldWritesPastThirtyTwoNamesReplaceAndAddOnce) {
  Event ev;
  std::vector<const Field*> fields;
  for (int i = 0; i < 40; ++i) {
    fields.push_back(make_field("fresh_name_" + std::to_string(i)));
    ASSERT_NE(fields.back(), nullptr);
  }
  const Field* obj = make_field("fresh_obj");
  const Field* arr = make_field("fresh_arr");
  std::string want = "{";
  for (int i = 0; i < 40; ++i) {
    ev.set_uint(NEEDLE_ROOT, *fields[i], static_cast<uint64_t>(i));
    want += (i ? ",\"fresh_name_" : "\"fresh_name_") + std::to_string(i) + "\":" +
            std::to_string(i == 35 ? 7 : i == 36 ? -2 : i);
  }
  ev.set_uint(NEEDLE_ROOT, *fields[35], 7);   // again: replaced where it is
  ev.set_int(NEEDLE_ROOT, *fields[36], -2);   // again, as another type
  const needle_node o = ev.object(NEEDLE_ROOT, *obj);
  EXPECT_EQ(ev.object(NEEDLE_ROOT, *obj), o);   // found, not made twice
  ev.set_str(o, *fields[3], "a");
  ev.set_bool(o, *fields[35], true);   // the same bit as fields[3] when the names are 32 apart
  ev.set_str(o, *fields[3], "b");
  const needle_node a = ev.array(NEEDLE_ROOT, *arr);
  EXPECT_EQ(ev.array(NEEDLE_ROOT, *arr), a);
  ev.push_str(a, "x");
  want += R"(,"fresh_obj":{"fresh_name_3":"b","fresh_name_35":true},"fresh_arr":["x"]})";
  EXPECT_EQ(json(ev), want);
}

TEST(Event, ArraysOfStringsAndObjects) {
  Event ev;
  needle_node args = ev.array(NEEDLE_ROOT, "process.args");
  ev.push_str(args, "ls");
  ev.push_str(args, "-l");
  needle_node anc = ev.array(NEEDLE_ROOT, "ancestors");
  needle_node a = ev.push_object(anc);
  ev.set_uint(a, "pid", 1);
  ev.set_str(a, "exe", "/sbin/init");
  EXPECT_EQ(json(ev),
            R"({"process":{"args":["ls","-l"]},"ancestors":[{"pid":1,"exe":"/sbin/init"}]})");
  EXPECT_EQ(ev.size(args), 2u);
}

TEST(Event, FindGetAndRemove) {
  Event ev;
  ev.set_int(NEEDLE_ROOT, "process.exit_code", 3);
  ev.set_bool(NEEDLE_ROOT, "process.fileless", true);
  int64_t code = 0;
  ASSERT_TRUE(ev.get_int(ev.find(NEEDLE_ROOT, "process.exit_code"), code));
  EXPECT_EQ(code, 3);
  EXPECT_EQ(ev.find(NEEDLE_ROOT, "process.nothing"), Event::kNone);
  ev.remove(ev.find(NEEDLE_ROOT, "process.fileless"));
  EXPECT_EQ(json(ev), R"({"process":{"exit_code":3}})");
}

TEST(Event, JsonEscapesControlCharactersQuotesAndBackslashes) {
  Event ev;
  ev.set_str(NEEDLE_ROOT, "s", std::string_view("a\"b\\c\n\x01\t", 8));
  EXPECT_EQ(json(ev), R"({"s":"a\"b\\c\n\u0001\t"})");
}

// The encoder skips plain bytes eight at a time: every byte value at every offset of a string
// longer than a few words must come out as the byte-by-byte rule says.
std::string reference_json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// Every length up to three words (short strings go out as one padded word, a plain tail as
// an overlapping one), every byte at every offset, alone and after an escaped byte; in an
// event's encoding too (ASCII there: other bytes are checked as UTF-8 first).
TEST(Event, JsonEscapingMatchesTheByteRuleForEveryByteAtEveryOffset) {
  for (size_t len = 1; len <= 24; ++len) {
    for (int byte = 0; byte < 256; ++byte) {
      for (size_t at = 0; at < len; ++at) {
        for (bool earlier_escape : {false, true}) {
          std::string s(len, 'x');
          if (earlier_escape && at > 0) {
            s[0] = '"';
          }
          s[at] = static_cast<char>(byte);
          std::string out;
          json_string(s, out);
          ASSERT_EQ(out, reference_json_string(s)) << "len " << len << " byte " << byte
                                                   << " at " << at;
          if (byte < 0x80) {
            Event ev;
            ev.set_str(NEEDLE_ROOT, "k", s);
            ASSERT_EQ(json(ev), "{\"k\":" + reference_json_string(s) + "}") << len << " " << at;
          }
        }
      }
    }
  }
  std::string out;
  json_string("", out);
  EXPECT_EQ(out, "\"\"");
}

TEST(Event, Utf8CheckFindsABadByteAtEveryOffsetAndKeepsGoodSequencesAcrossWords) {
  for (size_t at = 0; at < 24; ++at) {
    std::string bad(24, 'a');
    bad[at] = '\xff';
    EXPECT_FALSE(valid_utf8(bad)) << at;
    std::string good(24, 'a');
    good.replace(std::min<size_t>(at, 21), 3, "\xe2\x82\xac");   // U+20AC, maybe across words
    EXPECT_TRUE(valid_utf8(good)) << at;
  }
}

TEST(Event, KeysThatShareLengthAndSampledBytesStayDistinct) {
  // Same length, first, middle and last byte: only the full comparison tells them apart.
  Event ev;
  ev.set_str(NEEDLE_ROOT, "axbyc", "1");
  ev.set_str(NEEDLE_ROOT, "azbwc", "2");
  ev.set_str(NEEDLE_ROOT, "o.axbyc", "3");
  ev.set_str(NEEDLE_ROOT, "o.azbwc", "4");
  EXPECT_EQ(json(ev), R"({"axbyc":"1","azbwc":"2","o":{"axbyc":"3","azbwc":"4"}})");
  std::string_view v;
  ASSERT_TRUE(ev.get_str(ev.find(NEEDLE_ROOT, "o.azbwc"), v));
  EXPECT_EQ(v, "4");
}

TEST(Event, InvalidUtf8IsReplacedAndMarkedLossy) {
  Event ev;
  ev.set_str(NEEDLE_ROOT, "process.exe", std::string_view("/tmp/\xff\xfe", 7));
  needle_node args = ev.array(NEEDLE_ROOT, "process.args");
  ev.push_str(args, std::string_view("ok", 2));
  ev.push_str(args, std::string_view("\xc3", 1));   // truncated sequence
  EXPECT_EQ(json(ev),
            "{\"process\":{\"exe\":\"/tmp/\xef\xbf\xbd\xef\xbf\xbd\",\"args\":[\"ok\","
            "\"\xef\xbf\xbd\"]},\"lossy\":[\"process.exe\",\"process.args\"]}");
}

TEST(Event, ValidMultibyteUtf8IsKept) {
  Event ev;
  ev.set_str(NEEDLE_ROOT, "s", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
  EXPECT_EQ(ev.find(NEEDLE_ROOT, "lossy"), Event::kNone);
}

TEST(Event, MarksAreListedOnce) {
  Event ev;
  ev.mark(NEEDLE_MARK_TRUNCATED, "process.args");
  ev.mark(NEEDLE_MARK_TRUNCATED, "process.args");
  ev.mark(NEEDLE_MARK_INCOMPLETE, "container.image");
  EXPECT_EQ(json(ev), R"({"truncated":["process.args"],"incomplete":["container.image"]})");
}

TEST(Event, ClearKeepsNothing) {
  Event ev;
  ev.set_str(NEEDLE_ROOT, "a", "b");
  ev.clear();
  EXPECT_EQ(json(ev), "{}");
}

TEST(Encode, MsgpackCarriesTheSameMap) {
  Event ev;
  ev.set_str(NEEDLE_ROOT, "type", "process.exit");
  ev.set_uint(NEEDLE_ROOT, "process.pid", 7);
  ev.set_int(NEEDLE_ROOT, "process.exit_code", -1);
  ev.set_bool(NEEDLE_ROOT, "process.fileless", false);
  needle_node args = ev.array(NEEDLE_ROOT, "process.args");
  ev.push_str(args, "x");
  std::string mp;
  encode_msgpack(ev, mp);
  msgpack::object_handle oh = msgpack::unpack(mp.data(), mp.size());
  auto root = oh.get().as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(root.at("type").as<std::string>(), "process.exit");
  auto proc = root.at("process").as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(proc.at("pid").as<uint64_t>(), 7u);
  EXPECT_EQ(proc.at("exit_code").as<int64_t>(), -1);
  EXPECT_FALSE(proc.at("fileless").as<bool>());
  EXPECT_EQ(proc.at("args").as<std::vector<std::string>>(), std::vector<std::string>{"x"});
}

TEST(Encode, MsgpackSkipsRemovedFields) {
  Event ev;
  ev.set_str(NEEDLE_ROOT, "a", "1");
  ev.set_str(NEEDLE_ROOT, "b", "2");
  ev.remove(ev.find(NEEDLE_ROOT, "a"));
  std::string mp;
  encode_msgpack(ev, mp);
  auto root = msgpack::unpack(mp.data(), mp.size()).get().as<std::map<std::string, std::string>>();
  EXPECT_EQ(root.size(), 1u);
  EXPECT_EQ(root.at("b"), "2");
}


// A large object (300 named fields): every field is found and replaced in place, in insertion
// order, and a cleared event keeps none of them.
TEST(Event, ManyFieldsAreFoundAndReplacedPastTheIndex) {
  Event ev;
  for (int i = 0; i < 300; ++i) {
    ev.set_int(NEEDLE_ROOT, "o.f" + std::to_string(i), i);
  }
  for (int i = 0; i < 300; i += 7) {
    ev.set_int(NEEDLE_ROOT, "o.f" + std::to_string(i), -i);
  }
  needle_node o = ev.find(NEEDLE_ROOT, "o");
  ASSERT_EQ(ev.size(o), 300u);
  for (int i = 0; i < 300; ++i) {
    int64_t v = 0;
    ASSERT_TRUE(ev.get_int(ev.find(o, "f" + std::to_string(i)), v)) << i;
    EXPECT_EQ(v, i % 7 == 0 ? -i : i);
    EXPECT_EQ(ev.child(o, static_cast<size_t>(i)), ev.find(o, "f" + std::to_string(i)));
  }
  ev.clear();
  EXPECT_EQ(ev.find(NEEDLE_ROOT, "o"), Event::kNone);
  ev.set_int(NEEDLE_ROOT, "o.f1", 5);
  EXPECT_EQ(json(ev), R"({"o":{"f1":5}})");
}

// Fields removed, or dropped when their object became a scalar, are never found again; setting
// them again makes new ones.
TEST(Event, RemovedAndOrphanedFieldsAreGone) {
  Event ev;
  ev.set_str(NEEDLE_ROOT, "a.b", "1");
  ev.set_str(NEEDLE_ROOT, "a", "scalar");
  EXPECT_EQ(ev.find(NEEDLE_ROOT, "a.b"), Event::kNone);
  ev.set_str(NEEDLE_ROOT, "a.b", "2");
  EXPECT_EQ(json(ev), R"({"a":{"b":"2"}})");
  ev.remove(ev.find(NEEDLE_ROOT, "a.b"));
  EXPECT_EQ(ev.find(NEEDLE_ROOT, "a.b"), Event::kNone);
  ev.set_str(NEEDLE_ROOT, "a.b", "3");
  EXPECT_EQ(json(ev), R"({"a":{"b":"3"}})");
}

// Names are cached per thread by their address; a buffer reused for other bytes of the same
// length must still get the other name's key, and an event built through it the other field.
TEST(Keys, AReusedBufferGetsTheKeyOfItsNewBytes) {
  char buf[] = "alpha1";
  const Key* a = intern_key(std::string_view(buf, 6));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(intern_key(std::string_view(buf, 6)), a);   // cached
  std::memcpy(buf, "omega2", 6);
  EXPECT_EQ(find_key(std::string_view(buf, 6)), nullptr);   // never interned
  const Key* o = intern_key(std::string_view(buf, 6));
  ASSERT_NE(o, nullptr);
  EXPECT_NE(o, a);
  EXPECT_EQ(o->name, "omega2");
  Event ev;
  ev.set_str(NEEDLE_ROOT, std::string_view(buf, 6), "x");
  std::memcpy(buf, "alpha1", 6);
  ev.set_str(NEEDLE_ROOT, std::string_view(buf, 6), "y");
  EXPECT_EQ(json(ev), R"({"omega2":"x","alpha1":"y"})");
}

// Fields resolved once act exactly as their paths: nesting, replacing, finding, and a field with
// a name too long to intern falls back to its path.
TEST(Fields, ActAsTheirPaths) {
  const Field* pid = make_field("process.pid");
  ASSERT_NE(pid, nullptr);
  EXPECT_EQ(make_field("process.pid"), pid);
  EXPECT_EQ(pid->parts.size(), 2u);
  EXPECT_EQ(make_field(""), nullptr);
  const std::string long_name(kMaxInternedKey + 1, 'z');
  const Field* odd = make_field("o." + long_name);
  ASSERT_NE(odd, nullptr);
  EXPECT_TRUE(odd->parts.empty());

  Event by_field;
  by_field.set_str(NEEDLE_ROOT, *make_field("type"), "process.exec");
  by_field.set_uint(NEEDLE_ROOT, *pid, 42);
  by_field.set_int(NEEDLE_ROOT, *make_field("process.exit_code"), -1);
  by_field.set_bool(NEEDLE_ROOT, *make_field("process.fileless"), true);
  by_field.set_str(NEEDLE_ROOT, *odd, "v");
  needle_node proc = by_field.object(NEEDLE_ROOT, *make_field("process"));
  by_field.set_uint(proc, *make_field("pid"), 43);   // replaces, relative to `process`
  needle_node args = by_field.array(proc, *make_field("args"));
  by_field.push_str(args, "sh");

  Event by_path;
  by_path.set_str(NEEDLE_ROOT, "type", "process.exec");
  by_path.set_uint(NEEDLE_ROOT, "process.pid", 42);
  by_path.set_int(NEEDLE_ROOT, "process.exit_code", -1);
  by_path.set_bool(NEEDLE_ROOT, "process.fileless", true);
  by_path.set_str(NEEDLE_ROOT, "o." + long_name, "v");
  by_path.set_uint(NEEDLE_ROOT, "process.pid", 43);
  by_path.push_str(by_path.array(NEEDLE_ROOT, "process.args"), "sh");

  EXPECT_EQ(json(by_field), json(by_path));
  uint64_t v = 0;
  ASSERT_TRUE(by_field.get_uint(by_field.find(NEEDLE_ROOT, *pid), v));
  EXPECT_EQ(v, 43u);
  EXPECT_EQ(by_field.find(NEEDLE_ROOT, *odd), by_field.find(NEEDLE_ROOT, "o." + long_name));
  EXPECT_EQ(by_field.find(NEEDLE_ROOT, *make_field("process.nothing")), Event::kNone);
  EXPECT_EQ(by_field.find(NEEDLE_ROOT, *make_field("type.below")), Event::kNone);   // a string
  // Invalid UTF-8 set by field is replaced and listed under `lossy`, as by path.
  by_field.set_str(proc, *make_field("comm"), std::string_view("a\xff", 2));
  std::string out = json(by_field);
  EXPECT_NE(out.find(R"("lossy":["process.comm"])"), std::string::npos) << out;
}

// The same through the C ABI and the SDK's Field; a NULL handle (what ev_field gives for an
// empty path) sets and finds nothing.
TEST(Fields, ThroughTheAbiAndTheSdk) {
  Event ev;
  const needle_host_api* api = host_api();
  const ::needle::Field pid(api, "process.pid");
  ::needle::Event view(api, as_abi(&ev));
  view.set(pid, uint32_t{7});
  EXPECT_EQ(view.get_uint(pid), 7u);
  EXPECT_EQ(view.find(::needle::Field(api, "process")).get_uint("pid"), 7u);
  EXPECT_EQ(api->ev_field("", 0), nullptr);
  api->ev_set_str_f(as_abi(&ev), NEEDLE_ROOT, nullptr, "x", 1);
  EXPECT_EQ(api->ev_object_f(as_abi(&ev), NEEDLE_ROOT, nullptr), NEEDLE_NO_NODE);
  EXPECT_EQ(api->ev_find_f(as_abi(&ev), NEEDLE_ROOT, nullptr), NEEDLE_NO_NODE);
  // An SDK Field the host refused falls back to its path.
  const ::needle::Field empty(api, "");
  EXPECT_EQ(empty.raw(), nullptr);
  EXPECT_EQ(json(ev), R"({"process":{"pid":7}})");
  // 1.3: one-call reads and merge, through the table and the SDK.
  const ::needle::Field comm(api, "process.comm");
  EXPECT_EQ(view.get_str(comm), std::nullopt);
  view.set(comm, "sh");
  EXPECT_EQ(view.get_str(comm), "sh");
  EXPECT_EQ(view.get_int(pid), 7);
  EXPECT_EQ(view.get_uint(comm), std::nullopt);
  EXPECT_EQ(view.get_str(empty), std::nullopt);   // refused: by its (empty) path
  uint64_t v = 0;
  EXPECT_EQ(api->ev_get_uint_f(as_abi(&ev), NEEDLE_ROOT, nullptr, &v), NEEDLE_INVALID);
  Event tmpl;
  ::needle::Event t(api, as_abi(&tmpl));
  t.set(pid, uint32_t{1});
  t.set("process.exe", "/bin/sh");
  const ::needle::Field process(api, "process");
  EXPECT_TRUE(view.merge(process, t.find(process)).valid());
  EXPECT_FALSE(view.merge(empty, t.find(process)).valid());
  EXPECT_EQ(api->ev_merge_f(as_abi(&ev), NEEDLE_ROOT, process.raw(), nullptr, NEEDLE_ROOT),
            NEEDLE_NO_NODE);
  EXPECT_EQ(json(ev), R"({"process":{"pid":7,"comm":"sh","exe":"/bin/sh"}})");
}

// A subtree copied from another event: objects, arrays of objects and scalars of every type,
// keys interned or not; the copy replaces what the field held; copying from itself is refused.
TEST(Fields, CopyTakesAWholeSubtreeFromAnotherEvent) {
  const std::string long_key(kMaxInternedKey + 3, 'q');
  Event src;
  src.set_uint(NEEDLE_ROOT, "parent.pid", 7);
  src.set_str(NEEDLE_ROOT, "parent.exe", "/bin/sh");
  src.set_int(NEEDLE_ROOT, "parent.delta", -2);
  src.set_bool(NEEDLE_ROOT, "parent.ok", true);
  src.set_double(NEEDLE_ROOT, "parent.ratio", 0.5);
  src.set_str(NEEDLE_ROOT, "parent." + long_key, "long");
  needle_node args = src.array(NEEDLE_ROOT, "parent.args");
  src.push_str(args, "sh");
  src.push_int(args, 3);
  needle_node anc = src.array(NEEDLE_ROOT, "ancestors");
  src.set_uint(src.push_object(anc), "pid", 7);
  src.set_str(src.push_object(anc), "exe", "/sbin/init");

  Event dst;
  dst.set_str(NEEDLE_ROOT, "type", "file.open");
  dst.set_str(NEEDLE_ROOT, "parent.stale", "x");   // replaced by the copy
  ASSERT_NE(dst.copy(NEEDLE_ROOT, *make_field("parent"), src, src.find(NEEDLE_ROOT, "parent")),
            Event::kNone);
  ASSERT_NE(dst.copy(NEEDLE_ROOT, *make_field("ancestors"), src,
                     src.find(NEEDLE_ROOT, "ancestors")),
            Event::kNone);
  std::string want = json(src);
  EXPECT_EQ(json(dst), R"({"type":"file.open",)" + want.substr(1));
  src.clear();   // the copy owns its bytes
  EXPECT_EQ(json(dst), R"({"type":"file.open",)" + want.substr(1));
  EXPECT_EQ(dst.copy(NEEDLE_ROOT, *make_field("type"), dst, dst.find(NEEDLE_ROOT, "type")),
            Event::kNone);
  EXPECT_EQ(dst.copy(NEEDLE_ROOT, *make_field("x"), src, 12345), Event::kNone);
}

std::string msgpack_of(const Event& ev) {
  std::string out;
  encode_msgpack(ev, out);
  return out;
}

// A template event like the lineage enricher's: parent and ancestors.
void fill_template(Event& t, uint64_t pid) {
  t.set_uint(NEEDLE_ROOT, "parent.pid", pid);
  t.set_str(NEEDLE_ROOT, "parent.exe", "/bin/sh");
  needle_node args = t.array(NEEDLE_ROOT, "parent.args");
  t.push_str(args, "sh");
  t.push_str(args, "-c \"x\"");
  needle_node anc = t.array(NEEDLE_ROOT, "ancestors");
  t.set_uint(t.push_object(anc), "pid", pid);
  t.set_uint(t.push_object(anc), "pid", 1);
}

needle_node copy_parent(Event& dst, const Event& src) {
  dst.set_str(NEEDLE_ROOT, "type", "file.open");
  return dst.copy(NEEDLE_ROOT, *make_field("parent"), src, src.find(NEEDLE_ROOT, "parent"));
}

// The first copy from an unchanged event is its own; from the second on, the events share one
// frozen subtree, which encodes (JSON and msgpack) exactly as the copy did and outlives both the
// template and the events that took it.
TEST(Shared, SecondCopyIsSharedAndEncodesTheSame) {
  Event src;
  fill_template(src, 7);
  Event first;
  Event second;
  Event third;
  needle_node a = copy_parent(first, src);
  needle_node b = copy_parent(second, src);
  needle_node c = copy_parent(third, src);
  EXPECT_EQ(first.node(a).shared(), nullptr);
  ASSERT_NE(second.node(b).shared(), nullptr);
  EXPECT_EQ(second.node(b).shared(), third.node(c).shared());
  const std::string want = json(first);
  EXPECT_EQ(want, R"({"type":"file.open","parent":{"pid":7,"exe":"/bin/sh",)"
                  R"("args":["sh","-c \"x\""]}})");
  EXPECT_EQ(json(second), want);
  EXPECT_EQ(msgpack_of(second), msgpack_of(first));
  EXPECT_EQ(second.size(b), 3u);
  src.clear();
  first.clear();
  EXPECT_EQ(json(third), want);   // its reference keeps the subtree alive
  EXPECT_EQ(msgpack_of(third), msgpack_of(second));
}

// Writing below a shared subtree copies it into that event first: the others keep the old
// content. Reads below it (find, child) see the same values as in a copy.
TEST(Shared, ChangesAndReadsBelowASharedSubtreeStayInTheirEvent) {
  Event src;
  fill_template(src, 9);
  Event warm;
  copy_parent(warm, src);
  Event a;
  Event b;
  needle_node pa = copy_parent(a, src);
  copy_parent(b, src);
  ASSERT_NE(a.node(pa).shared(), nullptr);
  const std::string before = json(b);

  a.set_str(NEEDLE_ROOT, "parent.exe", "/bin/changed");
  EXPECT_EQ(a.node(pa).shared(), nullptr);
  EXPECT_EQ(json(a), R"({"type":"file.open","parent":{"pid":9,"exe":"/bin/changed",)"
                     R"("args":["sh","-c \"x\""]}})");
  EXPECT_EQ(json(b), before);

  uint64_t pid = 0;
  ASSERT_TRUE(b.get_uint(b.find(NEEDLE_ROOT, "parent.pid"), pid));
  EXPECT_EQ(pid, 9u);
  EXPECT_EQ(json(b), before);   // a read copies in, and the encoding stays the same

  Event c;
  needle_node pc = copy_parent(c, src);
  needle_node args = c.find(NEEDLE_ROOT, "parent.args");
  ASSERT_NE(args, Event::kNone);
  c.push_str(args, "more");
  std::string_view s;
  ASSERT_EQ(c.size(args), 3u);
  ASSERT_TRUE(c.get_str(c.child(args, 2), s));
  EXPECT_EQ(s, "more");
  EXPECT_EQ(c.node(pc).shared(), nullptr);

  Event d;
  needle_node pd = copy_parent(d, src);
  ASSERT_NE(d.node(pd).shared(), nullptr);
  EXPECT_EQ(d.size(pd), 3u);   // counted without copying in
  EXPECT_NE(d.node(pd).shared(), nullptr);
  d.set_str(NEEDLE_ROOT, "parent", "replaced");   // a shared subtree replaced by a scalar
  EXPECT_EQ(json(d), R"({"type":"file.open","parent":"replaced"})");
  EXPECT_EQ(json(b), before);
}

// Reads below a shared subtree (find, child, size, values) are answered from it without copying
// it in; a write through an id from such a read copies it in first and lands on the copy; reads
// through an old id follow the copy.
TEST(Shared, ReadsBelowASharedSubtreeLeaveItSharedAndWritesFollowTheirIds) {
  Event src;
  fill_template(src, 21);
  Event warm;
  copy_parent(warm, src);
  Event a;
  needle_node pa = copy_parent(a, src);
  ASSERT_NE(a.node(pa).shared(), nullptr);
  const std::string before = json(a);

  uint64_t pid = 0;
  ASSERT_TRUE(a.get_uint(a.find(NEEDLE_ROOT, "parent.pid"), pid));
  EXPECT_EQ(pid, 21u);
  needle_node args = a.find(pa, *make_field("args"));
  ASSERT_NE(args, Event::kNone);
  EXPECT_EQ(a.type_of(args), static_cast<uint32_t>(NEEDLE_NODE_ARRAY));
  ASSERT_EQ(a.size(args), 2u);
  std::string_view s;
  ASSERT_TRUE(a.get_str(a.child(args, 1), s));
  EXPECT_EQ(s, "-c \"x\"");
  EXPECT_EQ(a.find(NEEDLE_ROOT, "parent.nothing"), Event::kNone);
  EXPECT_EQ(a.child(pa, 0), a.find(NEEDLE_ROOT, "parent.pid"));
  EXPECT_NE(a.node(pa).shared(), nullptr);   // read, not copied in
  EXPECT_EQ(json(a), before);

  a.push_str(args, "more");   // a write through a foreign id
  EXPECT_EQ(a.node(pa).shared(), nullptr);
  EXPECT_EQ(json(a), R"({"type":"file.open","parent":{"pid":21,"exe":"/bin/sh",)"
                     R"("args":["sh","-c \"x\"","more"]}})");
  ASSERT_EQ(a.size(args), 3u);   // the old id reads the copy
  ASSERT_TRUE(a.get_str(a.child(args, 2), s));
  EXPECT_EQ(s, "more");
  a.set_str(a.find(NEEDLE_ROOT, "parent"), *make_field("exe"), "/bin/x");
  EXPECT_NE(json(a).find(R"("exe":"/bin/x")"), std::string::npos);

  Event b;   // a copy from a foreign node of another event: its content, not shared
  needle_node pb_args = b.copy(NEEDLE_ROOT, *make_field("args"), warm,
                               warm.find(NEEDLE_ROOT, "parent.args"));
  ASSERT_NE(pb_args, Event::kNone);
  EXPECT_EQ(json(b), R"({"args":["sh","-c \"x\""]})");
}

// The same write made to the same shared subtree in several events (an enricher adding a
// digest to every event's shared `parent`): the first copies in and writes, from the second on
// the events share the subtree that results. Other values, types, copies and invalid text each
// give their own, correct result.
TEST(Shared, RepeatedWritesIntoASharedSubtreeShareTheirResult) {
  Event src;
  fill_template(src, 30);
  Event warm;
  copy_parent(warm, src);
  const Field& sha = *make_field("exe_sha256");
  const Field& n = *make_field("n");
  auto written = [&](auto write) {
    auto e = std::make_unique<Event>();
    needle_node p = copy_parent(*e, src);
    EXPECT_NE(e->node(p).shared(), nullptr);
    write(*e, p);
    return std::pair{std::move(e), p};
  };
  const std::string want =
      R"({"type":"file.open","parent":{"pid":30,"exe":"/bin/sh","args":["sh","-c \"x\""],)"
      R"("exe_sha256":"d1"}})";
  auto digest = [&](Event& e, needle_node p) { e.set_str(p, sha, "d1"); };
  auto [e1, p1] = written(digest);
  auto [e2, p2] = written(digest);
  auto [e3, p3] = written(digest);
  EXPECT_EQ(e1->node(p1).shared(), nullptr);   // the first: copied in
  ASSERT_NE(e2->node(p2).shared(), nullptr);   // then the result, shared
  EXPECT_EQ(e2->node(p2).shared(), e3->node(p3).shared());
  for (Event* e : {e1.get(), e2.get(), e3.get()}) {
    EXPECT_EQ(json(*e), want);
  }
  EXPECT_EQ(msgpack_of(*e3), msgpack_of(*e1));
  std::string_view got;
  ASSERT_TRUE(e3->get_str(e3->find(p3, sha), got));   // reads see the write
  EXPECT_EQ(got, "d1");

  // Other writes: another value, a number, a copy; each twice, so the second is shared.
  for (int round = 0; round < 2; ++round) {
    auto [a, pa] = written([&](Event& e, needle_node p) { e.set_str(p, sha, "d2"); });
    EXPECT_NE(json(*a).find(R"("exe_sha256":"d2")"), std::string::npos);
    auto [b, pb] = written([&](Event& e, needle_node p) { e.set_uint(p, n, 7); });
    EXPECT_NE(json(*b).find(R"("exe":"/bin/sh","args":["sh","-c \"x\""],"n":7})"),
              std::string::npos)
        << json(*b);
    auto [c, pc] = written([&](Event& e, needle_node p) {
      e.copy(p, *make_field("ancestors"), src, src.find(NEEDLE_ROOT, "ancestors"));
    });
    EXPECT_NE(json(*c).find(R"("ancestors":[{"pid":30},{"pid":1}]}})"), std::string::npos)
        << json(*c);
    if (round == 1) {
      EXPECT_NE(a->node(pa).shared(), nullptr);
      EXPECT_NE(b->node(pb).shared(), nullptr);
    }
  }
  // Invalid text is never shared: each event marks its own field lossy.
  for (int i = 0; i < 3; ++i) {
    auto [d, pd] = written([&](Event& e, needle_node p) { e.set_str(p, sha, "bad\xff"); });
    EXPECT_EQ(d->node(pd).shared(), nullptr);
    EXPECT_NE(json(*d).find(R"("lossy":["parent.exe_sha256"])"), std::string::npos) << json(*d);
  }
  // Many distinct writes: past the few remembered, each is simply copied in and written.
  for (int i = 0; i < 20; ++i) {
    auto [e, p] = written([&](Event& ev, needle_node pp) { ev.set_uint(pp, n, 100 + i); });
    EXPECT_NE(json(*e).find(R"("n":)" + std::to_string(100 + i) + "}"), std::string::npos);
  }
}

// An id read below a shared subtree before a repeated write moved the event to that write's
// shared result still names its node: a write through it lands, in that event only.
TEST(Shared, IdsReadBeforeASharedWriteStillWrite) {
  Event src;
  fill_template(src, 40);
  Event warm;
  copy_parent(warm, src);
  const Field& sha = *make_field("exe_sha256");
  Event first;
  needle_node p1 = copy_parent(first, src);
  first.set_str(p1, sha, "d9");   // the write's first time: copied in
  Event e;
  needle_node p = copy_parent(e, src);
  ASSERT_NE(e.node(p).shared(), nullptr);
  needle_node args = e.find(p, *make_field("args"));   // a foreign id
  ASSERT_NE(args, Event::kNone);
  e.set_str(p, sha, "d9");   // the second time: e now shares the write's result
  const Frozen* result = e.node(p).shared();
  ASSERT_NE(result, nullptr);
  e.push_str(args, "late");   // through the id taken before
  EXPECT_EQ(json(e), R"({"type":"file.open","parent":{"pid":40,"exe":"/bin/sh",)"
                     R"("args":["sh","-c \"x\"","late"],"exe_sha256":"d9"}})");
  Event other;
  needle_node po = copy_parent(other, src);
  other.set_str(po, sha, "d9");
  EXPECT_EQ(other.node(po).shared(), result);   // the shared result itself is unchanged
  EXPECT_EQ(json(other), R"({"type":"file.open","parent":{"pid":40,"exe":"/bin/sh",)"
                         R"("args":["sh","-c \"x\""],"exe_sha256":"d9"}})");
}

// Ids that name no node, shared or not, read as nothing and write nothing.
TEST(Shared, BogusIdsReadAsNothingAndWriteNothing) {
  Event src;
  fill_template(src, 3);
  Event warm;
  copy_parent(warm, src);
  Event a;
  copy_parent(a, src);
  ASSERT_NE(a.find(NEEDLE_ROOT, "parent.pid"), Event::kNone);   // view 0 exists: its ids too
  const std::string before = json(a);
  for (uint32_t id : {0x40000000u | 12345u, 0x7fffffffu, 0x3fffffffu, 0x80000000u}) {
    std::string_view s;
    uint64_t u = 0;
    EXPECT_EQ(a.type_of(id), static_cast<uint32_t>(NEEDLE_NODE_NONE)) << id;
    EXPECT_FALSE(a.get_str(id, s));
    EXPECT_FALSE(a.get_uint(id, u));
    EXPECT_EQ(a.size(id), 0u);
    EXPECT_EQ(a.child(id, 0), Event::kNone);
    EXPECT_EQ(a.find(id, "pid"), Event::kNone);
    a.set_str(id, "x", "y");
    a.push_str(id, "y");
    a.remove(id);
    Event b;
    EXPECT_EQ(b.copy(NEEDLE_ROOT, *make_field("x"), a, id), Event::kNone);
  }
  EXPECT_EQ(json(a), before);
}

// A scalar turned into an object or array keeps none of its value (a container's value slot
// names its shared subtree).
TEST(Shared, AScalarRetypedToAContainerSharesNothing) {
  Event e;
  e.set_str(NEEDLE_ROOT, "x", "a string value");
  e.set_uint(NEEDLE_ROOT, "x.y", 1);
  e.set_double(NEEDLE_ROOT, "z", 2.5);
  e.push_int(e.array(NEEDLE_ROOT, "z"), 3);
  EXPECT_EQ(json(e), R"({"x":{"y":1},"z":[3]})");
  EXPECT_EQ(e.size(e.find(NEEDLE_ROOT, "x")), 1u);
}

// A change to the template drops what was frozen from it: the next copies carry the new
// content (the first one copied, then shared anew). Copying a shared node on shares it again.
TEST(Shared, TemplateChangesAreSeenAndSharingPassesOn) {
  Event src;
  fill_template(src, 11);
  Event e1;
  Event e2;
  copy_parent(e1, src);
  needle_node p2 = copy_parent(e2, src);
  const Frozen* old = e2.node(p2).shared();
  ASSERT_NE(old, nullptr);
  src.set_uint(NEEDLE_ROOT, "parent.pid", 12);
  Event e3;
  Event e4;
  needle_node p3 = copy_parent(e3, src);
  needle_node p4 = copy_parent(e4, src);
  EXPECT_EQ(e3.node(p3).shared(), nullptr);
  ASSERT_NE(e4.node(p4).shared(), nullptr);
  EXPECT_NE(e4.node(p4).shared(), old);
  EXPECT_NE(json(e4).find(R"("pid":12)"), std::string::npos);
  EXPECT_NE(json(e2).find(R"("pid":11)"), std::string::npos);

  Event onward;
  needle_node po = copy_parent(onward, e4);   // from a shared node: the same subtree
  EXPECT_EQ(onward.node(po).shared(), e4.node(p4).shared());
  EXPECT_EQ(json(onward), json(e4));
}

// Events sharing one subtree are encoded and cleared on several threads at once (the reference
// count is atomic; ASan checks the frees).
TEST(Shared, EventsSharingASubtreeLiveOnSeveralThreads) {
  Event src;
  fill_template(src, 5);
  Event holder;
  copy_parent(holder, src);
  needle_node hp = copy_parent(holder, src);   // the second copy: holder's parent is shared
  ASSERT_NE(holder.node(hp).shared(), nullptr);
  const std::string want = json(holder);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        Event e;
        copy_parent(e, holder);
        if (json(e) != want) {
          bad.fetch_add(1);
        }
      }
    });
  }
  src.clear();
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(bad.load(), 0);
}

// A shared subtree's msgpack form is made on its first use: threads that encode events
// sharing a new subtree at once all get the same bytes as an unshared copy's (it is made
// once, under the subtree's lock; the rest wait for it or read it made).
TEST(Shared, TheMsgpackFormIsMadeOnceWhenThreadsFirstNeedItTogether) {
  for (int round = 0; round < 50; ++round) {
    Event src;
    fill_template(src, 100 + round);
    Event flat;
    copy_parent(flat, src);   // the first copy is flat: what every encoding must match
    std::vector<std::unique_ptr<Event>> shared;
    for (int t = 0; t < 4; ++t) {
      shared.push_back(std::make_unique<Event>());
      const needle_node n = copy_parent(*shared.back(), src);
      ASSERT_NE(shared.back()->node(n).shared(), nullptr);
    }
    const std::string want = msgpack_of(flat);
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        if (msgpack_of(*shared[static_cast<size_t>(t)]) != want) {
          bad.fetch_add(1);
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
    EXPECT_EQ(bad.load(), 0) << "round " << round;
  }
}

TEST(Keys, OneEntryPerNameWithItsEncodedForms) {
  const Key* a = intern_key("interned_a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(intern_key("interned_a"), a);
  EXPECT_EQ(find_key("interned_a"), a);
  EXPECT_NE(intern_key("interned_b"), a);
  EXPECT_EQ(find_key("never_interned_here"), nullptr);
  EXPECT_EQ(a->json, R"("interned_a":)");
  EXPECT_EQ(a->msgpack, std::string("\xaa") + "interned_a");
  const Key* q = intern_key("a\"b");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->json, R"("a\"b":)");
  // No name is interned empty or past kMaxInternedKey: those stay in each event's arena.
  EXPECT_EQ(intern_key(""), nullptr);
  EXPECT_EQ(intern_key(std::string(kMaxInternedKey + 1, 'k')), nullptr);
  EXPECT_NE(intern_key(std::string(kMaxInternedKey, 'k')), nullptr);
}

// Every operation on a key kept in the arena (too long to intern) behaves as on an interned one,
// and both encodings carry it; a 40-byte key takes msgpack's str8 header.
TEST(Keys, KeysNotInternedWorkTheSameWay) {
  const std::string long_key(kMaxInternedKey + 10, 'x');
  const std::string mid_key(40, 'm');
  Event ev;
  ev.set_str(NEEDLE_ROOT, long_key, "1");
  ev.set_str(NEEDLE_ROOT, "o." + long_key, "2");
  ev.set_str(NEEDLE_ROOT, long_key, "3");   // replaces
  ev.set_uint(NEEDLE_ROOT, mid_key, 4);
  std::string_view v;
  ASSERT_TRUE(ev.get_str(ev.find(NEEDLE_ROOT, long_key), v));
  EXPECT_EQ(v, "3");
  ASSERT_TRUE(ev.get_str(ev.find(NEEDLE_ROOT, "o." + long_key), v));
  EXPECT_EQ(v, "2");
  EXPECT_EQ(ev.size(NEEDLE_ROOT), 3u);
  EXPECT_EQ(json(ev), "{\"" + long_key + "\":\"3\",\"o\":{\"" + long_key + "\":\"2\"},\"" +
                          mid_key + "\":4}");
  std::string mp;
  encode_msgpack(ev, mp);
  msgpack::object_handle oh = msgpack::unpack(mp.data(), mp.size());   // owns what root views
  auto root = oh.get().as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(root.at(long_key).as<std::string>(), "3");
  EXPECT_EQ(root.at(mid_key).as<uint64_t>(), 4u);
}

// Names made from data (label keys) must not grow the table without bound: past kMaxKeys new
// names stay in the arena and events go on working. Run in a child process, which alone sees
// the full table.
TEST(Keys, AFullTableLeavesNewNamesInTheArena) {
  EXPECT_EXIT(
      {
        const Key* early = intern_key("early_name");
        for (size_t i = 0; i < kMaxKeys; ++i) {
          intern_key("filler." + std::to_string(i));
        }
        bool ok = intern_key("late_name") == nullptr && intern_key("early_name") == early;
        Event ev;
        ev.set_str(NEEDLE_ROOT, "late_name.early_name", "x");
        ev.set_str(NEEDLE_ROOT, "late_name.early_name", "y");
        std::string_view v;
        ok = ok && ev.get_str(ev.find(NEEDLE_ROOT, "late_name.early_name"), v) && v == "y" &&
             json(ev) == R"({"late_name":{"early_name":"y"}})";
        std::exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// Reads by field in one step (ABI 1.3's ev_get_*_f): the same answers as find then get_*, on
// the event's own nodes, below a shared subtree and through ids read below one; nothing for a
// missing field, a field of another type or a bogus parent.
TEST(Fields, OneStepReadsAnswerAsFindThenGet) {
  Event src;
  fill_template(src, 9);
  Event warm;
  copy_parent(warm, src);
  Event e;
  const needle_node p = copy_parent(e, src);
  ASSERT_NE(e.node(p).shared(), nullptr);
  e.set_int(NEEDLE_ROOT, *make_field("process.nice"), -5);
  const Field& parent_pid = *make_field("parent.pid");
  const Field& parent_exe = *make_field("parent.exe");
  uint64_t u = 0;
  int64_t i = 0;
  std::string_view str;
  ASSERT_TRUE(e.get_uint(NEEDLE_ROOT, parent_pid, u));   // below the shared subtree
  EXPECT_EQ(u, 9u);
  ASSERT_TRUE(e.get_int(NEEDLE_ROOT, parent_pid, i));
  EXPECT_EQ(i, 9);
  ASSERT_TRUE(e.get_str(NEEDLE_ROOT, parent_exe, str));
  EXPECT_EQ(str, "/bin/sh");
  ASSERT_TRUE(e.get_str(p, *make_field("exe"), str));   // from the shared node itself
  EXPECT_EQ(str, "/bin/sh");
  ASSERT_TRUE(e.get_int(NEEDLE_ROOT, *make_field("process.nice"), i));   // own nodes
  EXPECT_EQ(i, -5);
  EXPECT_FALSE(e.get_uint(NEEDLE_ROOT, *make_field("process.nice"), u));   // negative
  EXPECT_FALSE(e.get_str(NEEDLE_ROOT, parent_pid, str));                   // another type
  EXPECT_FALSE(e.get_uint(NEEDLE_ROOT, *make_field("parent.nope"), u));    // missing
  EXPECT_FALSE(e.get_uint(NEEDLE_ROOT, *make_field("type.pid"), u));      // below a scalar
  EXPECT_FALSE(e.get_uint(Event::kNone, parent_pid, u));                  // no parent
  EXPECT_FALSE(e.get_uint(0x7ffffff0u, parent_pid, u));                   // bogus id
  // Through a foreign id (a node read below the shared subtree), and after a write copied the
  // subtree in: the id follows its node.
  const needle_node args_parent = e.find(NEEDLE_ROOT, *make_field("parent"));
  ASSERT_TRUE(e.get_str(args_parent, *make_field("exe"), str));
  e.set_str(p, *make_field("exe"), "/bin/bash");
  ASSERT_TRUE(e.get_str(args_parent, *make_field("exe"), str));
  EXPECT_EQ(str, "/bin/bash");
  // Fields by path (a name not interned) take the path's way.
  Field by_path;
  by_path.path = "parent.pid";
  ASSERT_TRUE(e.get_uint(NEEDLE_ROOT, by_path, u));
  EXPECT_EQ(u, 9u);
}

// merge adds the members an object lacks and keeps the ones it has, in the source's order after
// its own; it makes the object when missing or of another type; a source that is not an object
// merges nothing.
TEST(Fields, MergeAddsWhatTheObjectLacks) {
  Event t;
  t.set_str(NEEDLE_ROOT, "process.exe", "/usr/bin/x");
  needle_node args = t.array(NEEDLE_ROOT, "process.args");
  t.push_str(args, "x");
  t.push_str(args, "-v");
  t.set_uint(NEEDLE_ROOT, "process.ppid", 1);
  t.set_uint(NEEDLE_ROOT, "process.pid", 999);   // the event's own pid stays
  t.set_str(NEEDLE_ROOT, "process.odd key", "y");   // a name that is not interned
  t.set_str(NEEDLE_ROOT, "scalar", "s");
  const Field& process = *make_field("process");
  const needle_node tp = t.find(NEEDLE_ROOT, process);

  Event e;
  e.set_str(NEEDLE_ROOT, "type", "file.open");
  e.set_uint(NEEDLE_ROOT, "process.pid", 42);
  e.set_uint(NEEDLE_ROOT, "process.ppid", 7);
  const needle_node n = e.merge(NEEDLE_ROOT, process, t, tp);
  EXPECT_EQ(n, e.find(NEEDLE_ROOT, process));
  EXPECT_EQ(json(e), R"({"type":"file.open","process":{"pid":42,"ppid":7,"exe":"/usr/bin/x",)"
                     R"("args":["x","-v"],"odd key":"y"}})");

  Event missing;
  missing.merge(NEEDLE_ROOT, process, t, tp);
  EXPECT_EQ(json(missing), R"({"process":{"exe":"/usr/bin/x","args":["x","-v"],"ppid":1,)"
                           R"("pid":999,"odd key":"y"}})");
  Event retyped;
  retyped.set_str(NEEDLE_ROOT, "process", "not an object");
  retyped.merge(NEEDLE_ROOT, process, t, tp);
  EXPECT_EQ(json(retyped), json(missing));

  // A member subtree (args) is shared from its second merge on, as a copy's would be.
  Event again;
  again.merge(NEEDLE_ROOT, process, t, tp);
  EXPECT_EQ(json(again), json(missing));
  const needle_node again_args = again.find(NEEDLE_ROOT, *make_field("process.args"));
  ASSERT_NE(again_args, Event::kNone);
  EXPECT_NE(again.node(again_args).shared(), nullptr);
  EXPECT_EQ(e.node(e.find(NEEDLE_ROOT, *make_field("process.args"))).shared(),
            nullptr);   // the first merge (into e) copied it

  Event untouched;
  untouched.set_uint(NEEDLE_ROOT, "process.pid", 1);
  EXPECT_EQ(untouched.merge(NEEDLE_ROOT, process, t, t.find(NEEDLE_ROOT, "scalar")), Event::kNone);
  EXPECT_EQ(untouched.merge(NEEDLE_ROOT, process, t, Event::kNone), Event::kNone);
  EXPECT_EQ(untouched.merge(NEEDLE_ROOT, process, untouched, NEEDLE_ROOT), Event::kNone);
  EXPECT_EQ(json(untouched), R"({"process":{"pid":1}})");
}

// A merge into a shared subtree, repeated from the same unchanged template, is shared as a
// repeated write is: every event encodes exactly as a merge into its own copy would, the third
// shares the second's result, ids read before the merge still name their nodes, and a template
// that changes gives its new content.
TEST(Shared, RepeatedMergesIntoASharedSubtreeShareTheirResult) {
  Event src;
  fill_template(src, 50);
  Event warm;
  copy_parent(warm, src);
  Event extra;   // what the lineage enricher merges into `process`, here into `parent`
  extra.set_str(NEEDLE_ROOT, "parent.exe", "/ignored");   // parent has exe: kept
  extra.set_uint(NEEDLE_ROOT, "parent.ppid", 1);
  needle_node anc = extra.array(NEEDLE_ROOT, "parent.seen");
  extra.push_str(anc, "a");
  const Field& parent = *make_field("parent");
  const needle_node xp = extra.find(NEEDLE_ROOT, parent);
  const std::string want =
      R"({"type":"file.open","parent":{"pid":50,"exe":"/bin/sh","args":["sh","-c \"x\""],)"
      R"("ppid":1,"seen":["a"]}})";
  std::vector<std::unique_ptr<Event>> events;
  std::vector<const Frozen*> shared;
  for (int i = 0; i < 4; ++i) {
    auto e = std::make_unique<Event>();
    const needle_node p = copy_parent(*e, src);
    ASSERT_NE(e->node(p).shared(), nullptr);
    const needle_node pid = e->find(p, *make_field("pid"));   // a foreign id, read before
    EXPECT_EQ(e->merge(NEEDLE_ROOT, parent, extra, xp), p);
    EXPECT_EQ(json(*e), want);
    uint64_t v = 0;
    ASSERT_TRUE(e->get_uint(pid, v));
    EXPECT_EQ(v, 50u);
    shared.push_back(e->node(p).shared());
    events.push_back(std::move(e));
  }
  EXPECT_EQ(shared[0], nullptr);   // the first merge: copied in
  EXPECT_EQ(shared[1], nullptr);   // the template's first copy is not shared yet
  ASSERT_NE(shared[2], nullptr);
  EXPECT_EQ(shared[2], shared[3]);
  EXPECT_EQ(msgpack_of(*events[3]), msgpack_of(*events[0]));
  // A write after a shared merge goes to that event only.
  events[3]->set_str(NEEDLE_ROOT, *make_field("parent.exe"), "/bin/zsh");
  EXPECT_EQ(json(*events[2]), want);
  EXPECT_NE(json(*events[3]).find(R"("exe":"/bin/zsh")"), std::string::npos);
  // The template changes: the next merges carry the new content.
  extra.set_uint(NEEDLE_ROOT, "parent.ppid", 2);
  for (int i = 0; i < 3; ++i) {
    Event e;
    copy_parent(e, src);
    e.merge(NEEDLE_ROOT, parent, extra, xp);
    EXPECT_NE(json(e).find(R"("ppid":2,"seen":["a"]})"), std::string::npos) << json(e);
  }
}

// Fills `src` as a template (pid 50) and gives `base` a parent shared from it (its third copy);
// returns that parent's node in `base`.
needle_node shared_parent(Event& src, Event& base) {
  fill_template(src, 50);
  for (int i = 0; i < 3; ++i) {
    base.clear();
    copy_parent(base, src);
  }
  return base.find(NEEDLE_ROOT, "parent");
}

// Pipeline threads merge into one shared subtree at once (the same process's events on two
// cores): the merge's transition is looked up without a lock once published, and made under
// it the first times. Every event of both threads encodes as a merge into its own copy would,
// while the table is being filled and after.
TEST(Shared, ConcurrentMergesIntoOneSharedSubtreeAllEncodeTheSame) {
  Event src;
  Event base;   // its parent shared, so that copies from it only read it
  const needle_node bp = shared_parent(src, base);
  ASSERT_NE(base.node(bp).shared(), nullptr);
  const Field& parent = *make_field("parent");
  Event extra_template;
  extra_template.set_uint(NEEDLE_ROOT, "parent.ppid", 1);
  Event extra;   // what is merged, shared too: its frozen form names the merge
  for (int i = 0; i < 3; ++i) {
    extra.clear();
    extra.copy(NEEDLE_ROOT, parent, extra_template, extra_template.find(NEEDLE_ROOT, parent));
  }
  const needle_node xp = extra.find(NEEDLE_ROOT, parent);
  ASSERT_NE(extra.node(xp).shared(), nullptr);
  const std::string want =
      R"({"type":"file.open","parent":{"pid":50,"exe":"/bin/sh","args":["sh","-c \"x\""],)"
      R"("ppid":1}})";
  std::atomic<int> wrong{0};
  std::atomic<int> shared{0};
  auto work = [&] {
    for (int i = 0; i < 2000; ++i) {
      Event e;
      e.set_str(NEEDLE_ROOT, "type", "file.open");
      const needle_node p = e.copy(NEEDLE_ROOT, parent, base, bp);
      e.merge(NEEDLE_ROOT, parent, extra, xp);
      if (json(e) != want) {
        wrong.fetch_add(1);
      }
      if (e.node(p).shared() != nullptr) {
        shared.fetch_add(1);
      }
    }
  };
  std::thread a(work);
  std::thread b(work);
  a.join();
  b.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(shared.load(), 3900) << "all but the first merges share the result";
}

// A shared subtree remembers at most eight different writes (in chunks of two): each of them,
// made again, is answered with its shared result; a ninth and tenth are always copied in. Every
// event encodes as if written into its own copy.
TEST(Shared, AtMostEightDifferentWritesIntoOneSubtreeAreShared) {
  Event src;
  Event base;   // its parent shared, so that copies from it only read it
  const needle_node bp = shared_parent(src, base);
  ASSERT_NE(base.node(bp).shared(), nullptr);
  const Field& ppid = *make_field("ppid");
  for (uint64_t value = 1; value <= 10; ++value) {
    for (int round = 0; round < 3; ++round) {
      Event e;
      e.set_str(NEEDLE_ROOT, "type", "file.open");
      const needle_node p = e.copy(NEEDLE_ROOT, *make_field("parent"), base, bp);
      e.set_uint(p, ppid, value);
      EXPECT_EQ(json(e), R"({"type":"file.open","parent":{"pid":50,"exe":"/bin/sh",)"
                         R"("args":["sh","-c \"x\""],"ppid":)" +
                             std::to_string(value) + "}}")
          << value << " " << round;
      const bool shared = e.node(p).shared() != nullptr;
      // Copied in the first time, shared from the second; past eight, never.
      EXPECT_EQ(shared, round > 0 && value <= 8) << value << " " << round;
    }
  }
}

// stamp_event writes a fresh event's common fields directly (the hot path) and any other
// event's through the general sets: both give the same fields in the same order, and the host
// object is one shared subtree across events.
TEST(Event, StampGivesAFreshEventTheSameFieldsAsAnyOther) {
  const uint64_t start = 0x18c2f0a1b2c3d4e5ull;
  const uint64_t boot = 5'000'000'000ull;
  Event fresh;
  stamp_event(fresh, start, 7, boot, "files");
  Event typed;   // not fresh: its type was set before the stamp
  typed.set_str(NEEDLE_ROOT, "type", "file.open");
  stamp_event(typed, start, 7, boot, "files");
  const std::string head = "\"id\":\"18c2f0a1b2c3d4e5-7\",\"time\":\"" +
                           format_boot_time(boot) + "\"";
  const std::string tail = ",\"source\":\"files\",\"host\":{\"name\":";
  EXPECT_EQ(json(fresh).rfind("{" + head + ",\"type\":\"\"" + tail, 0), 0u) << json(fresh);
  EXPECT_EQ(json(typed).rfind("{\"type\":\"file.open\"," + head + tail, 0), 0u) << json(typed);
  EXPECT_EQ(event_type(fresh), "");
  EXPECT_EQ(event_type(typed), "file.open");
  EXPECT_EQ(fresh.boot_ns, boot);
  // The type read where the stamp put it, and wherever a change left it.
  Event changing;
  stamp_event(changing, start, 9, boot, "files");
  changing.set_str(NEEDLE_ROOT, *make_field("type"), "file.open");
  EXPECT_EQ(event_type(changing), "file.open");
  changing.remove(changing.find(NEEDLE_ROOT, "type"));
  EXPECT_EQ(event_type(changing), "");
  changing.set_str(NEEDLE_ROOT, "type", "file.unlink");
  EXPECT_EQ(event_type(changing), "file.unlink");
  changing.set_uint(NEEDLE_ROOT, "type", 7);   // not a string: no type
  EXPECT_EQ(event_type(changing), "");

  // The host subtree is shared: the same frozen one in every event stamped on this thread.
  Event other;
  stamp_event(other, start, 8, boot, "files");
  const auto shared_host = [](const Event& ev) {
    return ev.node(ev.find(NEEDLE_ROOT, "host")).shared();
  };
  ASSERT_NE(shared_host(fresh), nullptr);
  EXPECT_EQ(shared_host(fresh), shared_host(other));
  std::string_view name;
  ASSERT_TRUE(other.get_str(other.find(NEEDLE_ROOT, "host.name"), name));
  EXPECT_EQ(name, host_name());

  // Writes below the shared host go to the event's own copy.
  other.set_str(NEEDLE_ROOT, "host.ip", "10.0.0.1");
  EXPECT_NE(json(other).find("\"ip\":\"10.0.0.1\""), std::string::npos);
  EXPECT_EQ(json(fresh).find("\"ip\""), std::string::npos);

  // A source name that is not valid UTF-8 takes the general path, which cleans and marks it.
  Event bad;
  stamp_event(bad, start, 9, boot, "fi\xffles");
  EXPECT_NE(json(bad).find("\"lossy\":[\"source\"]"), std::string::npos) << json(bad);
}

}  // namespace
}  // namespace needle::core
