/* SPDX-License-Identifier: Apache-2.0 */
/* http_static.h — serving files of one directory over HTTP, safely.
 *
 * Used for Swagger UI's files (swagger-ui-dist), but knows nothing about
 * them: a request names one file directly inside a root directory, and the
 * file is sent with the Content-Type of its extension.
 *
 * What can be served is narrow on purpose, because the name comes from the
 * URL: one path segment of letters, digits, '.', '_' and '-', not starting
 * with '.' (so no "..", no hidden files, no '/' or '\\'), with an extension
 * in the type table (html, js, css, png, svg, ico, map, json, txt), naming
 * a regular file whose real path (symbolic links resolved) is still inside
 * the real root. Everything else is "not found", never a file elsewhere.
 *
 * Thread-safety: no shared state; call from any thread. */
#ifndef HTTP_STATIC_H
#define HTTP_STATIC_H

#include "http_util.h"
#include "sm_error.h"

#include <stdbool.h>
#include <stddef.h>

#define HTTP_STATIC_MAX_NAME 128           /* bytes in a file name */
#define HTTP_STATIC_MAX_FILE (8 << 20)     /* larger files are refused (500) */

/* The Content-Type for name's extension (static string), or NULL when the
 * extension is not one that is served. */
const char *http_static_content_type(const char *name);

/* True if name (name_len bytes, not NUL-terminated) is a file name that may
 * be looked up at all (the syntax rules above); no file system access. */
bool http_static_name_ok(const char *name, size_t name_len);

/* Fills reply with the file name inside root: 200 with its bytes and type,
 * or an error reply: 404 `not_found` for a refused name or a missing file,
 * 503 `unavailable` when root itself is not a readable directory (the
 * message says which directory), 500 on a read error or a file over
 * HTTP_STATIC_MAX_FILE. Returns the status it stored in reply->status. */
int http_static_serve(const char *root, const char *name, size_t name_len, http_reply *reply);

/* SM_OK if root is an existing directory holding every file of the NULL-
 * terminated list required; otherwise SM_ERR_UNAVAILABLE with a message
 * naming the directory and the first missing file. */
sm_status http_static_check_dir(const char *root, const char *const *required, sm_error *err);

#endif
