/* SPDX-License-Identifier: Apache-2.0 */
/* post_snapshot.h — the Post aggregate's state as a snapshot text, and back.
 *
 * A snapshot is only a shortcut: the state after versions 0..version of one
 * post, so that rehydration can start there instead of at event 0. It must
 * therefore decode to exactly the state the events give, or not at all.
 * Three things protect that:
 *  - POST_SNAPSHOT_SCHEMA names the encoding and the fold that produced it.
 *    Change post_state, post_apply() or this format and bump it: stores keep
 *    snapshots per schema and readers ask only for their own, so old ones are
 *    ignored rather than trusted (and are rebuilt from the events).
 *  - The text carries the post id and version, checked on decode.
 *  - It carries the id of the event it was taken after; the loader
 *    (post_repo.c) reads that event again and drops the snapshot unless the
 *    id matches, so a snapshot that outlived its stream (a restored or
 *    rewritten store) is never applied to another history.
 *
 * Integer milliseconds are stored as such (not ISO text), so a round trip is
 * exact. Pure functions; thread-safe. */
#ifndef POST_SNAPSHOT_H
#define POST_SNAPSHOT_H

#include "post.h"

/* 2: owner ids (authorId, comments' userId) joined the state. */
#define POST_SNAPSHOT_SCHEMA 2

/* p as snapshot text, taken after the event last_event_id (p->version).
 * Caller frees; NULL on OOM. */
char *post_snapshot_encode(const post_state *p, const char *last_event_id);

/* Decodes text into *out (post_init'ed by the call; post_free() it) and
 * copies the event id it was taken after into last_event_id. The snapshot
 * must be of post_id at version: else, or if any field is missing or
 * mistyped, SM_ERR_INVALID and *out is left empty. */
sm_status post_snapshot_decode(const char *text, const char *post_id, int64_t version,
                               post_state *out, sm_uuid_str last_event_id, sm_error *err);

#endif
