/* exec_storm: forks and execs a program N times as fast as the machine allows, from W workers,
 * and prints how long it took. Used by tests/bench/storm.sh to load needle. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: exec_storm COUNT WORKERS PROGRAM [ARGS...]\n");
    return 2;
  }
  long count = atol(argv[1]);
  long workers = atol(argv[2]);
  if (count <= 0 || workers <= 0) {
    fprintf(stderr, "exec_storm: COUNT and WORKERS must be positive\n");
    return 2;
  }
  double t0 = now();
  for (long w = 0; w < workers; ++w) {
    if (fork() == 0) {
      long mine = count / workers + (w < count % workers ? 1 : 0);
      for (long i = 0; i < mine; ++i) {
        pid_t p = fork();
        if (p == 0) {
          execv(argv[3], argv + 3);
          _exit(127);
        }
        waitpid(p, NULL, 0);
      }
      _exit(0);
    }
  }
  while (wait(NULL) > 0) {
  }
  double secs = now() - t0;
  printf("execs %ld seconds %.3f rate %.0f/s\n", count, secs, (double)count / secs);
  return 0;
}
