/* SPDX-License-Identifier: Apache-2.0 */
/* http_etag.h — conditional GETs of query answers (ETag / If-None-Match).
 *
 * A query answer's ETag is derived from its bytes as sent without
 * Content-Encoding: a 64-bit digest (zlib's CRC-32 and Adler-32 side by
 * side, a few GB/s) of the JSON. That JSON holds each post's version, its
 * likes and comments and the page's cursor, so the tag changes whenever
 * anything in the answer does, and stays the same when nothing did: a
 * client polling a feed gets 304 with no body until a post in it changes,
 * a post joins or leaves it, or the message would read differently.
 *
 * The tag is weak (W/"..."): the gzip and identity forms of one answer
 * share it, which RFC 9110 allows only for weak tags; If-None-Match
 * compares weakly anyway. Pure functions, thread-safe. */
#ifndef HTTP_ETAG_H
#define HTTP_ETAG_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_ETAG_MAX 24 /* W/"<16 hex digits>" and NUL */

/* The weak ETag of a body: W/"<16 lower-case hex digits>". */
void http_etag_of(const char *body, size_t len, char out[HTTP_ETAG_MAX]);

/* True when an If-None-Match value matches etag by the weak comparison:
 * "*", or a comma-separated list of entity tags of which one has the same
 * opaque part (W/ prefixes ignored). A list that does not parse matches
 * nothing, so the full answer is sent. */
bool http_if_none_match(const char *header, const char *etag);

#endif
