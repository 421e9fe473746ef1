/* faulty_rm.c — see faulty_rm.h. */
#include "faulty_rm.h"

#include <pthread.h>
#include <stdlib.h>

struct faulty_rm {
    rm_store *inner;
    pthread_mutex_t lock; /* guards the three fields below */
    int fail_left;        /* < 0: fail until told otherwise */
    sm_status fail_with;
    int failed;
};

static sm_status f_apply(void *impl, const sm_event *ev, rm_outcome *outcome, sm_error *err)
{
    faulty_rm *f = impl;
    pthread_mutex_lock(&f->lock);
    bool fail = f->fail_left != 0;
    sm_status st = f->fail_with;
    if (fail) {
        f->failed++;
        if (f->fail_left > 0)
            f->fail_left--;
    }
    pthread_mutex_unlock(&f->lock);
    if (fail)
        return sm_fail(err, st, "read model (faulty): injected fault applying %s at version %lld",
                       sm_event_type_name(ev->type), (long long)ev->version);
    return rm_apply(f->inner, ev, outcome, err);
}

static sm_status f_query(void *impl, const rm_query *q, rm_post_list *out, sm_error *err)
{
    return rm_query_posts(((faulty_rm *)impl)->inner, q, out, err);
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
    .query = f_query,
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

int faulty_rm_failed(faulty_rm *f)
{
    pthread_mutex_lock(&f->lock);
    int n = f->failed;
    pthread_mutex_unlock(&f->lock);
    return n;
}
