// The record of the sysargs test source: what a getpgid exit handler was handed.
#ifndef NEEDLE_TESTS_SYS_ARGS_RECORD_H
#define NEEDLE_TESTS_SYS_ARGS_RECORD_H

#include "needle/bpf/record.h"

#define SYS_ARGS_ENTER_WORD 0x5a5au   /* what the enter handler leaves in `reserved` */

struct sys_args_record {
  struct needle_record_header hdr;
  __u64 arg0;       /* getpgid's pid argument */
  __u64 enter_ns;   /* 0 unless an enter hook saw the syscall */
  __s64 ret;
  __u32 word;       /* `reserved` as the exit handler found it */
  __u32 pad;
};

#endif
