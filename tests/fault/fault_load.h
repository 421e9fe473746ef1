/* SPDX-License-Identifier: Apache-2.0 */
/* fault_load.h — a steady, mixed command load on command-api for the
 * fault tests, recording the outcome of every request.
 *
 * A few client threads each own a handful of posts (so the commands on a
 * post are issued one after another and every reply can be checked against
 * the store), and all of them also like one shared "hot" post at once (so
 * commands on one post queue inside command-api, as on a popular post).
 * Every command that writes text writes a token unique to that command, so
 * the checker (fault_check.h) can find its event in the store and tell a
 * duplicate from a second command.
 *
 * Outcomes: a 2xx is "accepted" (must be stored once and projected); an
 * HTTP error status is "rejected" (must not be stored); a request that was
 * sent but got no complete reply is "unknown" (may be stored once); a
 * connection that was refused was "not sent" (never reached the server).
 *
 * Thread-safety: fl_start/fl_stop/fl_ops/fl_free from one thread. */
#ifndef FAULT_LOAD_H
#define FAULT_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    FL_NEW_POST,
    FL_EDIT_MESSAGE,
    FL_LIKE,
    FL_ADD_COMMENT,
    FL_EDIT_COMMENT,
    FL_REMOVE_COMMENT,
    FL_DELETE_POST,
    FL_KINDS
} fl_kind;

typedef enum { FL_ACCEPTED, FL_REJECTED, FL_UNKNOWN, FL_NOT_SENT } fl_outcome;

#define FL_ID_LEN 37 /* a UUID and its NUL */

typedef struct fl_op {
    fl_kind kind;
    fl_outcome outcome;
    int status;               /* HTTP status, 0 without a reply */
    bool retry_after;         /* the reply carried Retry-After */
    bool timed_out;           /* no reply within the client timeout: a hang */
    int thread;
    char post_id[FL_ID_LEN];  /* "" for a NewPost without a reply */
    char token[64];           /* unique text written (message or comment), or "" */
    char comment_id[FL_ID_LEN]; /* AddComment: from the reply; Edit/Remove: the target */
    int64_t version;          /* accepted: the post's version after the command */
    int64_t started_ms;       /* since fl_start, monotonic */
    int64_t latency_ms;
    char body[160];           /* rejected: the start of the reply body */
    int matched;              /* set by the checker: stored events found for it */
} fl_op;

typedef struct fl_opts {
    int port;              /* command-api on 127.0.0.1 (may restart on it) */
    int port2;             /* > 0: a second command-api on the same store; each
                            * thread sends every other request there, so one
                            * post's commands go through both processes */
    int threads;           /* client threads (default 4) */
    int pace_ms;           /* pause between a thread's commands (default 5) */
    int timeout_ms;        /* client timeout per request (default 30000) */
    bool hot_post;         /* create a post every thread likes too */
    const char *tag;       /* prefix of the tokens (e.g. the scenario) */
} fl_opts;

typedef struct fl_load fl_load;

/* Starts the client threads (after creating the hot post, recorded as the
 * first op); NULL if that post or a thread cannot be created. */
fl_load *fl_start(const fl_opts *opts);

/* Milliseconds since fl_start (the clock of fl_op.started_ms). */
int64_t fl_elapsed_ms(const fl_load *l);

/* Sends n likes on the hot post at once, one from each of n extra threads
 * (at most 16 per load; recorded like the rest, thread number 100+): a
 * popular post, whose commands queue on one lock inside command-api.
 * Returns how many were started. */
int fl_burst(fl_load *l, int n);

/* Stops the threads (each finishes its request in hand) and joins them. */
void fl_stop(fl_load *l);

/* Every recorded op of every thread (after fl_stop); valid until fl_free. */
fl_op *fl_ops(fl_load *l, size_t *n);

void fl_free(fl_load *l);

const char *fl_kind_name(fl_kind k);

#endif
