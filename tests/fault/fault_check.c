/* SPDX-License-Identifier: Apache-2.0 */
/* fault_check.c — see fault_check.h. */
#include "fault_check.h"

#include "http_client.h"
#include "sm_time.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FC_TEXT 64        /* longer texts are cut (tokens are shorter) */
#define FC_SHOW 8         /* discrepancies printed per kind */
/* fetch_post's *seen when the answer had no X-Read-Model-Version; -1 in
 * that header means the read model never applied an event of the post */
#define FC_NO_VERSION (-2)

typedef struct fc_event {
    int64_t version;
    fl_kind kind;              /* FL_KINDS for a type this test never writes */
    char text[FC_TEXT];        /* message or comment, "" otherwise */
    char comment_id[FL_ID_LEN];
    bool claimed;              /* explained by a command */
    bool accepted;             /* ... by an accepted one */
} fc_event;

typedef struct fc_post {
    char id[FL_ID_LEN];
    size_t first, n;           /* its events: fc_store.events[first..first+n) */
    fc_event *evs;             /* &events[first], by version */
    long accepted;             /* accepted commands stored on this post */
} fc_post;

struct fc_store {
    fc_event *events;
    size_t nevents;
    fc_post *posts;
    size_t nposts;
};


void fc_count_outcomes(const fl_op *ops, size_t n, fc_counts *c)
{
    for (size_t i = 0; i < n; i++) {
        const fl_op *op = &ops[i];
        if (op->outcome != FL_NOT_SENT && op->latency_ms > c->max_latency_ms)
            c->max_latency_ms = op->latency_ms;
        switch (op->outcome) {
        case FL_ACCEPTED:
            c->accepted++;
            break;
        case FL_UNKNOWN:
            c->unknown++;
            c->hung += op->timed_out;
            break;
        case FL_NOT_SENT:
            c->not_sent++;
            break;
        case FL_REJECTED:
            if (op->status == 503) {
                c->rejected_503++;
                c->rejected_503_without_retry_after += !op->retry_after;
            } else {
                if (c->rejected_other < FC_SHOW)
                    printf("# rejected: %s %s -> %d %s\n", fl_kind_name(op->kind), op->post_id,
                           op->status, op->body);
                c->rejected_other++;
            }
            break;
        }
    }
}

static fl_kind kind_of_type(const char *type)
{
    static const char *const types[FL_KINDS] = {
        [FL_NEW_POST] = "PostCreatedEvent",
        [FL_EDIT_MESSAGE] = "MessageUpdatedEvent",
        [FL_LIKE] = "PostLikedEvent",
        [FL_ADD_COMMENT] = "CommentAddedEvent",
        [FL_EDIT_COMMENT] = "CommentUpdatedEvent",
        [FL_REMOVE_COMMENT] = "CommentRemovedEvent",
        [FL_DELETE_POST] = "PostRemovedEvent",
    };
    for (int k = 0; k < FL_KINDS; k++)
        if (type && strcmp(type, types[k]) == 0)
            return (fl_kind)k;
    return FL_KINDS;
}

static void copy_str(char *out, size_t cap, json_t *v)
{
    snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static bool read_events(sqlite3 *db, fc_store *s)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT aggregate_id, version, type, data FROM events"
                           " ORDER BY aggregate_id, version",
                           -1, &q, NULL) != SQLITE_OK)
        return false;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (s->nevents == cap) {
            cap = cap ? cap * 2 : 4096;
            fc_event *ev = realloc(s->events, cap * sizeof *ev);
            if (!ev)
                break;
            s->events = ev;
        }
        fc_event *e = &s->events[s->nevents];
        memset(e, 0, sizeof *e);
        e->version = sqlite3_column_int64(q, 1);
        e->kind = kind_of_type((const char *)sqlite3_column_text(q, 2));
        const char *data = (const char *)sqlite3_column_text(q, 3);
        json_t *j = data ? json_loads(data, 0, NULL) : NULL;
        if (e->kind == FL_NEW_POST || e->kind == FL_EDIT_MESSAGE)
            copy_str(e->text, sizeof e->text, json_object_get(j, "message"));
        else if (e->kind == FL_ADD_COMMENT || e->kind == FL_EDIT_COMMENT)
            copy_str(e->text, sizeof e->text, json_object_get(j, "comment"));
        copy_str(e->comment_id, sizeof e->comment_id, json_object_get(j, "commentId"));
        json_decref(j);
        /* group into posts as we go: rows come sorted by post id */
        const char *agg = (const char *)sqlite3_column_text(q, 0);
        fc_post *last = s->nposts ? &s->posts[s->nposts - 1] : NULL;
        if (!last || strcmp(last->id, agg ? agg : "") != 0) {
            fc_post *posts = realloc(s->posts, (s->nposts + 1) * sizeof *posts);
            if (!posts)
                break;
            s->posts = posts;
            last = &s->posts[s->nposts++];
            memset(last, 0, sizeof *last);
            snprintf(last->id, sizeof last->id, "%s", agg ? agg : "");
            last->first = s->nevents;
        }
        last->n++;
        s->nevents++;
    }
    sqlite3_finalize(q);
    for (size_t i = 0; i < s->nposts; i++) /* events no longer move */
        s->posts[i].evs = s->events + s->posts[i].first;
    return rc == SQLITE_DONE;
}

static int cmp_post_id(const void *key, const void *elem)
{
    return strcmp(key, ((const fc_post *)elem)->id);
}

static fc_post *find_post(const fc_store *s, const char *id)
{
    return id[0] ? bsearch(id, s->posts, s->nposts, sizeof *s->posts, cmp_post_id) : NULL;
}

/* Does event e record command op (type, unique text, comment id)? */
static bool op_matches(const fl_op *op, const fc_event *e)
{
    if (op->kind != e->kind)
        return false;
    switch (op->kind) {
    case FL_NEW_POST:
    case FL_EDIT_MESSAGE:
        return strcmp(op->token, e->text) == 0;
    case FL_ADD_COMMENT:
        return strcmp(op->token, e->text) == 0 &&
               (!op->comment_id[0] || strcmp(op->comment_id, e->comment_id) == 0);
    case FL_EDIT_COMMENT:
        return strcmp(op->token, e->text) == 0 && strcmp(op->comment_id, e->comment_id) == 0;
    case FL_REMOVE_COMMENT:
        return strcmp(op->comment_id, e->comment_id) == 0;
    default:
        return true; /* likes and removals carry nothing but their post and version */
    }
}

static fc_event *event_at(const fc_post *p, int64_t version)
{
    if (!p || version < 0)
        return NULL;
    if ((size_t)version < p->n && p->evs[version].version == version)
        return &p->evs[version];
    for (size_t i = 0; i < p->n; i++) /* only after a gap */
        if (p->evs[i].version == version)
            return &p->evs[i];
    return NULL;
}

/* Finds an unknown-outcome command, not yet used, that explains e. */
static fl_op *explain(const fc_post *p, const fc_event *e, fl_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fl_op *op = &ops[i];
        if (op->outcome != FL_UNKNOWN || op->matched)
            continue;
        bool same_post = strcmp(op->post_id, p->id) == 0 ||
                         (op->kind == FL_NEW_POST && !op->post_id[0]);
        if (same_post && op_matches(op, e))
            return op;
    }
    return NULL;
}

fc_store *fc_check_store(const char *path, fl_op *ops, size_t n, fc_counts *c)
{
    fc_store *s = calloc(1, sizeof *s);
    sqlite3 *db = NULL;
    if (!s || sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        (sqlite3_busy_timeout(db, 10000), !read_events(db, s))) {
        printf("# cannot read the event store %s: %s\n", path,
               db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        fc_store_free(s);
        return NULL;
    }
    sqlite3_close(db);
    c->posts = (long)s->nposts;
    c->events = (long)s->nevents;
    for (size_t i = 0; i < s->nposts; i++) {
        const fc_post *p = &s->posts[i];
        for (size_t v = 0; v < p->n; v++) {
            if (p->evs[v].version != (int64_t)v) {
                printf("# gap: post %s has version %lld at position %zu\n", p->id,
                       (long long)p->evs[v].version, v);
                c->gaps++;
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        fl_op *op = &ops[i];
        if (op->outcome != FL_ACCEPTED)
            continue;
        fc_post *p = find_post(s, op->post_id);
        fc_event *e = event_at(p, op->version);
        if (e && !e->claimed && op_matches(op, e)) {
            e->claimed = e->accepted = true;
            op->matched++;
            p->accepted++;
            c->stored++;
            continue;
        }
        if (c->lost < FC_SHOW)
            printf("# lost: %s (t%d, %s) on %s answered %d version %lld: %s\n",
                   fl_kind_name(op->kind), op->thread, op->token[0] ? op->token : "-",
                   op->post_id[0] ? op->post_id : "?", op->status, (long long)op->version,
                   !e ? "no event at that version" : e->claimed ? "that event is another command's"
                                                           : "the event there is different");
        c->lost++;
    }
    for (size_t i = 0; i < s->nposts; i++) {
        fc_post *p = &s->posts[i];
        for (size_t v = 0; v < p->n; v++) {
            fc_event *e = &p->evs[v];
            if (e->claimed)
                continue;
            fl_op *op = explain(p, e, ops, n);
            if (op) {
                op->matched++;
                e->claimed = true;
                c->unknown_stored++;
                continue;
            }
            if (c->duplicated < FC_SHOW)
                printf("# duplicated: post %s version %lld (%s %s) is no accepted or "
                       "unanswered command's event\n",
                       p->id, (long long)e->version, e->kind < FL_KINDS ? fl_kind_name(e->kind) : "?",
                       e->text[0] ? e->text : e->comment_id);
            c->duplicated++;
        }
    }
    return s;
}

/* --- the read model --------------------------------------------------- */

typedef struct expect {
    char message[FC_TEXT];
    int64_t likes;
    bool removed;
    int64_t last;
    size_t ncomments;
} expect;

/* The post as the store says it is after its last event. */
static void replay(const fc_post *p, expect *x)
{
    memset(x, 0, sizeof *x);
    x->last = p->n ? p->evs[p->n - 1].version : -1;
    for (size_t i = 0; i < p->n; i++) {
        const fc_event *e = &p->evs[i];
        if (e->kind == FL_NEW_POST || e->kind == FL_EDIT_MESSAGE)
            snprintf(x->message, sizeof x->message, "%s", e->text);
        x->likes += e->kind == FL_LIKE;
        x->removed |= e->kind == FL_DELETE_POST;
    }
}

/* The comment's state per the store: text, edited; false if it is not
 * there (never added, or removed). */
static bool comment_state(const fc_post *p, const char *id, char *text, size_t cap, bool *edited)
{
    bool live = false;
    *edited = false;
    for (size_t i = 0; i < p->n; i++) {
        const fc_event *e = &p->evs[i];
        if (strcmp(e->comment_id, id) != 0)
            continue;
        if (e->kind == FL_ADD_COMMENT || e->kind == FL_EDIT_COMMENT) {
            live = true;
            snprintf(text, cap, "%s", e->text);
            *edited = e->kind == FL_EDIT_COMMENT;
        } else if (e->kind == FL_REMOVE_COMMENT) {
            live = false;
        }
    }
    return live;
}

static size_t live_comments(const fc_post *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        char text[FC_TEXT];
        bool edited;
        const fc_event *e = &p->evs[i];
        n += e->kind == FL_ADD_COMMENT && comment_state(p, e->comment_id, text, sizeof text, &edited);
    }
    return n;
}

/* Compares query-api's post (NULL for 204) with the store's. Returns "" if
 * equal, else what differs; *extra gets likes/comments above the store. */
static const char *compare(const fc_post *p, const expect *x, json_t *post, long *extra)
{
    *extra = 0;
    if (x->removed)
        return post ? "removed in the store, still shown" : "";
    if (!post)
        return "in the store, not in the read model";
    json_t *jv = json_object_get(post, "version");
    if (!json_is_integer(jv) || json_integer_value(jv) != x->last)
        return "version differs";
    const char *msg = json_string_value(json_object_get(post, "message"));
    if (!msg || strncmp(msg, x->message, FC_TEXT - 1) != 0)
        return "message differs";
    int64_t likes = json_integer_value(json_object_get(post, "likes"));
    json_t *comments = json_object_get(post, "comments");
    size_t want = live_comments(p), got = json_array_size(comments);
    if (likes > x->likes)
        *extra += (long)(likes - x->likes);
    if (got > want)
        *extra += (long)(got - want);
    if (likes != x->likes)
        return "likes differ";
    if (got != want)
        return "number of comments differs";
    for (size_t i = 0; i < got; i++) {
        json_t *c = json_array_get(comments, i);
        const char *id = json_string_value(json_object_get(c, "commentId"));
        const char *text = json_string_value(json_object_get(c, "comment"));
        char want_text[FC_TEXT];
        bool edited;
        if (!id || !text || !comment_state(p, id, want_text, sizeof want_text, &edited))
            return "a comment the store does not have";
        if (strncmp(text, want_text, FC_TEXT - 1) != 0)
            return "a comment's text differs";
        if (json_is_true(json_object_get(c, "edited")) != edited)
            return "a comment's edited flag differs";
    }
    return "";
}

/* Asks for post p at version >= last until the answer is fresh or the
 * deadline passes. Returns the HTTP status (0: no answer) and fills *r;
 * *seen gets the version the read model had (FC_NO_VERSION if unsaid). */
static int fetch_post(int port, const fc_post *p, int64_t last, int64_t deadline, http_resp *r,
                      int64_t *seen)
{
    char path[160], buf[32];
    snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s?minVersion=%lld", p->id,
             (long long)last);
    for (;;) {
        *seen = FC_NO_VERSION;
        int status = 0;
        if (http_call(port, "GET", path, "", NULL, 0, 60000, r) == 0) {
            status = r->status;
            if (http_resp_header(r, "X-Read-Model-Version", buf, sizeof buf))
                *seen = strtoll(buf, NULL, 10);
            bool stale = http_resp_header(r, "X-Read-Model-Stale", buf, sizeof buf) != NULL;
            if ((status == 200 || status == 204) && !stale)
                return status;
        }
        if (sm_mono_ms() >= deadline)
            return status;
        if (status)
            http_resp_free(r);
        sm_sleep_ms(200);
    }
}

void fc_check_projection(const fc_store *s, int query_port, int deadline_ms, fc_counts *c)
{
    int64_t deadline = sm_mono_ms() + deadline_ms;
    long shown = 0;
    for (size_t i = 0; i < s->nposts; i++) {
        const fc_post *p = &s->posts[i];
        expect x;
        replay(p, &x);
        http_resp r;
        int64_t seen = FC_NO_VERSION;
        int status = fetch_post(query_port, p, x.last, deadline, &r, &seen);
        /* behind, even if the post is gone from the read model (removed):
         * its PostVersion outlives the row and must reach the store's */
        bool behind = seen != FC_NO_VERSION && seen < x.last;
        const char *why = "no answer from query-api";
        long extra = 0;
        if (status == 200 || status == 204) {
            json_t *post = status == 200 ? json_array_get(json_object_get(r.json, "posts"), 0)
                                         : NULL;
            why = behind ? "not projected in time" : compare(p, &x, post, &extra);
        }
        long missing = 0;
        if (*why && extra > 0) {
            c->duplicated += extra; /* counted twice: the rest is there */
        } else if (*why && behind) {
            for (size_t v = 0; v < p->n; v++) /* late: what it has not seen */
                missing += p->evs[v].accepted && p->evs[v].version > seen;
        } else if (*why) {
            missing = p->accepted > 0 ? p->accepted : 1; /* wrong or absent */
        }
        if (*why && shown++ < FC_SHOW)
            printf("# not projected: post %s (store version %lld, read model %lld): %s\n", p->id,
                   (long long)x.last, (long long)seen, why);
        c->lost += missing;
        if (!*why)
            c->projected += p->accepted;
        else if (extra == 0 && missing < p->accepted)
            c->projected += p->accepted - missing; /* late: those it did apply */
        if (status)
            http_resp_free(&r);
    }
}

void fc_store_free(fc_store *s)
{
    if (!s)
        return;
    free(s->events);
    free(s->posts);
    free(s);
}

void fc_print(const char *scenario, const fc_counts *c)
{
    printf("FAULT scenario=%s accepted=%ld stored=%ld projected=%ld lost=%ld duplicated=%ld "
           "unknown=%ld rejected_503=%ld max_latency_ms=%lld unknown_stored=%ld not_sent=%ld "
           "rejected_other=%ld hung=%ld gaps=%ld posts=%ld events=%ld\n",
           scenario, c->accepted, c->stored, c->projected, c->lost, c->duplicated, c->unknown,
           c->rejected_503, (long long)c->max_latency_ms, c->unknown_stored, c->not_sent,
           c->rejected_other, c->hung, c->gaps, c->posts, c->events);
    fflush(stdout);
}

void fc_assert_invariants(const fc_counts *c, int64_t request_timeout_ms)
{
    assert_true(c->accepted >= 20); /* the load really ran */
    assert_int_equal(c->lost, 0);
    assert_int_equal(c->duplicated, 0);
    assert_int_equal(c->gaps, 0);
    assert_int_equal(c->stored, c->accepted);
    assert_int_equal(c->projected, c->accepted);
    assert_int_equal(c->rejected_other, 0);
    assert_int_equal(c->hung, 0);
    assert_int_equal(c->rejected_503_without_retry_after, 0);
    if (c->max_latency_ms > request_timeout_ms)
        fail_msg("a request took %lld ms, past the %lld ms request timeout",
                 (long long)c->max_latency_ms, (long long)request_timeout_ms);
}
