/* bench_floor: the floor tracers of tests/bench/overhead.sh (FLOOR="hook record"), the cost any
 * syscall-hook sensor pays on this kernel, measured in the same run as needle.
 *
 *   bench_floor hook      an empty sys_exit program (the syscall slow path and the tracepoint)
 *   bench_floor record    a 64-byte ring record per syscall of the set below, batched wakeups,
 *                         and a consumer that only counts (the batched floor)
 *
 * Prints "floor running: PROGRAM" on stderr once attached; on SIGTERM or SIGINT it drains the
 * ring, detaches and prints "floor records N drops D" on stdout. Programs: floor.bpf.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

extern const char needle_bpf_bench_floor[];
extern const char needle_bpf_bench_floor_end[];

#define FLOOR_NR_MAX 512

struct floor_config {   /* floor.bpf.c */
  uint64_t wanted[FLOOR_NR_MAX / 64];
  uint64_t wakeup_bytes;
};

/* One per event a sensor reports on the workloads of bench_load: exec and fork (clone returns
 * in parent and child), open, connect and accept, DNS sends and receives, signals. */
static const int kRecorded[] = {
    SYS_execve, SYS_execveat, SYS_fork,    SYS_vfork,   SYS_clone,   SYS_clone3,
    SYS_open,   SYS_openat,   SYS_openat2, SYS_creat,   SYS_connect, SYS_accept,
    SYS_accept4, SYS_sendto,  SYS_sendmsg, SYS_recvfrom, SYS_recvmsg, SYS_kill,
    SYS_tgkill,  SYS_tkill,
};

static volatile sig_atomic_t stop;
static unsigned long long records;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int on_record(void* ctx, void* data, size_t size) {
  (void)ctx;
  (void)data;
  (void)size;
  records++;
  return 0;
}

static int quiet(enum libbpf_print_level level, const char* fmt, va_list args) {
  return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

/* Opens the object with only `name` set to load, and loads it; NULL (reason printed) on
 * failure. */
static struct bpf_object* load(const char* name) {
  size_t size = (size_t)(needle_bpf_bench_floor_end - needle_bpf_bench_floor);
  struct bpf_object* obj = bpf_object__open_mem(needle_bpf_bench_floor, size, NULL);
  if (!obj) {
    fprintf(stderr, "bench_floor: cannot open the BPF object: %s\n", strerror(errno));
    return NULL;
  }
  struct bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    bpf_program__set_autoload(p, strcmp(bpf_program__name(p), name) == 0);
  }
  if (bpf_object__load(obj) != 0) {
    fprintf(stderr, "bench_floor: %s does not load: %s\n", name, strerror(errno));
    bpf_object__close(obj);
    return NULL;
  }
  return obj;
}

int main(int argc, char** argv) {
  if (argc != 2 || (strcmp(argv[1], "hook") != 0 && strcmp(argv[1], "record") != 0)) {
    fprintf(stderr, "usage: bench_floor hook|record\n");
    return 2;
  }
  libbpf_set_print(quiet);
  const char* mode = argv[1];
  char name[64];
  const char* rungs[] = {"tp_btf", "raw_tp"};
  struct bpf_object* obj = NULL;
  for (size_t i = 0; i < 2 && !obj; ++i) {
    snprintf(name, sizeof name, "floor_%s_%s", mode, rungs[i]);
    obj = load(name);
  }
  if (!obj) {
    return 1;
  }
  struct floor_config cfg;
  memset(&cfg, 0, sizeof cfg);
  for (size_t i = 0; i < sizeof kRecorded / sizeof kRecorded[0]; ++i) {
    cfg.wanted[kRecorded[i] / 64] |= 1ull << (kRecorded[i] % 64);
  }
  struct bpf_map* ring = bpf_object__find_map_by_name(obj, "floor_ring");
  struct bpf_map* config = bpf_object__find_map_by_name(obj, "floor_config_map");
  if (!ring || !config) {
    fprintf(stderr, "bench_floor: the object lacks its maps\n");
    return 1;
  }
  cfg.wakeup_bytes = bpf_map__max_entries(ring) / 8;   /* needle's: ring_kib / 8 */
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(config), &zero, &cfg, BPF_ANY) != 0) {
    fprintf(stderr, "bench_floor: cannot write the config: %s\n", strerror(errno));
    return 1;
  }
  struct ring_buffer* rb = ring_buffer__new(bpf_map__fd(ring), on_record, NULL, NULL);
  if (!rb) {
    fprintf(stderr, "bench_floor: cannot read the ring: %s\n", strerror(errno));
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;   /* no SA_RESTART: the poll returns */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  struct bpf_program* prog = bpf_object__find_program_by_name(obj, name);
  struct bpf_link* link = prog ? bpf_program__attach(prog) : NULL;
  if (!link) {
    fprintf(stderr, "bench_floor: cannot attach %s: %s\n", name, strerror(errno));
    return 1;
  }
  fprintf(stderr, "floor running: %s\n", name);
  while (!stop) {
    int n = ring_buffer__poll(rb, 50);   /* needle's default ring_flush_ms */
    if (n < 0 && n != -EINTR) {
      fprintf(stderr, "bench_floor: ring poll failed: %s\n", strerror(-n));
      return 1;
    }
    ring_buffer__consume(rb);
  }
  bpf_link__destroy(link);
  while (ring_buffer__consume(rb) > 0) {
  }
  unsigned long long drops = 0;
  int ncpu = libbpf_num_possible_cpus();
  uint64_t per_cpu[ncpu > 0 ? ncpu : 1];
  struct bpf_map* dm = bpf_object__find_map_by_name(obj, "floor_drops");
  if (ncpu > 0 && dm && bpf_map_lookup_elem(bpf_map__fd(dm), &zero, per_cpu) == 0) {
    for (int i = 0; i < ncpu; ++i) {
      drops += per_cpu[i];
    }
  }
  printf("floor records %llu drops %llu\n", records, drops);
  ring_buffer__free(rb);
  bpf_object__close(obj);
  return 0;
}
