/* SPDX-License-Identifier: Apache-2.0 */
/* fault_proc.c — see fault_proc.h. */
#include "fault_proc.h"
#include "sm_time.h"

#include "http_client.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

bool fp_wait_up(test_proc *p, int timeout_ms)
{
    for (int64_t until = sm_mono_ms() + timeout_ms; sm_mono_ms() < until;) {
        int status;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return false;
        }
        http_resp r;
        if (http_call(p->port, "GET", "/health", "", NULL, 0, 1000, &r) == 0) {
            http_resp_free(&r);
            return true;
        }
        sm_sleep_ms(50);
    }
    return false;
}

void fp_start_service(const char *dir, test_proc *p, char *const argv[], const char *name)
{
    char log[320];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    for (int attempt = 0; attempt < 20; attempt++) {
        assert_true(test_proc_start(p, argv, log));
        if (fp_wait_up(p, 30000))
            return;
        if (p->pid > 0)
            test_proc_stop(p, SIGKILL, 1000);
        sm_sleep_ms(250);
    }
    fail_msg("%s did not start on port %d; see %s", name, p->port, log);
}

int fp_wait_exit(test_proc *p, int timeout_ms)
{
    int status = 0;
    for (int64_t until = sm_mono_ms() + timeout_ms;;) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid)
            break;
        if (sm_mono_ms() >= until) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            p->pid = 0;
            return -1;
        }
        sm_sleep_ms(10);
    }
    p->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void fp_stop_gracefully(test_proc *p, const char *name, int bound_ms)
{
    int64_t t0 = sm_mono_ms();
    kill(p->pid, SIGTERM);
    int rc = fp_wait_exit(p, bound_ms);
    int64_t took = sm_mono_ms() - t0;
    printf("# %s: SIGTERM -> exit %d after %lld ms (bound %d ms)\n", name, rc, (long long)took,
           bound_ms);
    if (rc != 0)
        fail_msg("%s did not exit 0 within %d ms of SIGTERM (status %d)", name, bound_ms, rc);
}

void fp_kill9(test_proc *p, const char *name)
{
    assert_int_equal(test_proc_stop(p, SIGKILL, 5000), 128 + SIGKILL);
    printf("# %s: killed with SIGKILL\n", name);
}

double fp_metric(int port, const char *name)
{
    http_resp r;
    double v = -1;
    if (http_call(port, "GET", "/metrics", "", NULL, 0, 10000, &r) == 0) {
        char key[128];
        snprintf(key, sizeof key, "\n%s ", name);
        const char *at = r.body ? strstr(r.body, key) : NULL;
        if (at)
            v = strtod(at + strlen(key), NULL);
        http_resp_free(&r);
    }
    return v;
}

json_t *fp_health(int port, int timeout_ms)
{
    http_resp r;
    if (http_call(port, "GET", "/health", "", NULL, 0, timeout_ms, &r) != 0)
        return NULL;
    json_t *j = r.json ? json_incref(r.json) : NULL;
    http_resp_free(&r);
    return j;
}

long fp_count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

int fp_finish(test_proc *broker, const char *dir, bool passed)
{
    if (broker->pid > 0)
        test_proc_stop(broker, SIGTERM, 5000);
    if (passed && !getenv("SMPOST_TEST_KEEP"))
        test_rm_rf(dir);
    else
        printf("# logs and databases kept in %s\n", dir);
    return 0;
}
