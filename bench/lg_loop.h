/* SPDX-License-Identifier: Apache-2.0 */
/* lg_loop.h — the engine of bench/loadgen: one worker thread driving a set
 * of keep-alive HTTP/1.1 connections with epoll.
 *
 * A worker runs one of three schedules:
 *  - closed loop by time: `conns` requests always in flight, each answer
 *    immediately followed by the next request on that connection, for
 *    warmup + seconds; requests still in flight at the end are abandoned;
 *  - closed loop by count: the same until `count` requests have answered;
 *  - open loop (rate > 0): request k is due at start + k/rate whatever the
 *    server does, and its latency is measured from when it was due, not
 *    when it could be sent, so a stalled server is charged for the
 *    requests queued behind it (no "coordinated omission").
 *
 * In lag mode every successful command is followed by
 * GET {query}/api/v1/PostLookup/byId/{id}?minVersion={version}, which the
 * query API answers as soon as that version is projected (it waits on a
 * condition variable, not a poll). The lag sample is the time from the
 * command's 2xx arriving here to that answer arriving here: projection lag
 * plus one loopback round trip. Each probe holds a query API worker
 * thread while it waits, and every projected event wakes all of them, so
 * probing only every Nth command (lag_every) keeps the probe from loading
 * the system it measures.
 *
 * Thread-safety: a worker touches only its own lg_result; lg_opts is
 * shared read-only. */
#ifndef LG_LOOP_H
#define LG_LOOP_H

#include "lg_http.h"
#include "lg_stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    LG_NEWPOST,  /* POST /api/v1/NewPost */
    LG_LIKE,     /* PUT /api/v1/LikePost/{id} */
    LG_BYID,     /* GET /api/v1/PostLookup/byId/{id}[?minVersion=V] */
    LG_BYAUTHOR, /* GET /api/v1/PostLookup/byAuthor/{prefix}{n} */
    LG_GET,      /* GET {path} */
    LG_KIND_COUNT
} lg_kind;

#define LG_MAX_KINDS 8

typedef struct lg_opts {
    lg_url url;           /* the server under load */
    lg_url query_url;     /* lag mode: the query API */
    bool lag;
    int lag_every;        /* lag mode: probe every Nth successful command (1: all) */
    lg_kind kinds[LG_MAX_KINDS]; /* request k uses kinds[k % nkinds] */
    int nkinds;
    int conns;            /* connections (closed loop: requests in flight) */
    int query_conns;      /* lag mode: at most this many query connections */
    int threads;
    double seconds;       /* measured time (by-time schedules) */
    double warmup;        /* seconds before measuring (not recorded) */
    long count;           /* > 0: closed loop by count */
    long warmup_count;    /* by count: the first ones are not recorded */
    double rate;          /* > 0: open loop at this many requests/s */
    double grace;         /* open loop / count: seconds to wait for answers at the end */
    char **ids;           /* targets of like/byid (borrowed) */
    size_t nids;
    bool pick_rr;         /* ids and authors in turn rather than at random */
    int authors;          /* NewPost / byAuthor use authors {prefix}0..{prefix}N-1 */
    const char *author_prefix;
    const char *path;     /* LG_GET */
    long min_version;     /* byid: add ?minVersion= when >= 0 */
    const char *header;   /* one more header line ("Name: value") on GETs, or NULL */
    int expect;           /* required status; 0: any 2xx */
    char **tokens;        /* bearer tokens (borrowed): each primary connection
                           * sends one, taken in turn as connections open;
                           * NewPost then names no author (the token does) */
    size_t ntokens;
} lg_opts;

/* One lag probe: when its answer came (CLOCK_MONOTONIC ns) and the lag. */
typedef struct lg_point {
    int64_t at_ns;
    uint32_t lag_us;
} lg_point;

typedef struct lg_result {
    lg_samples lat;       /* measured requests that succeeded */
    lg_samples lag;       /* lag mode */
    lg_point *lag_series; /* lag mode: each measured probe in the order answered (owned) */
    size_t lag_series_len, lag_series_cap;
    long ok;              /* measured successes (in the window) */
    long long body_bytes; /* their body bytes, as sent (compressed or not) */
    long errors;          /* any failure: status, connection, stale answer */
    long statuses[6];     /* answers by class: [1] 1xx .. [5] 5xx */
    long stale;           /* lag/minVersion answers that timed out */
    long connects;        /* connections opened (keep-alive: about conns) */
    long queued;          /* open loop: requests that waited for a connection */
    double window_s;      /* the measured time */
    char first_error[300];
    char *ids_out;        /* ids returned by NewPost, one per line (owned) */
    size_t ids_len, ids_cap;
} lg_result;

/* Runs worker `index` of o->threads (its share of connections, rate and
 * count) to completion and fills r (zeroed by the caller). Returns 0, or
 * -1 if the worker could not run at all (first_error says why). */
int lg_worker_run(const lg_opts *o, int index, lg_result *r);

void lg_result_free(lg_result *r);

#endif
