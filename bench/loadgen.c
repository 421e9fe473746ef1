/* SPDX-License-Identifier: Apache-2.0 */
/* loadgen.c — HTTP/1.1 keep-alive load generator for smpost (bench/run.sh).
 *
 *   loadgen [options] URL KIND[,KIND...]
 *
 * Drives one server with raw sockets, a few epoll threads and N keep-alive
 * connections, in a closed loop (max throughput) or an open loop at a fixed
 * rate, and prints one line of key=value results:
 *
 *   loadgen name=like kind=like mode=closed conns=16 threads=1 seconds=10.000
 *     ok=23456 rps=2345.6 p50_ms=6.1 p90_ms=.. p99_ms=.. max_ms=.. errors=0 ...
 *
 * It is written for this project rather than taken off the shelf so that
 * one tool measures all five figures bench/run.sh reports (including the
 * command -> query lag, which needs the command's answer to build the
 * query) and keeps its own CPU use small on a 2-core machine. The engine
 * is lg_loop.c; see lg_loop.h for the schedules and what is measured.
 *
 * Exit status: 0 when every request got the expected answer, 1 when any
 * failed (a status, a connection, a stale minVersion answer) or none
 * succeeded, 2 for bad usage. Errors are reported, never retried. */
#include "lg_loop.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 16
#define MAX_TARGET_LINES 16

static const char *const kind_names[LG_KIND_COUNT] = {
    [LG_NEWPOST] = "newpost", [LG_LIKE] = "like", [LG_BYID] = "byid",
    [LG_BYAUTHOR] = "byauthor", [LG_GET] = "get",
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: loadgen [options] URL KIND[,KIND...]\n"
            "  URL         http://HOST:PORT of the server under load\n"
            "  KIND        newpost | like | byid | byauthor | get; a list alternates\n"
            "  -c N        connections (16)\n"
            "  -t N        threads (1)\n"
            "  -d SEC      measured seconds (10); with -n a time limit\n"
            "  -w SEC      warm-up seconds before measuring (1)\n"
            "  -n N        closed loop until N answers (instead of by time)\n"
            "  -W N        with -n: do not record the first N answers\n"
            "  -r RATE     open loop: offer RATE requests/s in all\n"
            "  --ids FILE        post ids, one a line (like, byid)\n"
            "  --rr              take ids and authors in turn (default: at random)\n"
            "  --authors N       authors PREFIX0..PREFIX{N-1} (newpost, byauthor; 100)\n"
            "  --author-prefix P (bench-)\n"
            "  --path PATH       path of get (/)\n"
            "  --min-version V   byid: add ?minVersion=V (stale answers are errors)\n"
            "  --expect STATUS   any other status is an error (default: any 2xx)\n"
            "  --lag QUERY_URL   time byId?minVersion= on QUERY_URL after each command\n"
            "  --lag-every N     lag: probe every Nth successful command only (1)\n"
            "  --query-conns N   lag: at most N query connections (24)\n"
            "  --grace SEC       open loop: wait for answers after the last request (5)\n"
            "  --ids-out FILE    write the ids NewPost answered, one a line\n"
            "  --tokens FILE     bearer tokens, one a line: each connection sends one\n"
            "                    (in turn); NewPost then names no author\n"
            "  --header 'N: V'   one more header line on every GET (e.g.\n"
            "                    'Accept-Encoding: gzip')\n"
            "  --pct-out FILE    write the latency distribution: 'percentile ms' lines\n"
            "                    from p1 to p100 (bench/plot.sh plots them)\n"
            "  --lag-series FILE lag mode: write 'seconds lag_ms' per probe, seconds\n"
            "                    from the first probe's answer\n"
            "  --by-target       also print the p50 of each target (at most %d)\n"
            "  --name NAME       label of the output line\n",
            MAX_TARGET_LINES);
}

/* Reads one id (or token) a line into a NULL-terminated array (caller
 * frees). */
static char **read_ids(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char **ids = NULL, *line = NULL;
    size_t len = 0, cap = 0, line_cap = 0;
    while (getline(&line, &line_cap, f) > 0) {
        line[strcspn(line, "\r\n \t")] = '\0';
        if (!line[0])
            continue;
        if (len + 1 >= cap) {
            cap = cap ? cap * 2 : 1024;
            char **grown = realloc(ids, cap * sizeof *ids);
            if (!grown)
                break;
            ids = grown;
        }
        ids[len++] = strdup(line);
        ids[len] = NULL;
    }
    free(line);
    fclose(f);
    *n = len;
    return ids;
}

static bool parse_kinds(char *text, lg_opts *o)
{
    for (char *k = strtok(text, ","); k; k = strtok(NULL, ",")) {
        int found = -1;
        for (int i = 0; i < LG_KIND_COUNT; i++)
            if (strcmp(k, kind_names[i]) == 0)
                found = i;
        if (found < 0 || o->nkinds == LG_MAX_KINDS)
            return false;
        o->kinds[o->nkinds++] = (lg_kind)found;
    }
    return o->nkinds > 0;
}

typedef struct thread_arg {
    const lg_opts *o;
    int index;
    lg_result r;
    pthread_t thread;
} thread_arg;

static void *thread_main(void *arg)
{
    thread_arg *t = arg;
    lg_worker_run(t->o, t->index, &t->r);
    return NULL;
}

/* Sums the workers' results into all (which takes over nothing). */
static void merge(lg_result *all, thread_arg *ts, int n)
{
    for (int i = 0; i < n; i++) {
        lg_result *r = &ts[i].r;
        lg_samples_merge(&all->lat, &r->lat);
        lg_samples_merge(&all->lag, &r->lag);
        all->ok += r->ok;
        all->body_bytes += r->body_bytes;
        all->errors += r->errors;
        all->stale += r->stale;
        all->connects += r->connects;
        all->queued += r->queued;
        for (int c = 0; c < 6; c++)
            all->statuses[c] += r->statuses[c];
        if (r->window_s > all->window_s)
            all->window_s = r->window_s;
        if (!all->first_error[0] && r->first_error[0])
            snprintf(all->first_error, sizeof all->first_error, "%s", r->first_error);
    }
}

static void print_result(const char *name, const char *kinds, const lg_opts *o, lg_result *all)
{
    const char *mode = o->rate > 0 ? "open" : o->count > 0 ? "count" : "closed";
    double rps = all->window_s > 0 ? (double)all->ok / all->window_s : 0;
    printf("loadgen name=%s kind=%s mode=%s conns=%d threads=%d seconds=%.3f ok=%ld rps=%.1f"
           " p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%ld s2xx=%ld s4xx=%ld"
           " s5xx=%ld connects=%ld queued=%ld body_bytes_avg=%lld",
           name, kinds, mode, o->conns, o->threads, all->window_s, all->ok, rps,
           lg_samples_pct(&all->lat, 50, -1), lg_samples_pct(&all->lat, 90, -1),
           lg_samples_pct(&all->lat, 99, -1), lg_samples_pct(&all->lat, 100, -1), all->errors,
           all->statuses[2], all->statuses[4], all->statuses[5], all->connects, all->queued,
           all->ok > 0 ? all->body_bytes / all->ok : 0);
    if (o->rate > 0)
        printf(" offered_rps=%.1f", o->rate);
    if (o->lag)
        printf(" lag_samples=%zu lag_p50_ms=%.3f lag_p90_ms=%.3f lag_p99_ms=%.3f"
               " lag_max_ms=%.3f stale=%ld",
               all->lag.len, lg_samples_pct(&all->lag, 50, -1),
               lg_samples_pct(&all->lag, 90, -1), lg_samples_pct(&all->lag, 99, -1),
               lg_samples_pct(&all->lag, 100, -1), all->stale);
    printf("\n");
}

static int write_ids(const char *path, thread_arg *ts, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (int i = 0; i < n; i++)
        if (ts[i].r.ids_out)
            fputs(ts[i].r.ids_out, f);
    return fclose(f);
}

/* The latency distribution for plots: percentiles spread more densely
 * towards the tail, where the differences are. */
static int write_pct(const char *path, lg_samples *lat)
{
    static const double ps[] = {1,  5,  10, 20, 30,   40,   50,   60,    70,  80,
                                90, 95, 98, 99, 99.5, 99.8, 99.9, 99.95, 99.99, 100};
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "# percentile latency_ms (%zu samples)\n", lat->len);
    for (size_t i = 0; lat->len > 0 && i < sizeof ps / sizeof ps[0]; i++)
        fprintf(f, "%g %.3f\n", ps[i], lg_samples_pct(lat, ps[i], -1));
    return fclose(f);
}

static int cmp_point(const void *a, const void *b)
{
    const lg_point *x = a, *y = b;
    return (x->at_ns > y->at_ns) - (x->at_ns < y->at_ns);
}

/* Every probe of every thread, in time order. */
static int write_lag_series(const char *path, thread_arg *ts, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += ts[i].r.lag_series_len;
    lg_point *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        return -1;
    size_t k = 0;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < ts[i].r.lag_series_len; j++)
            all[k++] = ts[i].r.lag_series[j];
    qsort(all, total, sizeof *all, cmp_point);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(all);
        return -1;
    }
    fprintf(f, "# seconds lag_ms (%zu probes)\n", total);
    for (size_t i = 0; i < total; i++)
        fprintf(f, "%.3f %.3f\n", (double)(all[i].at_ns - all[0].at_ns) / 1e9,
                all[i].lag_us / 1000.0);
    free(all);
    return fclose(f);
}

int main(int argc, char **argv)
{
    lg_opts o = {.conns = 16, .query_conns = 24, .lag_every = 1, .threads = 1, .seconds = 10,
                 .warmup = 1, .grace = 5, .authors = 100, .author_prefix = "bench-", .path = "/",
                 .min_version = -1};
    const char *ids_path = NULL, *ids_out = NULL, *lag_url = NULL, *name = NULL;
    const char *tokens_path = NULL, *pct_out = NULL, *lag_series = NULL;
    bool by_target = false;
    enum { O_IDS = 256, O_RR, O_AUTHORS, O_PREFIX, O_PATH, O_MINV, O_EXPECT, O_LAG, O_QCONNS,
           O_GRACE, O_IDS_OUT, O_BY_TARGET, O_NAME, O_LAG_EVERY, O_TOKENS, O_HEADER, O_PCT_OUT, O_LAG_SERIES, O_HELP };
    static const struct option longs[] = {
        {"ids", 1, 0, O_IDS},          {"rr", 0, 0, O_RR},
        {"authors", 1, 0, O_AUTHORS},  {"author-prefix", 1, 0, O_PREFIX},
        {"path", 1, 0, O_PATH},        {"min-version", 1, 0, O_MINV},
        {"expect", 1, 0, O_EXPECT},    {"lag", 1, 0, O_LAG},
        {"query-conns", 1, 0, O_QCONNS}, {"grace", 1, 0, O_GRACE},
        {"ids-out", 1, 0, O_IDS_OUT},  {"by-target", 0, 0, O_BY_TARGET},
        {"name", 1, 0, O_NAME},        {"lag-every", 1, 0, O_LAG_EVERY},
        {"tokens", 1, 0, O_TOKENS},    {"header", 1, 0, O_HEADER},
        {"pct-out", 1, 0, O_PCT_OUT},  {"lag-series", 1, 0, O_LAG_SERIES},
        {"help", 0, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:t:d:w:n:W:r:h", longs, NULL)) != -1) {
        switch (c) {
        case 'c': o.conns = atoi(optarg); break;
        case 't': o.threads = atoi(optarg); break;
        case 'd': o.seconds = atof(optarg); break;
        case 'w': o.warmup = atof(optarg); break;
        case 'n': o.count = atol(optarg); break;
        case 'W': o.warmup_count = atol(optarg); break;
        case 'r': o.rate = atof(optarg); break;
        case O_IDS: ids_path = optarg; break;
        case O_RR: o.pick_rr = true; break;
        case O_AUTHORS: o.authors = atoi(optarg); break;
        case O_PREFIX: o.author_prefix = optarg; break;
        case O_PATH: o.path = optarg; break;
        case O_MINV: o.min_version = atol(optarg); break;
        case O_EXPECT: o.expect = atoi(optarg); break;
        case O_LAG: lag_url = optarg; break;
        case O_QCONNS: o.query_conns = atoi(optarg); break;
        case O_GRACE: o.grace = atof(optarg); break;
        case O_IDS_OUT: ids_out = optarg; break;
        case O_BY_TARGET: by_target = true; break;
        case O_NAME: name = optarg; break;
        case O_LAG_EVERY: o.lag_every = atoi(optarg); break;
        case O_TOKENS: tokens_path = optarg; break;
        case O_HEADER: o.header = optarg; break;
        case O_PCT_OUT: pct_out = optarg; break;
        case O_LAG_SERIES: lag_series = optarg; break;
        case 'h': case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 2 || o.conns < 1 || o.threads < 1 || o.threads > MAX_THREADS ||
        o.query_conns < 1 || o.lag_every < 1 || o.seconds < 0 || o.warmup < 0 || o.rate < 0 ||
        o.authors < 1) {
        usage(stderr);
        return 2;
    }
    char why[300];
    if (!lg_url_parse(argv[optind], &o.url, why, sizeof why) ||
        (lag_url && !lg_url_parse(lag_url, &o.query_url, why, sizeof why))) {
        fprintf(stderr, "loadgen: %s\n", why);
        return 2;
    }
    o.lag = lag_url != NULL;
    char *kinds = strdup(argv[optind + 1]);
    if (!kinds || !parse_kinds(kinds, &o)) {
        fprintf(stderr, "loadgen: unknown kind in %s\n", argv[optind + 1]);
        return 2;
    }
    free(kinds);
    bool needs_ids = false;
    for (int i = 0; i < o.nkinds; i++)
        needs_ids |= o.kinds[i] == LG_LIKE || o.kinds[i] == LG_BYID;
    if (ids_path && !(o.ids = read_ids(ids_path, &o.nids))) {
        fprintf(stderr, "loadgen: cannot read %s\n", ids_path);
        return 2;
    }
    if (tokens_path && (!(o.tokens = read_ids(tokens_path, &o.ntokens)) || o.ntokens == 0)) {
        fprintf(stderr, "loadgen: no tokens in %s\n", tokens_path);
        return 2;
    }
    if (needs_ids && o.nids == 0) {
        fprintf(stderr, "loadgen: like and byid need --ids with at least one id\n");
        return 2;
    }
    if (o.nids > 65536) /* a sample's target index is 16 bits */
        o.nids = 65536;

    thread_arg ts[MAX_THREADS] = {0};
    for (int i = 0; i < o.threads; i++) {
        ts[i].o = &o;
        ts[i].index = i;
        if (pthread_create(&ts[i].thread, NULL, thread_main, &ts[i]) != 0) {
            fprintf(stderr, "loadgen: cannot start thread %d\n", i);
            return 1;
        }
    }
    for (int i = 0; i < o.threads; i++)
        pthread_join(ts[i].thread, NULL);

    lg_result all = {0};
    merge(&all, ts, o.threads);
    print_result(name ? name : argv[optind + 1], argv[optind + 1], &o, &all);
    if (by_target)
        for (size_t t = 0; t < o.nids && t < MAX_TARGET_LINES; t++)
            printf("loadgen_target name=%s id=%s samples=%zu p50_ms=%.3f\n",
                   name ? name : argv[optind + 1], o.ids[t], lg_samples_count(&all.lat, (int)t),
                   lg_samples_pct(&all.lat, 50, (int)t));
    fflush(stdout);
    int rc = 0;
    if (pct_out && write_pct(pct_out, &all.lat) != 0)
        fprintf(stderr, "loadgen: cannot write %s\n", pct_out);
    if (lag_series && write_lag_series(lag_series, ts, o.threads) != 0)
        fprintf(stderr, "loadgen: cannot write %s\n", lag_series);
    if (ids_out && write_ids(ids_out, ts, o.threads) != 0) {
        fprintf(stderr, "loadgen: cannot write %s\n", ids_out);
        rc = 1;
    }
    if (all.errors > 0 || all.ok == 0) {
        fprintf(stderr, "loadgen: %ld error(s), %ld ok; first: %s\n", all.errors, all.ok,
                all.first_error[0] ? all.first_error : "no request succeeded");
        rc = 1;
    }
    for (int i = 0; i < o.threads; i++)
        lg_result_free(&ts[i].r);
    lg_result_free(&all);
    for (size_t i = 0; o.ids && o.ids[i]; i++)
        free(o.ids[i]);
    free(o.ids);
    for (size_t i = 0; o.tokens && o.tokens[i]; i++)
        free(o.tokens[i]);
    free(o.tokens);
    return rc;
}
