/* SPDX-License-Identifier: Apache-2.0 */
/* rm_roundtrip URL MARKER: opens the read model at URL (rm_open), applies
 * one PostCreated event whose message and author hold MARKER, reads the
 * post back by id and checks the text. Prints "ok <post id>" and exits 0,
 * or prints the error and exits 1. tests/integration/mssql_tls.sh runs it
 * over TLS (and under strace, to look for MARKER on the wire). */
#include "read_model.h"
#include "sm_event.h"
#include "sm_time.h"
#include "sm_uuid.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: rm_roundtrip URL MARKER\n");
        return 2;
    }
    sm_error err = {0};
    rm_store *s = NULL;
    if (rm_open(argv[1], &s, &err) != SM_OK) {
        printf("open failed: %s\n", err.message);
        return 1;
    }
    sm_event e = {0};
    sm_uuid_new(e.event_id);
    sm_uuid_new(e.aggregate_id);
    e.type = SM_EV_POST_CREATED;
    e.version = 0;
    e.timestamp_ms = e.at_ms = sm_now_ms();
    e.author = argv[2];
    e.message = argv[2];
    rm_outcome o = RM_GAP;
    int rc = 1;
    rm_post_list l = {0};
    if (rm_apply(s, &e, &o, &err) != SM_OK || o != RM_APPLIED) {
        printf("apply failed: %s\n", err.message);
        goto out;
    }
    rm_query q = {.kind = RM_Q_BY_ID, .id = e.aggregate_id, .limit = 1};
    if (rm_query_posts(s, &q, &l, &err) != SM_OK) {
        printf("query failed: %s\n", err.message);
        goto out;
    }
    if (l.len != 1 || strcmp(l.items[0].message, argv[2]) != 0) {
        printf("read back %zu posts, not the one applied\n", l.len);
        goto out;
    }
    printf("ok %s\n", e.aggregate_id);
    rc = 0;
out:
    rm_post_list_free(&l);
    rm_close(s);
    return rc;
}
