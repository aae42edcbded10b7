/* Needle plugin ABI: the only contract between needle and a plugin shared object.
 *
 * Rules (see docs/plugin-guide.md):
 * - Plain C. No C++ type, exception or allocator crosses this boundary.
 * - Every table starts with `struct_size`, the size the plugin (or host) compiled it with. The
 *   reader uses only the slots that size covers; a slot past it is treated as NULL.
 * - Tables only grow at the end. A new slot bumps NEEDLE_ABI_MINOR; removing, reordering or
 *   changing a slot bumps NEEDLE_ABI_MAJOR. A test (tests/unit/abi_freeze_test.cc) fails when this
 *   file changes without the matching bump.
 * - needle refuses a plugin of another major, or of a newer minor than its own.
 * - Strings passed in are UTF-8 with an explicit length unless the slot says NUL-terminated.
 */
#ifndef NEEDLE_ABI_H
#define NEEDLE_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NEEDLE_ABI_MAJOR 1
#define NEEDLE_ABI_MINOR 3

/* The one symbol every plugin exports (C linkage, default visibility). */
#define NEEDLE_ENTRY_SYMBOL "needle_plugin_entry"

/* Return codes of every slot. */
typedef int32_t needle_rc;
#define NEEDLE_OK 0
#define NEEDLE_ERROR 1        /* failed; the plugin set a message with host->set_error */
#define NEEDLE_INVALID 2      /* bad configuration or input; message names the key */
#define NEEDLE_RETRY 3        /* sinks: transient failure, the batch is offered again later */
#define NEEDLE_PENDING 4      /* enrichers: not ready; *deadline_ns says how long to park */
#define NEEDLE_SKIP 5         /* sources: record is valid but produces no event */

/* Plugin kinds. */
#define NEEDLE_KIND_SOURCE 1u
#define NEEDLE_KIND_ENRICHER 2u
#define NEEDLE_KIND_SINK 3u

/* Config key types. */
#define NEEDLE_CFG_BOOL 1u
#define NEEDLE_CFG_INT 2u
#define NEEDLE_CFG_DOUBLE 3u
#define NEEDLE_CFG_STRING 4u
#define NEEDLE_CFG_STRING_ARRAY 5u
#define NEEDLE_CFG_PATH 6u       /* a string; a relative value resolves against the config's folder */
#define NEEDLE_CFG_INT_ARRAY 7u

/* Log levels (the core maps them onto its logger). */
#define NEEDLE_LOG_TRACE 0
#define NEEDLE_LOG_DEBUG 1
#define NEEDLE_LOG_INFO 2
#define NEEDLE_LOG_WARN 3
#define NEEDLE_LOG_ERROR 4

/* Event node types. */
#define NEEDLE_NODE_NONE 0u
#define NEEDLE_NODE_OBJECT 1u
#define NEEDLE_NODE_ARRAY 2u
#define NEEDLE_NODE_STRING 3u
#define NEEDLE_NODE_INT 4u
#define NEEDLE_NODE_UINT 5u
#define NEEDLE_NODE_DOUBLE 6u
#define NEEDLE_NODE_BOOL 7u

/* Field marks (`truncated`, `lossy`, `incomplete` of the event schema). */
#define NEEDLE_MARK_TRUNCATED 1u
#define NEEDLE_MARK_LOSSY 2u
#define NEEDLE_MARK_INCOMPLETE 3u

/* Encodings the core produces for sinks. */
#define NEEDLE_FORMAT_JSON 1u
#define NEEDLE_FORMAT_MSGPACK 2u

/* Program flags in a source's program table. */
#define NEEDLE_PROG_ITER 1u       /* a task iterator run once after attach: the start snapshot */
/* 1.1: a handler of the shared syscall dispatcher (needle/bpf/syscalls.h). It is never attached
 * by itself: the core loads it at the dispatcher's rung and puts it in the dispatcher's tail-call
 * slot of every syscall the spec's `syscalls` table gives its hook. Run at sys_exit unless
 * NEEDLE_PROG_SYSCALL_ENTER is also set. */
#define NEEDLE_PROG_SYSCALL 2u
#define NEEDLE_PROG_SYSCALL_ENTER 4u   /* with NEEDLE_PROG_SYSCALL: run at sys_enter */
/* 1.1: attach to the root of the cgroup2 hierarchy (cgroup_skb/..., cgroup/connect4 and the
 * other cgroup programs), so that the program sees every process of the host. */
#define NEEDLE_PROG_CGROUP 8u

/* 1.1: syscall ABIs of a needle_syscall entry. */
#define NEEDLE_SYSCALL_NATIVE 0u  /* the kernel's own ABI (x86_64) */
#define NEEDLE_SYSCALL_COMPAT 1u  /* the 32-bit compat ABI of a 64-bit kernel (ia32) */

typedef struct needle_plugin needle_plugin;   /* the plugin's own instance, opaque to needle */
typedef struct needle_host needle_host;       /* needle's per-instance context, opaque to plugins */
typedef struct needle_config needle_config;   /* an instance's validated TOML table */
typedef struct needle_event needle_event;     /* one event under construction or in flight */
typedef struct needle_bpf needle_bpf;         /* a source's BPF object before or after load */
typedef uint32_t needle_node;                 /* a node of an event; 0 is the root object */
/* 1.2: a dotted field path resolved once (ev_field); opaque, valid for the process's life. */
typedef const struct needle_field_s* needle_field;

#define NEEDLE_ROOT ((needle_node)0)
#define NEEDLE_NO_NODE ((needle_node)0xffffffffu)

/* One configuration key a plugin accepts. The core validates the instance's TOML table against
 * these (unknown key, wrong type and missing required key are errors naming file, line and key)
 * and `needle plugins` prints them. */
typedef struct needle_config_key {
  uint32_t struct_size;
  uint32_t type;               /* NEEDLE_CFG_* */
  const char* name;            /* NUL-terminated; lower_snake_case */
  const char* default_value;   /* TOML literal ("8192", "\"json\"", "[]"), or NULL for none */
  const char* help;            /* one line */
  uint32_t required;           /* 1: the key must be present (then default_value is NULL) */
  uint32_t reserved;
} needle_config_key;

/* One BPF program of a source. Programs of the same `hook` are that hook's rungs, best first;
 * several entries with the same hook and rung form one rung. The core autoloads only the rung it
 * is trying (declare optional programs with SEC("?...")). */
typedef struct needle_bpf_program {
  uint32_t struct_size;
  uint32_t flags;              /* NEEDLE_PROG_* */
  const char* program;         /* the program's function name in the object */
  const char* hook;            /* logical hook, e.g. "exec" */
  const char* rung;            /* e.g. "tp_btf", "raw_tp", "tp" */
  uint32_t required;           /* 1: the source fails when no rung of this hook attaches */
  uint32_t reserved;
} needle_bpf_program;

/* 1.1: one syscall a source handles through the shared dispatcher. Each (abi, nr) has one owner
 * among all sources: a second claim stops start-up with an error naming both sources. */
typedef struct needle_syscall {
  uint32_t struct_size;
  uint32_t abi;                /* NEEDLE_SYSCALL_* */
  uint32_t nr;                 /* the syscall's number in that ABI */
  uint32_t reserved;
  const char* hook;            /* the hook whose NEEDLE_PROG_SYSCALL programs handle it */
} needle_syscall;

/* A source's kernel side. The object's bytes stay valid for the plugin's lifetime. */
typedef struct needle_bpf_spec {
  uint32_t struct_size;
  uint32_t program_size;       /* sizeof(needle_bpf_program) as the plugin compiled it */
  const void* object;          /* ELF bytes of a CO-RE object built against needle/bpf/needle.bpf.h */
  size_t object_size;
  const needle_bpf_program* programs;
  size_t program_count;
  /* 1.1 and later. Optional: the syscalls the NEEDLE_PROG_SYSCALL programs handle. */
  const needle_syscall* syscalls;
  size_t syscall_count;
  uint32_t syscall_size;       /* sizeof(needle_syscall) as the plugin compiled it */
  uint32_t reserved;
} needle_bpf_spec;

/* What the host offers a plugin. Valid from create() until destroy() returns. Every slot may be
 * called from any thread unless it says otherwise. */
typedef struct needle_host_api {
  uint32_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t reserved;

  /* Logging through needle's logger, tagged with the instance id. */
  void (*log)(needle_host* host, int32_t level, const char* msg, size_t len);
  /* Sets the instance's last error; needle prints it with the plugin file and instance id. `key`
   * (NUL-terminated, may be NULL) names the config key at fault so needle can give its line. */
  void (*set_error)(needle_host* host, const char* key, const char* msg, size_t len);
  /* Counters, exported as needle_plugin_counter_total{plugin,id,name}. Register in create(). */
  uint32_t (*counter_register)(needle_host* host, const char* name, const char* help);
  void (*counter_add)(needle_host* host, uint32_t counter, uint64_t delta);

  /* Configuration: the instance's table after validation and defaults. Strings live as long as
   * the instance. Each returns NEEDLE_OK, or NEEDLE_INVALID when the key is absent with no
   * default or has another type. */
  needle_rc (*cfg_bool)(const needle_config* cfg, const char* key, int32_t* out);
  needle_rc (*cfg_int)(const needle_config* cfg, const char* key, int64_t* out);
  needle_rc (*cfg_double)(const needle_config* cfg, const char* key, double* out);
  needle_rc (*cfg_string)(const needle_config* cfg, const char* key, const char** out,
                          size_t* len);
  size_t (*cfg_array_size)(const needle_config* cfg, const char* key);
  needle_rc (*cfg_array_string)(const needle_config* cfg, const char* key, size_t index,
                                const char** out, size_t* len);
  needle_rc (*cfg_array_int)(const needle_config* cfg, const char* key, size_t index,
                             int64_t* out);
  const char* (*cfg_id)(const needle_config* cfg);   /* the instance id, NUL-terminated */

  /* Events. `path` is dotted ("process.pid") relative to `parent`; missing objects on the way
   * are created. Strings are copied into the event; invalid UTF-8 is replaced and the field is
   * listed under `lossy`. Setting an existing field replaces it. */
  needle_node (*ev_object)(needle_event* ev, needle_node parent, const char* path, size_t len);
  needle_node (*ev_array)(needle_event* ev, needle_node parent, const char* path, size_t len);
  void (*ev_set_str)(needle_event* ev, needle_node parent, const char* path, size_t len,
                     const char* value, size_t value_len);
  void (*ev_set_int)(needle_event* ev, needle_node parent, const char* path, size_t len,
                     int64_t value);
  void (*ev_set_uint)(needle_event* ev, needle_node parent, const char* path, size_t len,
                      uint64_t value);
  void (*ev_set_double)(needle_event* ev, needle_node parent, const char* path, size_t len,
                        double value);
  void (*ev_set_bool)(needle_event* ev, needle_node parent, const char* path, size_t len,
                      int32_t value);
  void (*ev_push_str)(needle_event* ev, needle_node array, const char* value, size_t len);
  void (*ev_push_int)(needle_event* ev, needle_node array, int64_t value);
  needle_node (*ev_push_object)(needle_event* ev, needle_node array);
  /* Lookup: NEEDLE_NO_NODE when absent. */
  needle_node (*ev_find)(const needle_event* ev, needle_node parent, const char* path,
                         size_t len);
  uint32_t (*ev_type_of)(const needle_event* ev, needle_node node);   /* NEEDLE_NODE_* */
  needle_rc (*ev_get_str)(const needle_event* ev, needle_node node, const char** out,
                          size_t* len);
  needle_rc (*ev_get_int)(const needle_event* ev, needle_node node, int64_t* out);
  needle_rc (*ev_get_uint)(const needle_event* ev, needle_node node, uint64_t* out);
  size_t (*ev_size)(const needle_event* ev, needle_node node);   /* children of object/array */
  needle_node (*ev_child)(const needle_event* ev, needle_node node, size_t index);
  /* Removes a field (and its children) from the event. */
  void (*ev_remove)(needle_event* ev, needle_node node);
  /* Adds the dotted field name to `truncated`, `lossy` or `incomplete` (NEEDLE_MARK_*). */
  void (*ev_mark)(needle_event* ev, uint32_t mark, const char* field, size_t len);
  /* Encodes the event in a format (NEEDLE_FORMAT_*) into a buffer the host owns, valid until the
   * next call on this thread. */
  needle_rc (*ev_encode)(const needle_event* ev, uint32_t format, const void** out, size_t* len);

  /* Events that do not come from the ring (a source that learns of something in user space).
   * The event belongs to the plugin until submitted; submit hands it to the pipeline. */
  needle_event* (*event_new)(needle_host* host, uint64_t boot_ns);
  needle_rc (*event_submit)(needle_host* host, needle_event* ev);
  void (*event_discard)(needle_host* host, needle_event* ev);

  /* BPF hand-off, callable only inside bpf_configure (before load) and bpf_loaded (after). */
  needle_rc (*bpf_set_global)(needle_bpf* bpf, const char* name, const void* value, size_t len);
  needle_rc (*bpf_map_update)(needle_bpf* bpf, const char* map, const void* key, size_t key_len,
                              const void* value, size_t value_len);
  int (*bpf_map_fd)(needle_bpf* bpf, const char* map);

  /* Clocks and identity. */
  uint64_t (*now_boot_ns)(void);
  const char* (*host_id)(void);       /* NUL-terminated; stable per machine */
  const char* (*host_name)(void);
  /* Converts a boot-clock time to RFC 3339 UTC with 9 fractional digits (NUL-terminated,
   * 31 bytes incl. NUL); returns the length. */
  size_t (*format_time)(uint64_t boot_ns, char* out, size_t cap);
  /* Folder where a plugin may keep state across restarts ([needle] state_dir / <kind>-<id>). */
  const char* (*state_dir)(needle_host* host);

  /* 1.2: fields by handle. ev_field resolves a dotted path once (do it at start-up, not per
   * event) into a handle that stays valid for the process's life; the same path gives the same
   * handle. The _f slots behave as their path twins but skip parsing the path and looking its
   * names up, most of a field's cost. ev_field returns NULL for an empty path or when needle
   * already holds 16384 fields: use the path slots then. */
  needle_field (*ev_field)(const char* path, size_t len);
  needle_node (*ev_object_f)(needle_event* ev, needle_node parent, needle_field field);
  needle_node (*ev_array_f)(needle_event* ev, needle_node parent, needle_field field);
  void (*ev_set_str_f)(needle_event* ev, needle_node parent, needle_field field,
                       const char* value, size_t value_len);
  void (*ev_set_int_f)(needle_event* ev, needle_node parent, needle_field field, int64_t value);
  void (*ev_set_uint_f)(needle_event* ev, needle_node parent, needle_field field,
                        uint64_t value);
  void (*ev_set_bool_f)(needle_event* ev, needle_node parent, needle_field field, int32_t value);
  needle_node (*ev_find_f)(const needle_event* ev, needle_node parent, needle_field field);
  /* Sets `field` under `parent` in `ev` to a copy of node `src_node` of `src` (another event,
   * e.g. one from event_new that a plugin keeps as a template and never submits): building a
   * subtree once and copying it costs a fraction of setting its fields again. An existing field
   * is replaced. Returns the copy's node, or NEEDLE_NO_NODE. From the second copy of an object
   * or array out of an unchanged `src` the host may share one immutable subtree among the
   * events instead of copying it; nothing a plugin can see differs (a write below it copies it
   * into that event first; node ids read below it stay valid). Keep a template unchanged while
   * it is in use. */
  needle_node (*ev_copy_f)(needle_event* ev, needle_node parent, needle_field field,
                           const needle_event* src, needle_node src_node);

  /* 1.3: reads by handle in one call, each the same as ev_find_f followed by its ev_get_ twin
   * (NEEDLE_INVALID when the field is missing or of another type), at about half the cost. */
  needle_rc (*ev_get_str_f)(const needle_event* ev, needle_node parent, needle_field field,
                            const char** out, size_t* out_len);
  needle_rc (*ev_get_int_f)(const needle_event* ev, needle_node parent, needle_field field,
                            int64_t* out);
  needle_rc (*ev_get_uint_f)(const needle_event* ev, needle_node parent, needle_field field,
                             uint64_t* out);
  /* 1.3: adds under `field` (an object, made when missing; a value of another type there is
   * replaced by one) a copy of each member of the object `src_node` of `src` (another event, such
   * as a template) that it lacks by name; members it has are kept. Returns the object's node, or
   * NEEDLE_NO_NODE (src_node not an object). One call for what is otherwise a find and a set
   * per member; as with ev_copy_f, the host may share the result among events when the same
   * merge from the same unchanged template repeats. */
  needle_node (*ev_merge_f)(needle_event* ev, needle_node parent, needle_field field,
                            const needle_event* src, needle_node src_node);
} needle_host_api;

/* A plugin's slots. All kinds share the lifecycle; the rest depends on the kind. Unless a slot
 * says otherwise, needle calls it from one thread at a time. */
typedef struct needle_plugin_vtable {
  uint32_t struct_size;
  uint32_t reserved;

  /* Required. Validates `cfg` and builds the instance; no kernel or network I/O (this is all
   * `needle check` runs). On failure set an error naming the key and return NEEDLE_INVALID. */
  needle_rc (*create)(const needle_host_api* api, needle_host* host, const needle_config* cfg,
                      needle_plugin** out);
  /* Optional. Called once after every BPF object is attached, before events flow. */
  needle_rc (*start)(needle_plugin* self);
  /* Optional. Bounded: returns within the host's shutdown_timeout; stops the plugin's threads. */
  void (*stop)(needle_plugin* self);
  /* Required. Frees the instance. */
  void (*destroy)(needle_plugin* self);

  /* Sources. `bpf_spec` is required for a source with a kernel side. */
  needle_rc (*bpf_spec)(needle_plugin* self, needle_bpf_spec* out);
  /* Optional: set `const volatile` globals (bpf_set_global) before load. */
  needle_rc (*bpf_configure)(needle_plugin* self, needle_bpf* bpf);
  /* Optional: fill maps after load, before attach. */
  needle_rc (*bpf_loaded)(needle_plugin* self, needle_bpf* bpf);
  /* Required for sources: decodes one record (header included) into `ev`. Ring thread. The
   * record is valid only during the call. NEEDLE_OK emits, NEEDLE_SKIP drops silently,
   * NEEDLE_ERROR counts a decode gap. */
  needle_rc (*decode)(needle_plugin* self, const void* record, size_t len, needle_event* ev);

  /* Enrichers. Pipeline thread. NEEDLE_OK: done. NEEDLE_PENDING: park the event until
   * *deadline_ns (boot clock) at most, then call enrich again (with the deadline passed, the
   * plugin must finish and mark what it could not fill as incomplete). *deadline_ns is 1 on
   * entry when the event must go on at once (shutdown, too many parked), on a first visit too:
   * finish then as well. */
  needle_rc (*enrich)(needle_plugin* self, needle_event* ev, uint64_t* deadline_ns);

  /* Sinks. Sink thread. `items` are encoded events in the format the instance was configured
   * with. NEEDLE_OK acknowledges the whole batch; NEEDLE_RETRY offers it again later. */
  needle_rc (*write)(needle_plugin* self, const void* const* items, const size_t* lens,
                     size_t count);
  /* Optional: make written data durable (called at shutdown and periodically). */
  needle_rc (*flush)(needle_plugin* self);
  /* Optional: reopen files (SIGHUP). Any thread; the plugin synchronises. */
  void (*reopen)(needle_plugin* self);

  /* Any kind, optional: `needle check --connect` calls this after create to dial the
   * endpoints the instance would use; NEEDLE_ERROR with a message naming the endpoint when one
   * is unreachable. Must return within a few seconds. */
  needle_rc (*check_connect)(needle_plugin* self);
  /* 1.1 and later: append here, never reorder. */
} needle_plugin_vtable;

/* What the entry symbol returns: a static descriptor that lives as long as the library. */
typedef struct needle_plugin_descriptor {
  uint32_t struct_size;
  uint32_t abi_major;          /* NEEDLE_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;
  uint32_t kind;               /* NEEDLE_KIND_* */
  const char* name;            /* e.g. "process"; the file is needle-<kind>-<name>.so */
  const char* version;         /* the plugin's own semver */
  const char* description;     /* one line */
  const char* status;          /* "stable", "alpha" or "wip" */
  const needle_config_key* keys;
  size_t key_count;
  uint32_t key_size;           /* sizeof(needle_config_key) as the plugin compiled it */
  uint32_t reserved;
  const needle_plugin_vtable* vtable;
} needle_plugin_descriptor;

typedef const needle_plugin_descriptor* (*needle_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* NEEDLE_ABI_H */
