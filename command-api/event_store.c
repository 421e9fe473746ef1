/* SPDX-License-Identifier: Apache-2.0 */
/* event_store.c — the port's dispatch layer: URL scheme to adapter, and the
 * checks that are the same for every adapter. */
#include "event_store.h"

#include "sm_hash.h"

#include <stdlib.h>
#include <string.h>

struct es_store {
    const es_ops *ops;
    void *impl;
};

es_store *es_store_new(const es_ops *ops, void *impl)
{
    es_store *s = malloc(sizeof *s);
    if (!s) {
        ops->close(impl);
        return NULL;
    }
    s->ops = ops;
    s->impl = impl;
    return s;
}

es_status es_open(const char *url, es_store **out, sm_error *err)
{
    *out = NULL;
    if (!url || !*url) {
        sm_fail(err, SM_ERR_INVALID, "event store URL is empty");
        return ES_INVALID;
    }
    if (strncmp(url, "sqlite:", 7) == 0) {
        if (!url[7]) {
            sm_fail(err, SM_ERR_INVALID, "event store URL 'sqlite:' needs a file path");
            return ES_INVALID;
        }
        return es_sqlite_open(url + 7, out, err);
    }
    if (strncmp(url, "mongodb://", 10) == 0 || strncmp(url, "mongodb+srv://", 14) == 0)
        return es_mongo_open(url, out, err);
    sm_fail(err, SM_ERR_INVALID,
            "unknown event store URL scheme (expected sqlite:PATH or mongodb://...)");
    return ES_INVALID;
}

es_status es_validate_batch(const char *aggregate_id, int64_t expected_version,
                            const sm_event *evs, size_t n, sm_error *err)
{
    if (!aggregate_id || !sm_uuid_parse(aggregate_id, NULL) || expected_version < -1 ||
        (n > 0 && !evs)) {
        sm_fail(err, SM_ERR_INVALID, "append: bad arguments");
        return ES_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (evs[i].version != expected_version + 1 + (int64_t)i) {
            sm_fail(err, SM_ERR_INVALID, "append: event %zu has version %lld, expected %lld", i,
                    (long long)evs[i].version, (long long)(expected_version + 1 + (int64_t)i));
            return ES_INVALID;
        }
        if (strcmp(evs[i].aggregate_id, aggregate_id) != 0 || !sm_event_type_name(evs[i].type)) {
            sm_fail(err, SM_ERR_INVALID, "append: event %zu does not belong to this stream", i);
            return ES_INVALID;
        }
    }
    return ES_OK;
}

es_status es_append(es_store *s, const char *aggregate_id, int64_t expected_version,
                    const sm_event *evs, size_t n, sm_error *err)
{
    es_status st = es_validate_batch(aggregate_id, expected_version, evs, n, err);
    if (st != ES_OK || n == 0)
        return st;
    return s->ops->append(s->impl, aggregate_id, expected_version, evs, n, err);
}

es_status es_load(es_store *s, const char *aggregate_id, int64_t from_version, size_t limit,
                  sm_event_list *out, sm_error *err)
{
    if (!aggregate_id || !sm_uuid_parse(aggregate_id, NULL) || from_version < 0) {
        sm_fail(err, SM_ERR_INVALID, "load: bad arguments");
        return ES_INVALID;
    }
    return s->ops->load(s->impl, aggregate_id, from_version, limit, out, err);
}

es_status es_read_all(es_store *s, const es_cursor *after, size_t limit, sm_event_list *out,
                      es_cursor *next, sm_error *err)
{
    if (limit == 0) {
        sm_fail(err, SM_ERR_INVALID, "read_all: limit must be positive");
        return ES_INVALID;
    }
    return s->ops->read_all(s->impl, after, limit, out, next, err);
}

es_status es_ping(es_store *s, sm_error *err) { return s->ops->ping(s->impl, err); }

const char *es_adapter_name(const es_store *s) { return s->ops->name; }

bool es_multi_append(const es_store *s) { return s->ops->multi_append; }

void es_close(es_store *s)
{
    if (!s)
        return;
    s->ops->close(s->impl);
    free(s);
}

sm_status es_to_sm_status(es_status st)
{
    switch (st) {
    case ES_OK:          return SM_OK;
    case ES_CONFLICT:    return SM_ERR_CONFLICT;
    case ES_NOT_FOUND:   return SM_ERR_NOT_FOUND;
    case ES_UNAVAILABLE: return SM_ERR_UNAVAILABLE;
    case ES_INVALID:     return SM_ERR_INVALID;
    case ES_INTERNAL:    return SM_ERR_INTERNAL;
    }
    return SM_ERR_INTERNAL;
}

/* Outbox, meta, snapshot and lease operations may be missing from an
 * adapter's table (a test double, an adapter for a store that cannot do
 * them); a call is then reported as unsupported rather than crashing. */
static es_status unsupported(const es_store *s, const char *op, sm_error *err)
{
    sm_fail(err, SM_ERR_INTERNAL, "event store adapter %s does not support %s", s->ops->name, op);
    return ES_INTERNAL;
}

es_status es_fetch_unpublished(es_store *s, es_cursor *cursor, size_t limit, sm_event_list *out,
                               int64_t *generation, sm_error *err)
{
    *generation = -1;
    if (!s->ops->fetch_unpublished)
        return unsupported(s, "fetch_unpublished", err);
    es_cursor from = {0};
    if (cursor)
        from = *cursor;
    es_status st = s->ops->fetch_unpublished(s->impl, &from, limit ? limit : 1, out, generation,
                                             err);
    if (st == ES_OK && cursor)
        *cursor = from;
    return st;
}

/* Posts of a page by id, open addressing over indexes into post_of[]
 * (slot value: post number + 1), cap a power of two >= 2 x the page. */
typedef struct run_post {
    const char *id;
    int64_t next;  /* the version a kept event of this post must have; -1: closed */
    size_t first;  /* the post's number, in order of first appearance */
} run_post;

typedef struct run_item {
    size_t post;
    int64_t version;
    size_t index; /* in the page */
} run_item;

static int cmp_item(const void *a, const void *b)
{
    const run_item *x = a, *y = b;
    if (x->post != y->post)
        return x->post < y->post ? -1 : 1;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

bool es_outbox_runs(sm_event_list *page, const int64_t *heads)
{
    size_t n = page->len;
    if (n == 0)
        return true;
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    size_t *slots = calloc(cap, sizeof *slots);
    run_post *posts = malloc(n * sizeof *posts);
    run_item *items = malloc(n * sizeof *items);
    sm_event *sorted = malloc(n * sizeof *sorted);
    if (!slots || !posts || !items || !sorted) {
        free(slots), free(posts), free(items), free(sorted);
        return false;
    }
    size_t nposts = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = page->items[i].aggregate_id;
        size_t h = sm_hash_text(id) & (cap - 1);
        while (slots[h] && strcmp(posts[slots[h] - 1].id, id) != 0)
            h = (h + 1) & (cap - 1);
        if (!slots[h]) {
            posts[nposts] = (run_post){id, heads[i], nposts};
            slots[h] = ++nposts;
        } else if (heads[i] < 0) {
            posts[slots[h] - 1].next = -1; /* one event knows a lower version: all wait */
        }
        items[i] = (run_item){slots[h] - 1, page->items[i].version, i};
    }
    qsort(items, n, sizeof *items, cmp_item);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        run_post *p = &posts[items[i].post];
        sm_event *ev = &page->items[items[i].index];
        if (p->next >= 0 && ev->version == p->next) {
            p->next++;
            sorted[kept++] = *ev;
        } else {
            p->next = -1; /* a gap or a lower version elsewhere: the rest waits */
            sm_event_clear(ev);
        }
    }
    memcpy(page->items, sorted, kept * sizeof *sorted);
    page->len = kept;
    free(slots), free(posts), free(items), free(sorted);
    return true;
}

es_status es_mark_published(es_store *s, const sm_event *evs, size_t n, int64_t generation,
                            sm_error *err)
{
    if (!s->ops->mark_published)
        return unsupported(s, "mark_published", err);
    if (generation < 0) {
        sm_fail(err, SM_ERR_INVALID, "mark_published: no outbox generation");
        return ES_INVALID;
    }
    return n == 0 ? ES_OK : s->ops->mark_published(s->impl, evs, n, generation, err);
}

es_status es_reset_published(es_store *s, int64_t *count, sm_error *err)
{
    if (!s->ops->reset_published)
        return unsupported(s, "reset_published", err);
    int64_t ignored;
    return s->ops->reset_published(s->impl, count ? count : &ignored, err);
}

es_status es_outbox_stats(es_store *s, int64_t *pending, int64_t *oldest_ms, int64_t *published,
                          sm_error *err)
{
    if (!s->ops->outbox_stats)
        return unsupported(s, "outbox_stats", err);
    int64_t p, o, d;
    es_status st = s->ops->outbox_stats(s->impl, &p, &o, &d, err);
    if (st == ES_OK) {
        if (pending)
            *pending = p;
        if (oldest_ms)
            *oldest_ms = o;
        if (published)
            *published = d;
    }
    return st;
}

es_status es_get_meta(es_store *s, const char *key, char *out, size_t cap, sm_error *err)
{
    if (!s->ops->get_meta)
        return unsupported(s, "get_meta", err);
    return s->ops->get_meta(s->impl, key, out, cap, err);
}

es_status es_set_meta(es_store *s, const char *key, const char *value, sm_error *err)
{
    if (!s->ops->set_meta)
        return unsupported(s, "set_meta", err);
    if (strlen(value) >= ES_META_MAX) {
        sm_fail(err, SM_ERR_INVALID, "meta value for %s is too long", key);
        return ES_INVALID;
    }
    return s->ops->set_meta(s->impl, key, value, err);
}

es_status es_save_snapshot(es_store *s, const char *aggregate_id, int64_t version, int schema,
                           const char *data, sm_error *err)
{
    if (!s->ops->save_snapshot)
        return unsupported(s, "save_snapshot", err);
    if (!aggregate_id || !sm_uuid_parse(aggregate_id, NULL) || version < 0 || !data) {
        sm_fail(err, SM_ERR_INVALID, "save_snapshot: bad arguments");
        return ES_INVALID;
    }
    return s->ops->save_snapshot(s->impl, aggregate_id, version, schema, data, err);
}

es_status es_load_snapshot(es_store *s, const char *aggregate_id, int64_t max_version, int schema,
                           int64_t *version, char **data, sm_error *err)
{
    *data = NULL;
    *version = -1;
    if (!s->ops->load_snapshot)
        return unsupported(s, "load_snapshot", err);
    if (!aggregate_id || !sm_uuid_parse(aggregate_id, NULL)) {
        sm_fail(err, SM_ERR_INVALID, "load_snapshot: bad arguments");
        return ES_INVALID;
    }
    if (max_version < 0)
        return ES_NOT_FOUND;
    return s->ops->load_snapshot(s->impl, aggregate_id, max_version, schema, version, data, err);
}

es_status es_version_at(es_store *s, const char *aggregate_id, int64_t at_ms, int64_t *version,
                        sm_error *err)
{
    *version = -1;
    if (!s->ops->version_at)
        return unsupported(s, "version_at", err);
    if (!aggregate_id || !sm_uuid_parse(aggregate_id, NULL)) {
        sm_fail(err, SM_ERR_INVALID, "version_at: bad arguments");
        return ES_INVALID;
    }
    return s->ops->version_at(s->impl, aggregate_id, at_ms, version, err);
}

es_status es_lease_acquire(es_store *s, const char *name, const char *owner, int64_t epoch,
                           int64_t now_ms, int64_t ttl_ms, es_lease *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!s->ops->lease_acquire)
        return unsupported(s, "lease_acquire", err);
    if (!name || !*name || !owner || !*owner || strlen(owner) >= ES_LEASE_OWNER_MAX ||
        epoch < 0 || ttl_ms <= 0) {
        sm_fail(err, SM_ERR_INVALID, "lease_acquire: bad arguments");
        return ES_INVALID;
    }
    return s->ops->lease_acquire(s->impl, name, owner, epoch, now_ms, ttl_ms, out, err);
}

es_status es_lease_release(es_store *s, const char *name, const char *owner, int64_t epoch,
                           sm_error *err)
{
    if (!s->ops->lease_release)
        return unsupported(s, "lease_release", err);
    return s->ops->lease_release(s->impl, name, owner, epoch, err);
}

bool es_outbox_move(sm_event_list *out, sm_event_list *page)
{
    bool ok = true;
    for (size_t i = 0; ok && i < page->len; i++) {
        sm_event *slot = sm_event_list_push(out);
        if ((ok = slot != NULL)) {
            *slot = page->items[i];
            page->items[i] = (sm_event){0};
        }
    }
    sm_event_list_free(page);
    return ok;
}
