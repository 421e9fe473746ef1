/* SPDX-License-Identifier: Apache-2.0 */
/* proc.c — see proc.h. */
#include "proc.h"

#include "broker.h"
#include "http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

bool test_temp_dir(const char *prefix, char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    return mkdtemp(out) != NULL;
}

static void redirect(const char *path, int fd_to)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, fd_to);
        close(fd);
    }
}

bool test_proc_start_out(test_proc *p, char *const argv[], const char *out_path,
                         const char *log_path)
{
    p->pid = fork();
    if (p->pid < 0)
        return false;
    if (p->pid == 0) {
        if (out_path)
            redirect(out_path, STDOUT_FILENO);
        if (log_path)
            redirect(log_path, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    return true;
}

bool test_wait_for_line(const char *path, const char *key, char *out, size_t cap,
                        int timeout_ms)
{
    size_t klen = strlen(key);
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        FILE *f = fopen(path, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
                line[strcspn(line, "\r\n")] = '\0';
                snprintf(out, cap, "%s", line + klen + 1);
                fclose(f);
                return true;
            }
        }
        if (f)
            fclose(f);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

bool test_start_devbroker(test_proc *p, const char *bin, const char *dir, int partitions,
                          char *bootstrap, size_t cap)
{
    if (test_broker_is_real())
        return test_start_real_kafka(p, dir, partitions, bootstrap, cap);
    char out[512], log[512], parts[16];
    static int n;
    snprintf(out, sizeof out, "%s/devbroker-%d.out", dir, ++n);
    snprintf(log, sizeof log, "%s/devbroker-%d.log", dir, n);
    snprintf(parts, sizeof parts, "%d", partitions);
    char *argv[] = {(char *)bin, "--partitions", parts, NULL};
    return test_proc_start_out(p, argv, out, log) &&
           test_wait_for_line(out, "SMPOST_KAFKA_BOOTSTRAP", bootstrap, cap, 10000);
}

bool test_proc_start(test_proc *p, char *const argv[], const char *log_path)
{
    p->pid = fork();
    if (p->pid < 0)
        return false;
    if (p->pid == 0) {
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, STDERR_FILENO);
                close(fd);
            }
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return true;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool test_proc_wait_http(int port, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        http_resp r;
        if (http_call(port, "GET", "/health", "", NULL, 0, 1000, &r) == 0) {
            http_resp_free(&r);
            return true;
        }
        sleep_ms(50);
    }
    return false;
}

int test_proc_stop(test_proc *p, int sig, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    int status = 0;
    for (int waited = 0;; waited += 20) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (waited >= timeout_ms) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        sleep_ms(20);
    }
    p->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void test_rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }
