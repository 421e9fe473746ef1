/* SPDX-License-Identifier: Apache-2.0 */
/* faulty_rm.c — see faulty_rm.h. */
#include "faulty_rm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct faulty_rm {
    rm_store *inner;
    pthread_mutex_t lock; /* guards the fields below */
    int fail_left;        /* < 0: fail until told otherwise */
    sm_status fail_with;
    sm_uuid_str event_post; /* faulty_rm_fail_event's target; "" if none */
    int64_t event_version;
    int event_left;       /* < 0: until told otherwise */
    sm_status event_with;
    int failed;
};

/* Whether an apply of evs[0..n) is to fail now, and with what; counts it. */
static bool take_fault(faulty_rm *f, const sm_event *const *evs, size_t n, sm_status *st,
                       const sm_event **which)
{
    pthread_mutex_lock(&f->lock);
    bool fail = false;
    for (size_t i = 0; f->event_left != 0 && i < n && !fail; i++)
        if (evs[i]->version == f->event_version && strcmp(evs[i]->aggregate_id, f->event_post) == 0) {
            fail = true;
            *st = f->event_with;
            *which = evs[i];
            if (f->event_left > 0)
                f->event_left--;
        }
    if (!fail && f->fail_left != 0) {
        fail = true;
        *st = f->fail_with;
        *which = evs[0];
        if (f->fail_left > 0)
            f->fail_left--;
    }
    if (fail)
        f->failed++;
    pthread_mutex_unlock(&f->lock);
    return fail;
}

static sm_status injected(sm_status st, const sm_event *ev, sm_error *err)
{
    return sm_fail(err, st, "read model (faulty): injected fault applying %s at version %lld",
                   sm_event_type_name(ev->type), (long long)ev->version);
}

static sm_status f_apply(void *impl, const sm_event *ev, rm_outcome *outcome, sm_error *err)
{
    faulty_rm *f = impl;
    sm_status st;
    const sm_event *which;
    if (take_fault(f, &ev, 1, &st, &which))
        return injected(st, which, err);
    return rm_apply(f->inner, ev, outcome, err);
}

static sm_status f_apply_batch(void *impl, const sm_event *const *evs, size_t n,
                               rm_outcome *outcomes, size_t *failed, sm_error *err)
{
    faulty_rm *f = impl;
    sm_status st;
    const sm_event *which = NULL;
    if (take_fault(f, evs, n, &st, &which)) {
        if (failed)
            for (*failed = 0; evs[*failed] != which; (*failed)++)
                ;
        return injected(st, which, err);
    }
    return rm_apply_batch(f->inner, evs, n, outcomes, failed, err);
}

static sm_status f_query(void *impl, const rm_query *q, rm_post_list *out, sm_error *err)
{
    return rm_query_posts(((faulty_rm *)impl)->inner, q, out, err);
}

static sm_status f_comment_page(void *impl, const rm_comment_query *q, rm_post_list *out,
                                sm_error *err)
{
    return rm_comment_page(((faulty_rm *)impl)->inner, q, out, err);
}

static sm_status f_post_version(void *impl, const char *post_id, int64_t *version, sm_error *err)
{
    return rm_post_version(((faulty_rm *)impl)->inner, post_id, version, err);
}

static sm_status f_ping(void *impl, sm_error *err)
{
    return rm_ping(((faulty_rm *)impl)->inner, err);
}

static void f_close(void *impl)
{
    faulty_rm *f = impl;
    rm_close(f->inner);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static const rm_ops faulty_ops = {
    .name = "faulty",
    .apply = f_apply,
    .apply_batch = f_apply_batch,
    .query = f_query,
    .comment_page = f_comment_page,
    .post_version = f_post_version,
    .ping = f_ping,
    .close = f_close,
};

rm_store *faulty_rm_wrap(rm_store *inner, faulty_rm **ctl)
{
    faulty_rm *f = calloc(1, sizeof *f);
    if (!f) {
        rm_close(inner);
        return NULL;
    }
    f->inner = inner;
    f->fail_with = SM_ERR_INTERNAL;
    pthread_mutex_init(&f->lock, NULL);
    rm_store *s = rm_store_new(&faulty_ops, f); /* closes f on failure */
    if (s && ctl)
        *ctl = f;
    return s;
}

void faulty_rm_fail_applies(faulty_rm *f, int n, sm_status st)
{
    pthread_mutex_lock(&f->lock);
    f->fail_left = n;
    f->fail_with = st;
    pthread_mutex_unlock(&f->lock);
}

void faulty_rm_fail_event(faulty_rm *f, const char *post_id, int64_t version, int n,
                          sm_status st)
{
    pthread_mutex_lock(&f->lock);
    snprintf(f->event_post, sizeof f->event_post, "%s", post_id);
    f->event_version = version;
    f->event_left = n;
    f->event_with = st;
    pthread_mutex_unlock(&f->lock);
}

int faulty_rm_failed(faulty_rm *f)
{
    pthread_mutex_lock(&f->lock);
    int n = f->failed;
    pthread_mutex_unlock(&f->lock);
    return n;
}
