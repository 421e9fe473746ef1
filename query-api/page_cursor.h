/* SPDX-License-Identifier: Apache-2.0 */
/* page_cursor.h — the `after` cursor of keyset pages (docs/api.md, "Order
 * and pages").
 *
 * Lists are ordered by datePosted descending, then id ascending, and that
 * pair is unique, so a post's place in every list is the pair itself: the
 * next page is "the posts after (datePosted, id) in that order", which a
 * read model answers with an index seek whatever the depth, where OFFSET
 * reads and throws away every row before the page. A cursor is that pair,
 * opaque to clients: base64url without padding (RFC 4648 5) of 25 bytes,
 *   1  the format (PAGE_CURSOR_FORMAT)
 *   8  datePosted, UTC milliseconds, big-endian
 *   16 the post id's bytes
 * so 34 characters, safe in a query string as it is. The format byte lets
 * a later cursor carry more (another order) and an old one be refused.
 *
 * The comment pages (GET /api/v1/PostLookup/comments/{postId}) use the same
 * layout with their own format byte, PAGE_CURSOR_COMMENTS: the pair is the
 * comment's (commentDate, commentId), in ascending order, so a list's
 * cursor given to the comment route (or the reverse) is refused rather than
 * read as a place in the wrong list.
 *
 * A position, not a snapshot: posts inserted or removed between two pages
 * move no other post's place, so following cursors never repeats a post
 * and never skips one that existed when the first page was read (new posts
 * land wherever their own pair puts them).
 *
 * Pure functions, thread-safe. */
#ifndef PAGE_CURSOR_H
#define PAGE_CURSOR_H

#include "sm_uuid.h"

#include <stdbool.h>
#include <stdint.h>

#define PAGE_CURSOR_FORMAT 1   /* the post lists: (datePosted, id) */
#define PAGE_CURSOR_COMMENTS 2 /* a post's comments: (commentDate, commentId) */
#define PAGE_CURSOR_LEN 34
/* datetime2's last millisecond, 9999-12-31T23:59:59.999Z: the SQL Server
 * read model cannot hold a later date, so no cursor names one. */
#define PAGE_CURSOR_MAX_MS INT64_C(253402300799999)

typedef struct page_cursor {
    int64_t date_posted_ms; /* 0..PAGE_CURSOR_MAX_MS (commentDate for comments) */
    sm_uuid_str id;         /* canonical (lower case) */
} page_cursor;

/* The cursor of the position after post (date_posted_ms, id). False (out
 * untouched) if id is not a UUID or the date is out of range. */
bool page_cursor_encode(int64_t date_posted_ms, const char *id, char out[PAGE_CURSOR_LEN + 1]);

/* Parses a cursor given by a client. False for anything page_cursor_encode
 * could not have written: another length, a letter outside base64url,
 * padding, stray bits in the last letter, an unknown format, a date out of
 * range. */
bool page_cursor_decode(const char *text, page_cursor *out);

/* The same for a cursor of another format (PAGE_CURSOR_COMMENTS): encode
 * writes that format byte, decode refuses any other (a list's cursor
 * included). page_cursor_encode/decode are these with PAGE_CURSOR_FORMAT. */
bool page_cursor_encode_as(int format, int64_t date_ms, const char *id,
                           char out[PAGE_CURSOR_LEN + 1]);
bool page_cursor_decode_as(int format, const char *text, page_cursor *out);

#endif
