/* SPDX-License-Identifier: Apache-2.0 */
/* post_cache.c — the aggregate cache (post_cache.h): a chained hash table
 * on post id plus a doubly linked LRU list, under one mutex. */
#include "post_cache.h"

#include "sm_hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    post_state state;
    size_t bytes;
    struct entry *hnext;         /* hash chain */
    struct entry *prev, *next;   /* LRU list, most recent at head */
} entry;

struct post_cache {
    pthread_mutex_t mu;
    entry **buckets;
    size_t nbuckets;             /* a power of two */
    entry *head, *tail;
    size_t entries, bytes, max_bytes;
    uint64_t hits, misses, evictions;
};

static size_t hash_id(const char *id) { return (size_t)sm_hash_text(id); }

/* A rough count of the heap a state holds: enough to bound memory. */
static size_t state_bytes(const post_state *p)
{
    size_t n = sizeof(entry) + 64;
    n += (p->author ? strlen(p->author) : 0) + (p->message ? strlen(p->message) : 0);
    n += p->author_id ? strlen(p->author_id) + 1 : 0;
    n += p->comments_cap * sizeof(post_comment);
    for (size_t i = 0; i < p->ncomments; i++) {
        const post_comment *c = &p->comments[i];
        n += strlen(c->text) + strlen(c->username) + 32 + (c->user_id ? strlen(c->user_id) : 0);
    }
    return n;
}

post_cache *post_cache_new(size_t max_bytes)
{
    post_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->nbuckets = 1024;
    if (!(c->buckets = calloc(c->nbuckets, sizeof *c->buckets))) {
        free(c);
        return NULL;
    }
    c->max_bytes = max_bytes;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void post_cache_free(post_cache *c)
{
    if (!c)
        return;
    for (entry *e = c->head, *next; e; e = next) {
        next = e->next;
        post_free(&e->state);
        free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}

static entry **slot_of(post_cache *c, const char *id)
{
    entry **s = &c->buckets[hash_id(id) & (c->nbuckets - 1)];
    while (*s && strcmp((*s)->state.id, id) != 0)
        s = &(*s)->hnext;
    return s;
}

static void lru_unlink(post_cache *c, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(post_cache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Unlinks e from both structures; the caller owns it afterwards. */
static void detach(post_cache *c, entry *e)
{
    entry **s = slot_of(c, e->state.id);
    *s = e->hnext;
    lru_unlink(c, e);
    c->entries--;
    c->bytes -= e->bytes;
}

/* Entries to free once the lock is released, chained through hnext. */
static void push_victim(entry **victims, entry *e)
{
    e->hnext = *victims;
    *victims = e;
}

static void destroy(entry *e)
{
    post_free(&e->state);
    free(e);
}

/* Doubles the table when chains grow past one entry on average; a failed
 * allocation just keeps the longer chains. */
static void maybe_grow(post_cache *c)
{
    if (c->entries <= c->nbuckets)
        return;
    size_t n = c->nbuckets * 2;
    entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (entry *e = c->head; e; e = e->next) {
        size_t i = hash_id(e->state.id) & (n - 1);
        e->hnext = b[i];
        b[i] = e;
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

bool post_cache_take(post_cache *c, const char *post_id, post_state *out)
{
    pthread_mutex_lock(&c->mu);
    entry *e = *slot_of(c, post_id);
    if (e) {
        detach(c, e);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    if (!e)
        return false;
    *out = e->state;
    free(e);
    return true;
}

void post_cache_put(post_cache *c, post_state *p)
{
    entry *e = calloc(1, sizeof *e);
    size_t bytes = state_bytes(p);
    if (!e || bytes > c->max_bytes / 8 || !post_exists(p)) {
        free(e);
        post_free(p);
        return;
    }
    e->state = *p;
    e->bytes = bytes;
    post_init(p);
    entry *victims = NULL;
    pthread_mutex_lock(&c->mu);
    entry *old = *slot_of(c, e->state.id);
    if (old && old->state.version >= e->state.version) {
        push_victim(&victims, e);
    } else {
        if (old) {
            detach(c, old);
            push_victim(&victims, old);
        }
        entry **s = slot_of(c, e->state.id);
        e->hnext = *s;
        *s = e;
        lru_push_front(c, e);
        c->entries++;
        c->bytes += e->bytes;
        while (c->bytes > c->max_bytes && c->tail != e) {
            entry *lru = c->tail;
            detach(c, lru);
            push_victim(&victims, lru);
            c->evictions++;
        }
        maybe_grow(c);
    }
    pthread_mutex_unlock(&c->mu);
    for (entry *v = victims, *next; v; v = next) {
        next = v->hnext;
        destroy(v);
    }
}

void post_cache_forget(post_cache *c, const char *post_id)
{
    pthread_mutex_lock(&c->mu);
    entry *e = *slot_of(c, post_id);
    if (e)
        detach(c, e);
    pthread_mutex_unlock(&c->mu);
    if (e)
        destroy(e);
}

void post_cache_get_stats(post_cache *c, post_cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = (post_cache_stats){c->hits, c->misses, c->evictions, c->entries, c->bytes,
                              c->max_bytes};
    pthread_mutex_unlock(&c->mu);
}
