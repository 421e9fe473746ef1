/* SPDX-License-Identifier: Apache-2.0 */
/* read_model.c — the port's dispatch layer: URL scheme to adapter, and the
 * list helpers shared by every adapter. */
#include "read_model.h"

#include <stdlib.h>
#include <string.h>

struct rm_store {
    const rm_ops *ops;
    void *impl;
};

rm_store *rm_store_new(const rm_ops *ops, void *impl)
{
    rm_store *s = malloc(sizeof *s);
    if (!s) {
        ops->close(impl);
        return NULL;
    }
    s->ops = ops;
    s->impl = impl;
    return s;
}

sm_status rm_open(const char *url, rm_store **out, sm_error *err)
{
    *out = NULL;
    if (url && strncmp(url, "sqlite:", 7) == 0 && url[7])
        return rm_sqlite_open(url + 7, out, err);
    if (url && strncmp(url, "mssql:", 6) == 0 && url[6])
        return rm_mssql_open(url + 6, out, err);
    return sm_fail(err, SM_ERR_INVALID,
                   "unknown read model URL (expected sqlite:PATH or mssql:host=...;...)");
}

sm_status rm_apply(rm_store *s, const sm_event *ev, rm_outcome *outcome, sm_error *err)
{
    if (!sm_event_type_name(ev->type) || ev->version < 0)
        return sm_fail(err, SM_ERR_INVALID, "read model: not an event");
    return s->ops->apply(s->impl, ev, outcome, err);
}

sm_status rm_apply_batch(rm_store *s, const sm_event *const *evs, size_t n, rm_outcome *outcomes,
                         size_t *failed, sm_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (!sm_event_type_name(evs[i]->type) || evs[i]->version < 0) {
            if (failed)
                *failed = i;
            return sm_fail(err, SM_ERR_INVALID, "read model: not an event");
        }
    if (n == 0)
        return SM_OK;
    if (!s->ops->apply_batch)
        return sm_fail(err, SM_ERR_INTERNAL, "read model (%s): cannot apply a batch",
                       s->ops->name);
    return s->ops->apply_batch(s->impl, evs, n, outcomes, failed, err);
}

sm_status rm_query_posts(rm_store *s, const rm_query *q, rm_post_list *out, sm_error *err)
{
    if (q->limit <= 0 || q->offset < 0 || (q->kind == RM_Q_BY_ID && !q->id) ||
        (q->kind == RM_Q_BY_AUTHOR && !q->author) ||
        (q->comments_capped && q->comments_limit < 0))
        return sm_fail(err, SM_ERR_INVALID, "read model: bad query");
    return s->ops->query(s->impl, q, out, err);
}

sm_status rm_comment_page(rm_store *s, const rm_comment_query *q, rm_post_list *out,
                          sm_error *err)
{
    if (q->limit <= 0 || !q->post_id)
        return sm_fail(err, SM_ERR_INVALID, "read model: bad comment page");
    if (!s->ops->comment_page)
        return sm_fail(err, SM_ERR_INTERNAL, "read model (%s): no comment pages", s->ops->name);
    return s->ops->comment_page(s->impl, q, out, err);
}

sm_status rm_post_version(rm_store *s, const char *post_id, int64_t *version, sm_error *err)
{
    return s->ops->post_version(s->impl, post_id, version, err);
}

sm_status rm_ping(rm_store *s, sm_error *err) { return s->ops->ping(s->impl, err); }

const char *rm_adapter_name(const rm_store *s) { return s->ops->name; }

void rm_close(rm_store *s)
{
    if (!s)
        return;
    s->ops->close(s->impl);
    free(s);
}

rm_post *rm_post_list_push(rm_post_list *l)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        rm_post *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return NULL;
        l->items = items;
        l->cap = cap;
    }
    rm_post *p = &l->items[l->len++];
    memset(p, 0, sizeof *p);
    return p;
}

rm_comment *rm_post_add_comment(rm_post *p)
{
    /* grows by one: posts have few comments, and pages are bounded */
    rm_comment *c = realloc(p->comments, (p->ncomments + 1) * sizeof *c);
    if (!c)
        return NULL;
    p->comments = c;
    c = &p->comments[p->ncomments++];
    memset(c, 0, sizeof *c);
    return c;
}

void rm_post_list_free(rm_post_list *l)
{
    for (size_t i = 0; i < l->len; i++) {
        rm_post *p = &l->items[i];
        free(p->author);
        free(p->author_id);
        free(p->message);
        for (size_t j = 0; j < p->ncomments; j++) {
            free(p->comments[j].username);
            free(p->comments[j].user_id);
            free(p->comments[j].comment);
        }
        free(p->comments);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}
