/* SPDX-License-Identifier: Apache-2.0 */
/* proc.h — start and stop the real binaries from tests. */
#ifndef TEST_PROC_H
#define TEST_PROC_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct test_proc {
    pid_t pid;
    int port;
    /* A real Kafka broker (broker.h): its scripts/kafka.sh directory and
     * the faults in force. */
    char kafka_dir[300];
    bool frozen, refused;
} test_proc;

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0). */
int test_free_port(void);

/* A fresh empty directory under $TMPDIR (or /tmp) for one test; path is
 * written to out (cap bytes). Returns false on failure. */
bool test_temp_dir(const char *prefix, char *out, size_t cap);

/* Starts argv[0] with argv, stderr appended to log_path (NULL: inherit).
 * Returns false if fork/exec failed. */
bool test_proc_start(test_proc *p, char *const argv[], const char *log_path);

/* Like test_proc_start, with stdout written to out_path (NULL: inherit). */
bool test_proc_start_out(test_proc *p, char *const argv[], const char *out_path,
                         const char *log_path);

/* Waits up to timeout_ms for a line "KEY=value" in the file at path and
 * copies value to out. */
bool test_wait_for_line(const char *path, const char *key, char *out, size_t cap,
                        int timeout_ms);

/* Starts smpost-devbroker (binary path bin) with its stdout/stderr in dir;
 * fills bootstrap. In a realkafka test (broker.h) starts a real Kafka
 * broker instead, in a directory under dir, with `partitions` partitions
 * of the event topic; p->pid is then the broker's JVM, which this process
 * adopts (it becomes a child subreaper) so that test_proc_stop can reap it. */
bool test_start_devbroker(test_proc *p, const char *bin, const char *dir, int partitions,
                          char *bootstrap, size_t cap);

/* Polls GET /health until it answers (any status) or timeout_ms passes. */
bool test_proc_wait_http(int port, int timeout_ms);

/* Sends sig and waits up to timeout_ms; SIGKILLs after that. Returns the
 * exit status (128+signal if killed by one). */
int test_proc_stop(test_proc *p, int sig, int timeout_ms);

/* rm -rf path (test directories only). */
void test_rm_rf(const char *path);

#endif
