/* SPDX-License-Identifier: Apache-2.0 */
/* sm_event.h — the event envelope and its JSON codec.
 *
 * Envelope (docs/api.md, "Events"):
 *   {"eventId":"<uuid>","type":"PostLikedEvent","aggregateId":"<uuid>",
 *    "version":3,"timestamp":"2026-11-26T23:05:01.123Z","data":{...},
 *    "metadata":{"userId":"<sub>"|null,"requestId":"...","traceparent":"..."}}
 *
 * Payloads (camelCase):
 *   PostCreatedEvent     author, message, datePosted [, authorId]
 *   MessageUpdatedEvent  message
 *   PostLikedEvent       (none)
 *   CommentAddedEvent    commentId, comment, username, commentDate [, userId]
 *   CommentUpdatedEvent  commentId, comment, username, editDate
 *   CommentRemovedEvent  commentId
 *   PostRemovedEvent     (none)
 *
 * authorId / userId are the owner's user id (the token's `sub`) when the
 * command was authenticated; events written without auth (or before it
 * existed) have none, and decode with NULL. "metadata" is optional on
 * decode for the same reason: events stored before it existed lack it.
 * Encoding writes "metadata" always (userId null when unknown), and
 * requestId / traceparent only when known.
 *
 * An sm_event owns its strings; sm_event_clear() frees them. The struct is
 * flat on purpose: every payload is a subset of the same few fields, and a
 * union would buy nothing but casts. */
#ifndef SM_EVENT_H
#define SM_EVENT_H

#include "sm_error.h"
#include "sm_uuid.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SM_EV_NONE = 0,
    SM_EV_POST_CREATED,
    SM_EV_MESSAGE_UPDATED,
    SM_EV_POST_LIKED,
    SM_EV_COMMENT_ADDED,
    SM_EV_COMMENT_UPDATED,
    SM_EV_COMMENT_REMOVED,
    SM_EV_POST_REMOVED
} sm_event_type;

#define SM_EV_TYPE_COUNT 8 /* including SM_EV_NONE */

/* Limits of the metadata strings (decode refuses longer ones). */
#define SM_EVENT_USER_ID_MAX 255
#define SM_EVENT_REQUEST_ID_MAX 64
#define SM_EVENT_TRACEPARENT_LEN 55 /* "00-<32 hex>-<16 hex>-<2 hex>" */

/* Who raised an event and on which request: not part of the fact, so it is
 * never used by the rules; kept for audit and tracing. */
typedef struct sm_event_meta {
    char *user_id;                                    /* NULL: no authenticated caller */
    char request_id[SM_EVENT_REQUEST_ID_MAX + 1];     /* "" if none */
    char traceparent[SM_EVENT_TRACEPARENT_LEN + 1];   /* W3C trace context, "" if none */
} sm_event_meta;

typedef struct sm_event {
    sm_uuid_str event_id;
    sm_event_type type;
    sm_uuid_str aggregate_id;
    int64_t version;      /* 0 for a post's first event, then +1 each */
    int64_t timestamp_ms; /* when the event was raised (UTC) */
    /* payload; which fields are set depends on type (see above) */
    char *author;
    char *message;
    char *comment;
    char *username;
    sm_uuid_str comment_id;
    int64_t at_ms;        /* datePosted, commentDate or editDate */
    char *author_id;      /* PostCreated: the author's user id, or NULL */
    char *user_id;        /* CommentAdded: the commenter's user id, or NULL */
    sm_event_meta meta;
} sm_event;

/* Wire name of a type ("PostLikedEvent"), or NULL for SM_EV_NONE / unknown. */
const char *sm_event_type_name(sm_event_type type);

/* Inverse of sm_event_type_name (exact match); SM_EV_NONE if unknown. */
sm_event_type sm_event_type_from_name(const char *name);

/* Frees the strings an event owns and zeroes it. Safe on a zeroed event. */
void sm_event_clear(sm_event *ev);

/* Deep copy; dst must be zeroed or cleared. Returns false on OOM (dst stays
 * cleared). */
bool sm_event_copy(sm_event *dst, const sm_event *src);

/* The payload alone as a new JSON object (caller owns the reference). */
json_t *sm_event_data_to_json(const sm_event *ev);

/* The metadata object alone, and back: stores keep it apart from the
 * payload. meta_from_json accepts NULL (absent: all unset) and refuses
 * wrong types and over-long values. */
json_t *sm_event_meta_to_json(const sm_event_meta *meta);
sm_status sm_event_meta_from_json(sm_event_meta *meta, const json_t *obj, sm_error *err);

/* True if s is a valid W3C traceparent (version 00, lower-case hex, ids
 * not all zero). */
bool sm_traceparent_valid(const char *s);

/* Writes a new traceparent into out: version 00, a random trace id and
 * parent id (getrandom, as sm_uuid_new), flags 01 (sampled). False if the
 * system gave no randomness. Thread-safe. */
bool sm_traceparent_new(char out[SM_EVENT_TRACEPARENT_LEN + 1]);

/* The whole envelope as a new JSON object (caller owns the reference). */
json_t *sm_event_to_json(const sm_event *ev);

/* Encodes the envelope as compact JSON; caller frees with free(). */
char *sm_event_encode(const sm_event *ev);

/* Fills ev's payload from a "data" object for the given type. ev->type must
 * be set. Returns SM_ERR_INVALID naming the bad field. */
sm_status sm_event_data_from_json(sm_event *ev, const json_t *data, sm_error *err);

/* Decodes an envelope object into ev (zeroed by the call). Rejects missing or
 * wrongly typed fields, unknown types, bad UUIDs and timestamps, negative
 * versions; on failure ev is left cleared and err says why. */
sm_status sm_event_from_json(sm_event *ev, const json_t *obj, sm_error *err);

/* Decodes len bytes of JSON text (need not be NUL-terminated); text nested
 * deeper than SM_JSON_MAX_DEPTH is refused before it is parsed. */
sm_status sm_event_decode(sm_event *ev, const char *text, size_t len, sm_error *err);

/* A growable array of events that owns its elements. */
typedef struct sm_event_list {
    sm_event *items;
    size_t len, cap;
} sm_event_list;

/* Appends a zeroed slot and returns it, or NULL on OOM. The pointer is valid
 * until the next push. */
sm_event *sm_event_list_push(sm_event_list *list);
void sm_event_list_free(sm_event_list *list);

#endif
