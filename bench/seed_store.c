/* SPDX-License-Identifier: Apache-2.0 */
/* seed_store.c — fills an event store with long streams, for the "cost of a
 * like against stream length" figure of bench/run.sh.
 *
 *   seed_store [--batch N] STORE_URL EVENTS [EVENTS...]
 *
 * Creates one post per EVENTS argument, with EVENTS events in all (its
 * PostCreatedEvent and EVENTS-1 PostLikedEvents), and prints each post's id
 * on its own line. Going through HTTP would take minutes for 100,000
 * events; this goes through the event store port (es_append, in batches of
 * N events per transaction, BATCH by default; --batch 1 for a MongoDB
 * without multi-document transactions, such as FerretDB, which refuses
 * batches) and makes the events with the aggregate's
 * own post_decide_create / post_decide_like folded by post_apply, so the
 * stored stream is exactly what command-api would have written. Run it on
 * a store no command-api has open yet (the outbox rows it leaves are
 * unpublished; bench/run.sh starts command-api without Kafka on it). */
#include "event_store.h"
#include "post.h"
#include "sm_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 5000

/* Appends the events of one post with `total` events, `batch` per append;
 * prints its id. */
static int seed_post(es_store *s, long total, size_t batch_max, sm_error *err)
{
    sm_uuid_str id;
    if (!sm_uuid_new_v7(id)) {
        sm_fail(err, SM_ERR_INTERNAL, "no random numbers for an id");
        return -1;
    }
    post_state p;
    post_init(&p);
    sm_event *batch = calloc(batch_max, sizeof *batch);
    int rc = batch ? 0 : -1;
    long made = 0;
    while (rc == 0 && made < total) {
        size_t n = 0;
        int64_t expected = p.version; /* -1 before the first event */
        for (; n < batch_max && made < total; n++, made++) {
            sm_status st = made == 0
                               ? post_decide_create(id, "bench-seed", "a long stream", sm_now_ms(),
                                                    &batch[n], err)
                               : post_decide_like(&p, sm_now_ms(), &batch[n], err);
            if (st == SM_OK)
                st = post_apply(&p, &batch[n], err);
            if (st != SM_OK) {
                sm_event_clear(&batch[n]);
                rc = -1;
                break;
            }
        }
        if (rc == 0 && es_append(s, id, expected, batch, n, err) != ES_OK)
            rc = -1;
        for (size_t i = 0; i < n; i++)
            sm_event_clear(&batch[i]);
    }
    free(batch);
    post_free(&p);
    if (rc == 0)
        printf("%s\n", id);
    return rc;
}

int main(int argc, char **argv)
{
    size_t batch = BATCH;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--batch") == 0) {
        long b = atol(argv[2]);
        if (b < 1 || b > BATCH) {
            fprintf(stderr, "seed_store: --batch must be 1 to %d: %s\n", BATCH, argv[2]);
            return 2;
        }
        batch = (size_t)b;
        first = 3;
    }
    if (argc < first + 2) {
        fprintf(stderr, "usage: seed_store [--batch N] STORE_URL EVENTS [EVENTS...]\n");
        return 2;
    }
    for (int i = first + 1; i < argc; i++)
        if (atol(argv[i]) < 1) {
            fprintf(stderr, "seed_store: EVENTS must be at least 1: %s\n", argv[i]);
            return 2;
        }
    es_store *s = NULL;
    sm_error err = {0};
    if (es_open(argv[first], &s, &err) != ES_OK) {
        fprintf(stderr, "seed_store: %s\n", err.message);
        return 1;
    }
    int64_t t0 = sm_mono_ms();
    int rc = 0;
    for (int i = first + 1; i < argc && rc == 0; i++)
        if (seed_post(s, atol(argv[i]), batch, &err) != 0) {
            fprintf(stderr, "seed_store: %s\n", err.message);
            rc = 1;
        }
    es_close(s);
    fprintf(stderr, "seed_store: %d post(s) in %lld ms\n", argc - first - 1,
            (long long)(sm_mono_ms() - t0));
    return rc;
}
