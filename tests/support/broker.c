/* SPDX-License-Identifier: Apache-2.0 */
/* broker.c — see broker.h; test_start_devbroker's real-broker branch. */
#include "broker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

bool test_broker_is_real(void)
{
    const char *b = getenv("SMPOST_TEST_BROKER");
    return b && strcmp(b, "realkafka") == 0;
}

int test_broker_check(const char *test_name)
{
    if (!test_broker_is_real())
        return 0;
    const char *k = getenv("SMPOST_TEST_KAFKA");
    if (k && *k)
        return 0;
    const char *ci = getenv("CI");
    bool in_ci = ci && strcmp(ci, "true") == 0;
    printf("%s: %s needs a real Kafka broker: set SMPOST_TEST_KAFKA to scripts/kafka.sh "
           "(.ci/run does)%s\n",
           in_ci ? "FAILED" : "SKIPPED", test_name, in_ci ? "; CI must run it" : "");
    return in_ci ? 1 : 77;
}

int test_broker_refusal_ms(void) { return test_broker_is_real() ? 20000 : 10000; }

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs the launcher with args, its stdout to out_path, and waits for it
 * (bounded: the first run downloads the broker). */
static bool run_launcher(char *const args[], const char *out_path)
{
    const char *launcher = getenv("SMPOST_TEST_KAFKA");
    char *argv[8] = {(char *)launcher};
    for (int i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    test_proc p = {0};
    if (!launcher || !test_proc_start_out(&p, argv, out_path, out_path))
        return false;
    int status = 0;
    for (int waited = 0; waited < 300000; waited += 50) {
        if (waitpid(p.pid, &status, WNOHANG) == p.pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        sleep_ms(50);
    }
    kill(p.pid, SIGKILL);
    waitpid(p.pid, &status, 0);
    return false;
}

static bool read_pid(test_proc *p)
{
    char path[340];
    snprintf(path, sizeof path, "%s/kafka.pid", p->kafka_dir);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f && fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    if (f)
        fclose(f);
    p->pid = (pid_t)pid;
    return pid > 0;
}

static bool start_real(test_proc *p, const char *dir, int partitions, char *bootstrap,
                       size_t cap, bool secure);

bool test_start_real_kafka(test_proc *p, const char *dir, int partitions, char *bootstrap,
                           size_t cap)
{
    return start_real(p, dir, partitions, bootstrap, cap, false);
}

bool test_start_secure_kafka(test_proc *p, const char *dir, int partitions, char *bootstrap,
                             size_t cap)
{
    return start_real(p, dir, partitions, bootstrap, cap, true);
}

bool test_kafka_client_config(const test_proc *broker, const char *user, char *out, size_t cap)
{
    char path[400], line[512];
    snprintf(path, sizeof path, "%s/%s.conf", broker->kafka_dir, user);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t len = 0;
    out[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        int w = snprintf(out + len, cap - len, "%s%s", len ? "," : "", line);
        if (w < 0 || (size_t)w >= cap - len) {
            fclose(f);
            return false;
        }
        len += (size_t)w;
    }
    fclose(f);
    return len > 0;
}

bool test_kafka_mtls_bootstrap(const test_proc *broker, char *out, size_t cap)
{
    char path[360];
    snprintf(path, sizeof path, "%s.out", broker->kafka_dir);
    return test_wait_for_line(path, "KAFKA_MTLS_BOOTSTRAP_SERVERS", out, cap, 0);
}

static bool start_real(test_proc *p, const char *dir, int partitions, char *bootstrap,
                       size_t cap, bool secure)
{
    static int n;
    char out[360], parts[16];
    /* the launcher leaves the broker running in the background: adopt it */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    snprintf(p->kafka_dir, sizeof p->kafka_dir, "%s/kafka-%d", dir, ++n);
    snprintf(out, sizeof out, "%s.out", p->kafka_dir);
    snprintf(parts, sizeof parts, "%d", partitions);
    setenv("KAFKA_PARTITIONS", parts, 1);
    char *args[] = {"start", p->kafka_dir, secure ? "--secure" : NULL, NULL};
    p->frozen = p->refused = false;
    if (!run_launcher(args, out) || !read_pid(p)) {
        fprintf(stderr, "# the real Kafka broker did not start: see %s\n", out);
        return false;
    }
    return test_wait_for_line(out, "KAFKA_BOOTSTRAP_SERVERS", bootstrap, cap, 0);
}

bool test_broker_topic_config(test_proc *broker, const char *topic, const char *setting)
{
    char out[360];
    snprintf(out, sizeof out, "%s.config.out", broker->kafka_dir);
    char *args[] = {"config", broker->kafka_dir, (char *)topic, (char *)setting, NULL};
    return broker->kafka_dir[0] && run_launcher(args, out);
}

bool test_broker_topic(test_proc *broker, bool create, const char *topic, int partitions)
{
    char out[360], parts[16];
    snprintf(out, sizeof out, "%s.topic.out", broker->kafka_dir);
    snprintf(parts, sizeof parts, "%d", partitions);
    char *args[] = {"topic", broker->kafka_dir, create ? "create" : "delete", (char *)topic,
                    parts, NULL};
    return broker->kafka_dir[0] && run_launcher(args, out);
}

/* Every write to the event topic refused for good: batches over the
 * topic's max.message.bytes fail with MSG_SIZE_TOO_LARGE, not retried. */
static bool refuse_writes(test_proc *p, bool refuse)
{
    const char *t = getenv("KAFKA_TOPIC");
    return test_broker_topic_config(p, t && *t ? t : "SocialMediaPostEvents",
                                    refuse ? "max.message.bytes=1"
                                           : "max.message.bytes=" TEST_KAFKA_MAX_MESSAGE_BYTES);
}

static bool real_fault(test_proc *p, test_broker_fault f)
{
    char out[360];
    switch (f) {
    case TEST_BROKER_DOWN:
        if (p->frozen)
            kill(p->pid, SIGCONT);
        p->frozen = false;
        test_proc_stop(p, SIGTERM, 20000); /* the JVM exits 143 */
        return true;
    case TEST_BROKER_FREEZE:
        p->frozen = kill(p->pid, SIGSTOP) == 0;
        return p->frozen;
    case TEST_BROKER_REFUSE:
        p->refused = refuse_writes(p, true);
        return p->refused;
    case TEST_BROKER_UP:
        if (p->frozen) {
            p->frozen = false;
            return kill(p->pid, SIGCONT) == 0;
        }
        if (p->refused) {
            p->refused = false;
            return refuse_writes(p, false);
        }
        if (p->pid > 0)
            return true;
        snprintf(out, sizeof out, "%s.restart.out", p->kafka_dir);
        char *args[] = {"restart", p->kafka_dir, NULL};
        return run_launcher(args, out) && read_pid(p);
    }
    return false;
}

bool test_broker_fault_inject(test_proc *broker, test_broker_fault f)
{
    if (broker->kafka_dir[0])
        return real_fault(broker, f);
    static const int sig[] = {[TEST_BROKER_DOWN] = SIGUSR1, [TEST_BROKER_UP] = SIGUSR2,
                              [TEST_BROKER_FREEZE] = SIGWINCH, [TEST_BROKER_REFUSE] = SIGHUP};
    return broker->pid > 0 && kill(broker->pid, sig[f]) == 0;
}
