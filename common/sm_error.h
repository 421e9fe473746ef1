/* SPDX-License-Identifier: Apache-2.0 */
/* sm_error.h — errors as values.
 *
 * Every fallible function in smpost returns an sm_status and, when it fails,
 * fills a caller-provided sm_error with a message fit for both a log line and
 * a client. The HTTP layer maps a status to a code in one table (http_util.c),
 * so nothing below the edge knows about HTTP. */
#ifndef SM_ERROR_H
#define SM_ERROR_H

#include <stdarg.h>

typedef enum {
    SM_OK = 0,
    SM_ERR_INVALID,        /* malformed input, bad field: 400 */
    SM_ERR_RULE,           /* a business rule refused the command: 400 */
    SM_ERR_NOT_FOUND,      /* unknown post or comment: 404 */
    SM_ERR_METHOD,         /* path exists, verb does not: 405 */
    SM_ERR_CONFLICT,       /* optimistic concurrency lost after retries: 409 */
    SM_ERR_PRECONDITION,   /* If-Match version did not hold: 412 */
    SM_ERR_TOO_LARGE,      /* body over the limit: 413 */
    SM_ERR_MEDIA_TYPE,     /* body is not JSON: 415 */
    SM_ERR_UNAVAILABLE,    /* a dependency is down; retry later: 503 */
    SM_ERR_INTERNAL,       /* anything else: 500 */
    SM_ERR_TIMEOUT,        /* the client did not send its request in time: 408 */
    SM_ERR_UNAUTHENTICATED, /* no bearer token, or one the verifier refused: 401 */
    SM_ERR_FORBIDDEN       /* authenticated, but not allowed to do this: 403 */
} sm_status;

#define SM_ERROR_MAX 512

typedef struct sm_error {
    sm_status status;
    char message[SM_ERROR_MAX];
} sm_error;

/* Sets err (if not NULL) and returns status, so callers can write
 * `return sm_fail(err, SM_ERR_INVALID, "bad %s", what);`. */
sm_status sm_fail(sm_error *err, sm_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void sm_error_clear(sm_error *err);

/* Short stable code for a status ("not_found", "conflict"...), used as the
 * "error" field of JSON error bodies and in logs. Never NULL. */
const char *sm_status_code(sm_status status);

#endif
