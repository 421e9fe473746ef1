/* SPDX-License-Identifier: Apache-2.0 */
/* lg_http.h — the little HTTP/1.1 client side bench/loadgen needs: parse a
 * base URL, recognise one complete response in a byte buffer, and pick a
 * field out of a flat JSON body.
 *
 * It is not a general client: responses must carry Content-Length (both
 * smpost services always send it) or have no body (204/304); chunked
 * transfer encoding is refused as malformed so a change on the server side
 * shows up as errors rather than as wrong numbers. No I/O here, so every
 * function is pure and thread-safe. */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* A parsed base URL "http://HOST[:PORT][/]" (no path beyond "/"). */
typedef struct lg_url {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[128]; /* for the Host header: "HOST:PORT" */
} lg_url;

/* Resolves url (numeric or by name). Returns false with a reason in why
 * (cap bytes) for anything else, e.g. https. */
bool lg_url_parse(const char *url, lg_url *out, char *why, size_t cap);

typedef struct lg_response {
    int status;
    const char *body; /* points into the parsed buffer; not NUL-terminated */
    size_t body_len;
    bool close;       /* "Connection: close": the server will close after this */
    bool stale;       /* "X-Read-Model-Stale: true" (query-api's minVersion timed out) */
} lg_response;

/* Looks for one complete response at the start of buf. Returns its total
 * length in bytes (headers and body) and fills out, 0 if more bytes are
 * needed, or -1 if the bytes cannot be a response this parser handles. */
long lg_http_parse(const char *buf, size_t len, lg_response *out);

/* Copies the string value of "key" in a flat JSON body into out (cap
 * bytes, NUL-terminated). False if absent, not a string or too long. */
bool lg_json_str(const char *body, size_t len, const char *key, char *out, size_t cap);

/* Reads the integer value of "key" in a flat JSON body. */
bool lg_json_int(const char *body, size_t len, const char *key, long long *out);

#endif
