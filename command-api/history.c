/* SPDX-License-Identifier: Apache-2.0 */
/* history.c — PostHistory and PostAt (history.h). */
#include "history.h"

#include "post.h"
#include "post_repo.h"
#include "sm_time.h"

#include <stdio.h>
#include <string.h>

typedef struct hist_query {
    sm_uuid_str post_id;
    int64_t from_version, limit; /* PostHistory */
    int64_t version;             /* PostAt: -1 until resolved */
    int64_t at_ms;               /* PostAt ?at=; -1: by version */
} hist_query;

typedef sm_status (*hist_parse_fn)(const char *qs, hist_query *q, sm_error *err);
typedef sm_status (*hist_run_fn)(cmd_context *ctx, const hist_query *q, json_t **out,
                                 sm_error *err);

static sm_status unknown_post(sm_error *err, const char *id)
{
    return sm_fail(err, SM_ERR_NOT_FOUND, "Incorrect post Id provided! %s", id);
}

/* ---- PostHistory --------------------------------------------------------- */
static sm_status parse_history(const char *qs, hist_query *q, sm_error *err)
{
    bool found;
    q->from_version = 0;
    q->limit = HIST_DEFAULT_LIMIT;
    if (!http_query_count(qs, "fromVersion", INT64_MAX / 2, &q->from_version, &found))
        return sm_fail(err, SM_ERR_INVALID, "fromVersion must be a non-negative integer.");
    if (!http_query_count(qs, "limit", HIST_MAX_LIMIT, &q->limit, &found) || q->limit == 0)
        return sm_fail(err, SM_ERR_INVALID, "limit must be an integer from 1 to %d.",
                       HIST_MAX_LIMIT);
    return SM_OK;
}

/* Whether the post has any event (for the 404s). */
static sm_status post_exists_in_store(cmd_context *ctx, const char *id, bool *exists,
                                      sm_error *err)
{
    sm_event_list evs = {0};
    es_status es = es_load(ctx->store, id, 0, 1, &evs, err);
    *exists = evs.len > 0;
    sm_event_list_free(&evs);
    return es == ES_OK ? SM_OK : es_to_sm_status(es);
}

/* One event more than the page is read, to know whether another page
 * follows without a second query. */
static sm_status run_history(cmd_context *ctx, const hist_query *q, json_t **out, sm_error *err)
{
    sm_event_list evs = {0};
    es_status es = es_load(ctx->store, q->post_id, q->from_version, (size_t)q->limit + 1, &evs,
                           err);
    sm_status st = es == ES_OK ? SM_OK : es_to_sm_status(es);
    bool exists = evs.len > 0;
    if (st == SM_OK && !exists && q->from_version > 0)
        st = post_exists_in_store(ctx, q->post_id, &exists, err); /* past the end */
    if (st == SM_OK && !exists)
        st = unknown_post(err, q->post_id);
    if (st != SM_OK) {
        sm_event_list_free(&evs);
        return st;
    }
    json_t *events = json_array();
    size_t shown = evs.len > (size_t)q->limit ? (size_t)q->limit : evs.len;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(events, sm_event_to_json(&evs.items[i]));
    json_t *next = evs.len > shown ? json_integer(evs.items[shown].version) : json_null();
    *out = json_pack("{s:s, s:I, s:I, s:o, s:o}", "postId", q->post_id, "fromVersion",
                     (json_int_t)q->from_version, "limit", (json_int_t)q->limit, "events", events,
                     "nextFromVersion", next);
    sm_event_list_free(&evs);
    return *out ? SM_OK : sm_fail(err, SM_ERR_INTERNAL, "out of memory");
}

/* ---- PostAt -------------------------------------------------------------- */
static sm_status parse_at(const char *qs, hist_query *q, sm_error *err)
{
    bool by_version, by_time;
    char at[64];
    q->version = -1;
    q->at_ms = -1;
    if (!http_query_count(qs, "version", INT64_MAX / 2, &q->version, &by_version))
        return sm_fail(err, SM_ERR_INVALID, "version must be a non-negative integer.");
    int r = http_query_get(qs, "at", at, sizeof at);
    by_time = r != 0;
    if (by_version == by_time)
        return sm_fail(err, SM_ERR_INVALID,
                       "Give exactly one of version=V or at=<ISO-8601 UTC time>.");
    if (by_time && (r < 0 || !sm_time_parse(at, &q->at_ms)))
        return sm_fail(err, SM_ERR_INVALID,
                       "at must be an ISO-8601 time with a zone, e.g. 2026-11-27T10:00:00Z.");
    return SM_OK;
}

/* The state after max_version: from the repo (snapshot + tail) when there
 * is one, else by folding the stream's first max_version + 1 events. */
static sm_status load_at(cmd_context *ctx, const char *id, int64_t max_version, post_state *p,
                         sm_error *err)
{
    if (ctx->repo)
        return post_repo_load_at(ctx->repo, id, max_version, p, err);
    post_init(p);
    memcpy(p->id, id, sizeof p->id);
    sm_event_list evs = {0};
    es_status es = es_load(ctx->store, id, 0, (size_t)max_version + 1, &evs, err);
    sm_status st = es == ES_OK ? SM_OK : es_to_sm_status(es);
    for (size_t i = 0; st == SM_OK && i < evs.len; i++)
        st = post_apply(p, &evs.items[i], err);
    sm_event_list_free(&evs);
    return st;
}

/* `at` -> the version of the post's last event at or before it. */
static sm_status resolve_at(cmd_context *ctx, const hist_query *q, int64_t *version,
                            sm_error *err)
{
    es_status es = es_version_at(ctx->store, q->post_id, q->at_ms, version, err);
    if (es != ES_OK)
        return es_to_sm_status(es);
    if (*version >= 0)
        return SM_OK;
    bool exists;
    sm_status st = post_exists_in_store(ctx, q->post_id, &exists, err);
    if (st != SM_OK)
        return st;
    if (!exists)
        return unknown_post(err, q->post_id);
    sm_time_str t;
    sm_time_format(q->at_ms, t);
    return sm_fail(err, SM_ERR_NOT_FOUND, "Post %s did not exist yet at %s.", q->post_id, t);
}

static sm_status run_at(cmd_context *ctx, const hist_query *q, json_t **out, sm_error *err)
{
    int64_t version = q->version;
    sm_status st = q->at_ms >= 0 ? resolve_at(ctx, q, &version, err) : SM_OK;
    if (st != SM_OK)
        return st;
    post_state p;
    st = load_at(ctx, q->post_id, version, &p, err);
    if (st == SM_OK && !post_exists(&p))
        st = unknown_post(err, q->post_id);
    else if (st == SM_OK && p.version < version)
        st = sm_fail(err, SM_ERR_NOT_FOUND, "Post %s has no version %lld yet (latest: %lld).",
                     q->post_id, (long long)version, (long long)p.version);
    if (st == SM_OK) {
        *out = json_pack("{s:o, s:I}", "post", post_to_json(&p), "version",
                         (json_int_t)p.version);
        if (!*out)
            st = sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    }
    post_free(&p);
    return st;
}

/* ---- who may read ------------------------------------------------------- */
/* With an authenticated caller: the post's owner or a moderator (issue 16:
 * old texts of edited and deleted posts are not public). The owner is
 * decided by the aggregate's rule from the post's first event. */
static sm_status check_reader(cmd_context *ctx, const char *id, const post_actor *actor,
                              sm_error *err)
{
    if (!actor || actor->moderator)
        return SM_OK;
    sm_event_list evs = {0};
    es_status es = es_load(ctx->store, id, 0, 1, &evs, err);
    sm_status st = es == ES_OK ? SM_OK : es_to_sm_status(es);
    post_state p;
    post_init(&p);
    if (st == SM_OK && evs.len == 0)
        st = unknown_post(err, id);
    if (st == SM_OK)
        st = post_apply(&p, &evs.items[0], err);
    if (st == SM_OK)
        st = post_check_owner(&p, actor,
                              "Only the post's author or a moderator may read its history.", err);
    post_free(&p);
    sm_event_list_free(&evs);
    return st;
}

/* ---- the table ----------------------------------------------------------- */
static const struct {
    hist_parse_fn parse;
    hist_run_fn run;
} handlers[HIST_COUNT] = {
    [HIST_POST_HISTORY] = {parse_history, run_history},
    [HIST_POST_AT] = {parse_at, run_at},
};

void hist_handle(cmd_context *ctx, hist_kind kind, const char *post_arg, size_t post_len,
                 const char *query, const post_actor *actor, http_reply *reply)
{
    hist_query q = {0};
    sm_error err = {0};
    sm_status st = SM_OK;
    char raw[64];
    snprintf(raw, sizeof raw, "%.*s", (int)(post_len < 60 ? post_len : 60), post_arg);
    if (kind >= HIST_COUNT)
        st = sm_fail(&err, SM_ERR_INTERNAL, "unknown history query");
    else if (post_len > 60 || !sm_uuid_parse(raw, q.post_id))
        st = sm_fail(&err, SM_ERR_INVALID, "The post id '%s' is not a valid UUID.", raw);
    if (st == SM_OK)
        st = handlers[kind].parse(query, &q, &err);
    if (st == SM_OK)
        st = check_reader(ctx, q.post_id, actor, &err);
    json_t *body = NULL;
    if (st == SM_OK)
        st = handlers[kind].run(ctx, &q, &body, &err);
    if (st != SM_OK) {
        http_reply_from_error(reply, &err);
        return;
    }
    http_reply_json(reply, 200, body);
}
