/* SPDX-License-Identifier: Apache-2.0 */
/* lg_request.h — the HTTP requests bench/loadgen sends: one builder per
 * kind of lg_loop.h, plus the lag probe. Pure functions of their
 * arguments (the caller supplies the random draws), so they are
 * thread-safe and the engine in lg_loop.c stays about sockets and time. */
#ifndef LG_REQUEST_H
#define LG_REQUEST_H

#include "lg_loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lg_request {
    lg_kind kind;
    uint16_t target; /* index into opts->ids (like, byid) or the author number */
    char id[48];     /* the post id it is about, when it has one */
    char *text;      /* the whole request, owned */
    size_t len;
    bool authorized; /* an Authorization header is in text */
} lg_request;

/* Builds request number seq of worker `worker`: its kind is
 * o->kinds[seq % nkinds]; ids and authors are taken in turn (o->pick_rr)
 * or by pick_draw and author_draw. Returns false on OOM. */
bool lg_request_make(const lg_opts *o, int worker, long seq, uint64_t pick_draw,
                     uint64_t author_draw, lg_request *out);

/* GET /api/v1/PostLookup/byId/{id}?minVersion={version} for the query
 * API of lag mode. Returns false on OOM. */
bool lg_request_probe(const lg_opts *o, const char *id, long long version, lg_request *out);

/* Adds "Authorization: Bearer <token>" after the request line, once (a
 * request that already has one is left alone): requests are made before
 * the connection that sends them is known, and the token belongs to the
 * connection. Returns false on OOM. */
bool lg_request_authorize(lg_request *r, const char *token);

/* Length of the request line, for error texts. */
int lg_request_line_len(const lg_request *r);

void lg_request_free(lg_request *r);

#endif
