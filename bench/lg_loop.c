/* SPDX-License-Identifier: Apache-2.0 */
/* lg_loop.c — see lg_loop.h.
 *
 * Shape: a job is one request with what it needs to be measured; a pool
 * holds the connections to one server (the one under load, or the query
 * API in lag mode) with a stack of idle ones and a queue of jobs waiting
 * for a connection. Submitting a job takes an idle connection, opens a new
 * one while the pool is below its size, or queues. When a connection has
 * read a whole answer it finishes the job (samples, follow-up lag probe,
 * next closed-loop request) and takes the next queued job or goes idle.
 *
 * A connection closed while epoll may still report events for it is not
 * freed at once but parked on a dead list, freed after the batch. */
#include "lg_request.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

enum { PRIMARY = 0, QUERY = 1 };

typedef struct job {
    int server;         /* PRIMARY or QUERY */
    lg_request req;
    bool measured;      /* counts toward the results (not warm-up) */
    int64_t start_ns;   /* due (open loop), made (closed loop), command answered (probe) */
    struct job *next;
} job;

typedef struct conn {
    int fd;             /* -1 once closed */
    int server;
    bool connecting;
    job *job;           /* in flight, or NULL when idle */
    const char *token;  /* its bearer token (lg_opts.tokens), or NULL */
    size_t out_off;
    char *in;
    size_t in_len, in_cap;
    struct conn *next;  /* idle stack or dead list */
} conn;

typedef struct pool {
    const lg_url *url;
    int n, max;         /* open connections, and the most allowed */
    conn *idle;
    job *q_head, *q_tail;
} pool;

typedef struct worker {
    const lg_opts *o;
    lg_result *r;
    int index;
    int ep;
    pool pools[2];
    conn **all;         /* every open connection, for the final cleanup */
    size_t nall;
    conn *dead;
    uint64_t rng;
    long seq;           /* primary jobs made */
    long opened;        /* primary connections opened (for their tokens) */
    long count;         /* by count: this worker's share */
    long in_flight;     /* jobs submitted and not done (both pools) */
    long commands_ok;   /* lag mode: successful commands, for lag_every */
    int64_t t0, t_measure, t_end;
    bool stop;          /* no more primary jobs */
} worker;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t next_rand(worker *w)
{
    w->rng ^= w->rng << 13; /* xorshift64 */
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

/* Counts a failure; the first one's text is kept for the report. */
static void note_error(worker *w, const char *msg)
{
    w->r->errors++;
    if (w->r->first_error[0])
        return;
    size_t n = strlen(msg);
    if (n >= sizeof w->r->first_error)
        n = sizeof w->r->first_error - 1;
    memcpy(w->r->first_error, msg, n);
    w->r->first_error[n] = '\0';
}

static void free_job(job *j)
{
    if (j) {
        lg_request_free(&j->req);
        free(j);
    }
}

/* ---- connections ---- */

static void watch(worker *w, conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Closes c (its job, if any, is the caller's) and parks it for freeing. */
static void conn_close(worker *w, conn *c)
{
    pool *p = &w->pools[c->server];
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    p->n--;
    for (conn **l = &p->idle; *l; l = &(*l)->next)
        if (*l == c) {
            *l = c->next;
            break;
        }
    for (size_t i = 0; i < w->nall; i++)
        if (w->all[i] == c) {
            w->all[i] = w->all[--w->nall];
            break;
        }
    c->next = w->dead;
    w->dead = c;
}

static void free_dead(worker *w)
{
    while (w->dead) {
        conn *c = w->dead;
        w->dead = c->next;
        free(c->in);
        free(c);
    }
}

/* A new non-blocking connection of pool `server`, connecting. NULL if the
 * socket cannot even be started (the caller queues its job). */
static conn *conn_open(worker *w, int server)
{
    pool *p = &w->pools[server];
    conn **all = realloc(w->all, (w->nall + 1) * sizeof *all);
    if (!all)
        return NULL;
    w->all = all;
    int one = 1, fd = socket(p->url->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    conn *c = calloc(1, sizeof *c);
    if (!c || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        (connect(fd, (const struct sockaddr *)&p->url->addr, p->url->addr_len) != 0 &&
         errno != EINPROGRESS)) {
        close(fd);
        free(c);
        return NULL;
    }
    c->fd = fd;
    c->server = server;
    c->connecting = true;
    if (server == PRIMARY && w->o->ntokens > 0) /* workers take interleaved tokens */
        c->token = w->o->tokens[(size_t)(w->opened++ * w->o->threads + w->index) %
                                w->o->ntokens];
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev);
    w->all[w->nall++] = c;
    p->n++;
    w->r->connects++;
    return c;
}

/* Writes what is left of the job's request; waits for EPOLLOUT if the
 * socket is full. Returns false if the connection failed. */
static bool conn_flush(worker *w, conn *c)
{
    const lg_request *r = &c->job->req;
    while (c->out_off < r->len) {
        ssize_t n = write(c->fd, r->text + c->out_off, r->len - c->out_off);
        if (n < 0 && errno == EAGAIN) {
            watch(w, c, EPOLLOUT);
            return true;
        }
        if (n <= 0)
            return false;
        c->out_off += (size_t)n;
    }
    watch(w, c, EPOLLIN);
    return true;
}

static void conn_fail(worker *w, conn *c, const char *why);

static void conn_start(worker *w, conn *c, job *j)
{
    c->job = j;
    c->out_off = 0;
    c->in_len = 0;
    if (c->token && !lg_request_authorize(&j->req, c->token)) {
        conn_fail(w, c, "out of memory");
        return;
    }
    if (!c->connecting && !conn_flush(w, c))
        conn_fail(w, c, "write failed");
}

/* ---- jobs ---- */

static void submit(worker *w, job *j)
{
    pool *p = &w->pools[j->server];
    w->in_flight++;
    conn *c = p->idle;
    if (c) {
        p->idle = c->next;
        conn_start(w, c, j);
        return;
    }
    if (p->n < p->max && (c = conn_open(w, j->server))) {
        conn_start(w, c, j);
        return;
    }
    if (w->o->rate > 0)
        w->r->queued++;
    j->next = NULL;
    if (p->q_tail)
        p->q_tail->next = j;
    else
        p->q_head = j;
    p->q_tail = j;
}

/* Gives queued jobs of pool `server` the connections it may still open. */
static void pump(worker *w, int server)
{
    pool *p = &w->pools[server];
    conn *c;
    while (p->q_head && p->n < p->max && (c = conn_open(w, server))) {
        job *j = p->q_head;
        p->q_head = j->next;
        if (!p->q_head)
            p->q_tail = NULL;
        conn_start(w, c, j);
    }
}

/* Closed loop: one more primary job, if the schedule wants one. */
static void refill(worker *w)
{
    const lg_opts *o = w->o;
    if (o->rate > 0 || w->stop)
        return;
    if (o->count > 0 && w->seq >= w->count) {
        w->stop = true;
        return;
    }
    int64_t now = now_ns();
    job *j = calloc(1, sizeof *j);
    if (!j || !lg_request_make(o, w->index, w->seq, next_rand(w), next_rand(w), &j->req)) {
        free(j);
        note_error(w, "out of memory");
        w->stop = true;
        return;
    }
    j->server = PRIMARY;
    j->start_ns = now;
    j->measured = o->count > 0 ? w->seq >= o->warmup_count : now >= w->t_measure;
    w->seq++;
    submit(w, j);
}

static void job_done(worker *w, job *j)
{
    w->in_flight--;
    free_job(j);
    refill(w);
}

/* A command answered 2xx in lag mode: ask the query side when it sees it. */
static void probe(worker *w, const job *cmd, const lg_response *resp, int64_t now)
{
    char id[48];
    long long version = -1;
    if (cmd->req.kind == LG_NEWPOST) {
        if (!lg_json_str(resp->body, resp->body_len, "id", id, sizeof id)) {
            note_error(w, "lag: NewPost answer without an id");
            return;
        }
    } else {
        snprintf(id, sizeof id, "%s", cmd->req.id);
    }
    if (!lg_json_int(resp->body, resp->body_len, "version", &version)) {
        note_error(w, "lag: command answer without a version");
        return;
    }
    job *q = calloc(1, sizeof *q);
    if (!q || !lg_request_probe(w->o, id, version, &q->req)) {
        free(q);
        note_error(w, "lag: out of memory");
        return;
    }
    q->server = QUERY;
    q->measured = cmd->measured;
    q->start_ns = now;
    submit(w, q);
}

static void keep_id(lg_result *r, const lg_response *resp)
{
    char id[48];
    if (!lg_json_str(resp->body, resp->body_len, "id", id, sizeof id))
        return;
    size_t n = strlen(id);
    if (r->ids_len + n + 2 > r->ids_cap) {
        size_t cap = r->ids_cap ? r->ids_cap * 2 : 65536;
        char *grown = realloc(r->ids_out, cap);
        if (!grown)
            return;
        r->ids_out = grown;
        r->ids_cap = cap;
    }
    memcpy(r->ids_out + r->ids_len, id, n);
    r->ids_len += n;
    r->ids_out[r->ids_len++] = '\n';
    r->ids_out[r->ids_len] = '\0';
}

/* Checks an answer; returns whether it is the one expected. */
static bool judge(worker *w, const job *j, const lg_response *resp)
{
    int cls = resp->status / 100;
    if (cls >= 1 && cls <= 5)
        w->r->statuses[cls]++;
    bool ok = w->o->expect && j->server == PRIMARY ? resp->status == w->o->expect : cls == 2;
    char msg[400];
    if (resp->stale) { /* whatever the status: the answer is not the one asked for */
        w->r->stale++;
        ok = false;
        snprintf(msg, sizeof msg, "stale answer (the minVersion wait timed out) to %.*s",
                 lg_request_line_len(&j->req), j->req.text);
        note_error(w, msg);
    } else if (!ok) {
        snprintf(msg, sizeof msg, "status %d to %.*s: %.*s", resp->status,
                 lg_request_line_len(&j->req), j->req.text,
                 (int)(resp->body_len < 200 ? resp->body_len : 200), resp->body ? resp->body : "");
        note_error(w, msg);
    }
    return ok;
}

/* Keeps one lag probe for --lag-series (dropped on OOM, as samples are). */
static void add_point(lg_result *r, int64_t at_ns, int64_t lag_ns)
{
    if (r->lag_series_len == r->lag_series_cap) {
        size_t cap = r->lag_series_cap ? r->lag_series_cap * 2 : 1024;
        lg_point *p = realloc(r->lag_series, cap * sizeof *p);
        if (!p)
            return;
        r->lag_series = p;
        r->lag_series_cap = cap;
    }
    int64_t us = lag_ns / 1000;
    r->lag_series[r->lag_series_len++] =
        (lg_point){at_ns, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us};
}

/* c has read j's whole answer. */
static void finish(worker *w, conn *c, job *j, const lg_response *resp)
{
    const lg_opts *o = w->o;
    int64_t now = now_ns();
    bool ok = judge(w, j, resp);
    if (j->server == QUERY) {
        if (ok && j->measured) {
            lg_samples_add(&w->r->lag, now - j->start_ns, 0);
            add_point(w->r, now, now - j->start_ns);
        }
    } else if (ok) {
        if (j->measured && (o->count > 0 || o->rate > 0 || now <= w->t_end)) {
            lg_samples_add(&w->r->lat, now - j->start_ns, j->req.target);
            w->r->ok++;
            w->r->body_bytes += (long long)resp->body_len;
        }
        if (j->req.kind == LG_NEWPOST)
            keep_id(w->r, resp);
        if (o->lag && w->commands_ok++ % o->lag_every == 0)
            probe(w, j, resp, now);
    }
    int server = c->server;
    c->job = NULL;
    if (resp->close) /* resp points into c->in: read above, the buffer lives on the dead list */
        conn_close(w, c);
    job_done(w, j);
    if (c->fd < 0) {
        pump(w, server);
        return;
    }
    pool *p = &w->pools[server];
    job *next = p->q_head;
    if (next) {
        p->q_head = next->next;
        if (!p->q_head)
            p->q_tail = NULL;
        conn_start(w, c, next);
    } else {
        c->next = p->idle;
        p->idle = c;
    }
}

static void conn_fail(worker *w, conn *c, const char *why)
{
    job *j = c->job;
    int server = c->server;
    c->job = NULL;
    conn_close(w, c);
    if (j) { /* else an idle keep-alive connection the server closed: not an error */
        char msg[300];
        snprintf(msg, sizeof msg, "connection %s (%s) during %.*s", why, strerror(errno),
                 lg_request_line_len(&j->req), j->req.text);
        note_error(w, msg);
        job_done(w, j);
    }
    pump(w, server);
}

static void on_readable(worker *w, conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 16384;
            char *grown = realloc(c->in, cap);
            if (!grown) {
                conn_fail(w, c, "out of memory");
                return;
            }
            c->in = grown;
            c->in_cap = cap;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0 || !c->job) {
            conn_fail(w, c, n == 0 ? "closed by the server" : n < 0 ? "read failed" : "data");
            return;
        }
        c->in_len += (size_t)n;
        lg_response resp;
        long used = lg_http_parse(c->in, c->in_len, &resp);
        if (used < 0) {
            conn_fail(w, c, "got a malformed answer");
            return;
        }
        if (used > 0) { /* one answer per request: nothing can follow it */
            finish(w, c, c->job, &resp);
            return;
        }
    }
}

static void on_event(worker *w, conn *c, uint32_t events)
{
    if (c->fd < 0)
        return; /* closed earlier in this batch */
    if (c->connecting) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr) {
            errno = soerr;
            conn_fail(w, c, "could not connect");
            return;
        }
        c->connecting = false;
        if (!c->job) {
            watch(w, c, EPOLLIN);
            return;
        }
    }
    if ((events & EPOLLOUT) && c->job && c->out_off < c->job->req.len) {
        if (!conn_flush(w, c))
            conn_fail(w, c, "write failed");
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(w, c);
}

/* ---- the schedule ---- */

static int64_t due_ns(worker *w, long k)
{
    double per_worker = w->o->rate / w->o->threads;
    return w->t0 + (int64_t)((double)k * 1e9 / per_worker);
}

/* Open loop: submits every job due by now. */
static void submit_due(worker *w, int64_t now)
{
    while (!w->stop) {
        int64_t due = due_ns(w, w->seq);
        if (due >= w->t_end) {
            w->stop = true;
            break;
        }
        if (due > now)
            break;
        job *j = calloc(1, sizeof *j);
        if (!j || !lg_request_make(w->o, w->index, w->seq, next_rand(w), next_rand(w), &j->req)) {
            free(j);
            note_error(w, "out of memory");
            w->stop = true;
            break;
        }
        j->server = PRIMARY;
        j->start_ns = due; /* latency from when it was due: no coordinated omission */
        j->measured = due >= w->t_measure;
        w->seq++;
        submit(w, j);
    }
}

static int wait_ms(worker *w, int64_t now)
{
    int64_t until = now + 100 * 1000000LL;
    if (w->o->rate > 0 && !w->stop)
        until = due_ns(w, w->seq);
    else if (w->o->count <= 0 && w->o->rate <= 0)
        until = w->t_end;
    int64_t ms = (until - now + 999999) / 1000000;
    return ms < 0 ? 0 : ms > 100 ? 100 : (int)ms;
}

static bool finished(worker *w, int64_t now)
{
    const lg_opts *o = w->o;
    if (o->count <= 0 && o->rate <= 0)
        return now >= w->t_end; /* closed loop by time: abandon what is in flight */
    if (w->stop && w->in_flight == 0)
        return true;
    if (o->count > 0 && now >= w->t_end) {
        note_error(w, "the requests were not all answered within the time limit (-d)");
        return true;
    }
    return w->stop && o->rate > 0 && now >= w->t_end + (int64_t)(o->grace * 1e9);
}

static long share(const lg_opts *o, int index, long total)
{
    return total / o->threads + (index < total % o->threads);
}

static void cleanup(worker *w)
{
    while (w->nall > 0) {
        conn *c = w->all[0];
        free_job(c->job);
        c->job = NULL;
        conn_close(w, c);
    }
    for (int s = 0; s < 2; s++)
        for (job *j = w->pools[s].q_head, *next; j; j = next) {
            next = j->next;
            free_job(j);
        }
    free_dead(w);
    free(w->all);
    close(w->ep);
}

int lg_worker_run(const lg_opts *o, int index, lg_result *r)
{
    worker w = {.o = o, .r = r, .index = index,
                .rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(index + 1)}; /* never 0 */
    w.ep = epoll_create1(EPOLL_CLOEXEC);
    if (w.ep < 0) {
        note_error(&w, "cannot create an epoll instance");
        return -1;
    }
    long conns = share(o, index, o->conns), qconns = share(o, index, o->query_conns);
    w.pools[PRIMARY] = (pool){.url = &o->url, .max = conns > 0 ? (int)conns : 1};
    w.pools[QUERY] = (pool){.url = &o->query_url, .max = qconns > 0 ? (int)qconns : 1};
    w.count = share(o, index, o->count);
    w.t0 = now_ns();
    w.t_measure = w.t0 + (int64_t)(o->warmup * 1e9);
    w.t_end = w.t_measure + (int64_t)(o->seconds * 1e9);
    if (o->count > 0) /* by count, -d is a time limit */
        w.t_end = w.t0 + (int64_t)((o->seconds > 0 ? o->seconds : 300) * 1e9);
    if (o->rate <= 0)
        for (int i = 0; i < w.pools[PRIMARY].max && !w.stop; i++)
            refill(&w);
    struct epoll_event evs[64];
    int64_t now = now_ns();
    while (!finished(&w, now)) {
        if (o->rate > 0)
            submit_due(&w, now);
        int n = epoll_wait(w.ep, evs, 64, wait_ms(&w, now));
        for (int i = 0; i < n; i++)
            on_event(&w, evs[i].data.ptr, evs[i].events);
        free_dead(&w);
        now = now_ns();
    }
    r->window_s = (double)(o->count > 0 ? now - w.t0 : w.t_end - w.t_measure) / 1e9;
    cleanup(&w);
    return 0;
}

void lg_result_free(lg_result *r)
{
    lg_samples_free(&r->lat);
    lg_samples_free(&r->lag);
    free(r->lag_series);
    free(r->ids_out);
    r->ids_out = NULL;
}
