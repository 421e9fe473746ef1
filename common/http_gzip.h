/* SPDX-License-Identifier: Apache-2.0 */
/* http_gzip.h — gzip Content-Encoding of replies (both services).
 *
 * A reply is compressed when the client's Accept-Encoding takes gzip, its
 * type is text (JSON, text/..., JavaScript, CSS, SVG: images and fonts are
 * compressed already), and its body is at least HTTP_GZIP_MIN_BYTES long:
 * below that the gzip header and trailer (18 bytes) and the CPU cost more
 * than they save, and a small reply fits in one TCP segment anyway. Every
 * reply of a compressible type says Vary: Accept-Encoding, compressed or
 * not, so a shared cache keeps the two forms apart.
 *
 * zlib's deflate at level 1 (nginx's default): JSON shrinks 5-8 times at a
 * few hundred MB/s, where higher levels gain a few percent for several
 * times the CPU. Deflate streams are reset and reused from a small pool
 * (at most 8 idle): setting one up allocates about 270 KB, which would cost
 * more than compressing a small reply, and one kept per worker thread
 * would hold that much for each of hundreds of threads. Thread-safe. */
#ifndef HTTP_GZIP_H
#define HTTP_GZIP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_GZIP_MIN_BYTES 1024
#define HTTP_GZIP_LEVEL 1

/* True when an Accept-Encoding value takes gzip: "gzip", "x-gzip" or "*"
 * listed with a q-value above 0 (absent q is 1), and gzip not refused by
 * its own "gzip;q=0". Case-insensitive; NULL takes nothing. */
bool http_accepts_gzip(const char *accept_encoding);

/* True for the media types worth compressing (see above); NULL false. */
bool http_gzip_compressible(const char *content_type);

/* Compresses in[0..len) into a new heap buffer (*out, caller frees) of
 * *out_len bytes in the gzip format (RFC 1952). False (nothing allocated)
 * on OOM or a zlib error: the caller sends the body as it is. */
bool http_gzip(const char *in, size_t len, char **out, size_t *out_len);

#endif
