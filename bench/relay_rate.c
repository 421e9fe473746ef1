/* SPDX-License-Identifier: Apache-2.0 */
/* relay_rate.c — measures the outbox relay's publish rate (events/s).
 *
 *   relay_rate BOOTSTRAP STORE_URL POSTS EVENTS_PER_POST
 *
 * Fills an empty event store with POSTS posts of EVENTS_PER_POST events each,
 * all unpublished, then starts the relay against the broker at BOOTSTRAP and
 * times how long it takes until the outbox is empty. Prints one line:
 *   relay posts=.. events=.. seconds=.. events_per_s=..
 * Per-post order is strict (version n+1 only after n is confirmed), so the
 * rate for one hot post is bounded by the broker round trip; many posts
 * publish in parallel batches. */
#include "event_store.h"
#include "relay.h"
#include "sm_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fill(es_store *s, long posts, long per_post)
{
    for (long p = 0; p < posts; p++) {
        sm_uuid_str id;
        sm_uuid_new(id);
        sm_event *evs = calloc((size_t)per_post, sizeof *evs);
        for (long v = 0; v < per_post; v++) {
            sm_event *ev = &evs[v];
            sm_uuid_new(ev->event_id);
            strcpy(ev->aggregate_id, id);
            ev->version = v;
            ev->timestamp_ms = ev->at_ms = sm_now_ms();
            ev->type = v == 0 ? SM_EV_POST_CREATED : SM_EV_POST_LIKED;
            if (v == 0) {
                ev->author = strdup("bench");
                ev->message = strdup("relay throughput");
            }
        }
        sm_error err = {0};
        es_status st = es_append(s, id, -1, evs, (size_t)per_post, &err);
        for (long v = 0; v < per_post; v++)
            sm_event_clear(&evs[v]);
        free(evs);
        if (st != ES_OK) {
            fprintf(stderr, "append: %s\n", err.message);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: relay_rate BOOTSTRAP STORE_URL POSTS EVENTS_PER_POST\n");
        return 2;
    }
    long posts = atol(argv[3]), per_post = atol(argv[4]);
    es_store *s = NULL;
    sm_error err = {0};
    if (es_open(argv[2], &s, &err) != ES_OK || fill(s, posts, per_post) != 0) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
    }
    relay_opts ro = {.store = s, .bus = {argv[1], "SocialMediaPostEvents", "bench", NULL}};
    int64_t t0 = sm_mono_ms();
    relay *r = relay_start(&ro, &err);
    if (!r) {
        fprintf(stderr, "relay: %s\n", err.message);
        return 1;
    }
    int64_t pending = 1, oldest;
    while (pending > 0 && sm_mono_ms() - t0 < 120000) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
        es_outbox_stats(s, &pending, &oldest, NULL, &err);
    }
    double secs = (double)(sm_mono_ms() - t0) / 1000.0;
    relay_stop(r, 5000);
    es_close(s);
    long events = posts * per_post;
    printf("relay posts=%ld events=%ld seconds=%.3f events_per_s=%.0f%s\n", posts, events, secs,
           (double)events / secs, pending > 0 ? " (TIMED OUT)" : "");
    return pending > 0;
}
