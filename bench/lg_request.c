/* SPDX-License-Identifier: Apache-2.0 */
/* lg_request.c — see lg_request.h. */
#include "lg_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "METHOD PATH HTTP/1.1" with Host, the --header lines of a GET,
 * Content-Length and, with a body, Content-Type: application/json.
 * Keep-alive is HTTP/1.1's default. */
static bool format(const lg_opts *o, const lg_url *u, const char *method, const char *path,
                   const char *body, lg_request *out)
{
    const char *extra = o->header && strcmp(method, "GET") == 0 ? o->header : "";
    size_t blen = body ? strlen(body) : 0;
    size_t cap = strlen(path) + blen + strlen(u->host) + strlen(extra) + 128;
    out->text = malloc(cap);
    if (!out->text)
        return false;
    int n = snprintf(out->text, cap,
                     "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%sContent-Length: %zu\r\n\r\n%s",
                     method, path, u->host, extra, *extra ? "\r\n" : "",
                     body ? "Content-Type: application/json\r\n" : "", blen, body ? body : "");
    out->len = (size_t)n;
    return true;
}

bool lg_request_make(const lg_opts *o, int worker, long seq, uint64_t pick_draw,
                     uint64_t author_draw, lg_request *out)
{
    memset(out, 0, sizeof *out);
    out->kind = o->kinds[seq % o->nkinds];
    if (o->nids > 0) {
        size_t i = o->pick_rr ? ((size_t)seq * (size_t)o->threads + (size_t)worker) % o->nids
                              : (size_t)(pick_draw % o->nids);
        out->target = (uint16_t)i;
        snprintf(out->id, sizeof out->id, "%s", o->ids[i]);
    }
    uint64_t authors = (uint64_t)(o->authors > 0 ? o->authors : 1);
    int author = (int)((o->pick_rr ? (uint64_t)seq : author_draw) % authors);
    char path[300], body[200];
    switch (out->kind) {
    case LG_NEWPOST:
        if (o->ntokens > 0) /* the author is the token's name */
            snprintf(body, sizeof body, "{\"message\":\"bench post %d.%ld from loadgen\"}",
                     worker, seq);
        else
            snprintf(body, sizeof body,
                     "{\"author\":\"%.64s%d\",\"message\":\"bench post %d.%ld from loadgen\"}",
                     o->author_prefix, author, worker, seq);
        return format(o, &o->url, "POST", "/api/v1/NewPost", body, out);
    case LG_LIKE:
        snprintf(path, sizeof path, "/api/v1/LikePost/%s", out->id);
        return format(o, &o->url, "PUT", path, NULL, out);
    case LG_BYID:
        if (o->min_version >= 0)
            snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s?minVersion=%ld", out->id,
                     o->min_version);
        else
            snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s", out->id);
        return format(o, &o->url, "GET", path, NULL, out);
    case LG_BYAUTHOR:
        out->target = (uint16_t)author;
        snprintf(path, sizeof path, "/api/v1/PostLookup/byAuthor/%.64s%d", o->author_prefix,
                 author);
        return format(o, &o->url, "GET", path, NULL, out);
    default:
        return format(o, &o->url, "GET", o->path, NULL, out);
    }
}

bool lg_request_probe(const lg_opts *o, const char *id, long long version, lg_request *out)
{
    memset(out, 0, sizeof *out);
    out->kind = LG_BYID;
    snprintf(out->id, sizeof out->id, "%s", id);
    char path[200];
    snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s?minVersion=%lld", out->id, version);
    return format(o, &o->query_url, "GET", path, NULL, out);
}

bool lg_request_authorize(lg_request *r, const char *token)
{
    const char *eol = r->text ? memchr(r->text, '\n', r->len) : NULL;
    if (r->authorized || !eol)
        return true;
    size_t at = (size_t)(eol - r->text) + 1;
    size_t cap = r->len + strlen(token) + 32;
    char *t = malloc(cap);
    if (!t)
        return false;
    memcpy(t, r->text, at);
    int n = snprintf(t + at, cap - at, "Authorization: Bearer %s\r\n", token);
    memcpy(t + at + n, r->text + at, r->len - at);
    free(r->text);
    r->text = t;
    r->len += (size_t)n;
    r->authorized = true;
    return true;
}

int lg_request_line_len(const lg_request *r)
{
    const char *eol = r->text ? memchr(r->text, '\r', r->len) : NULL;
    return eol ? (int)(eol - r->text) : 0;
}

void lg_request_free(lg_request *r)
{
    free(r->text);
    r->text = NULL;
}
