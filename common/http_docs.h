/* SPDX-License-Identifier: Apache-2.0 */
/* http_docs.h — a binary's interactive API documentation, served by itself:
 *
 *   GET /openapi.json     the binary's part of docs/openapi.yaml as JSON,
 *                         compiled into the binary (cmake/openapi_split.py),
 *                         with `servers: [{url: /}]` so clients call the
 *                         instance that served it
 *   GET /swagger          301 to /swagger/ (the page's assets are relative)
 *   GET /swagger/         Swagger UI (index.html of the npm package
 *                         swagger-ui-dist, read from swagger_ui_dir)
 *   GET /swagger/{file}   the package's other files; swagger-initializer.js
 *                         is generated here instead, pointing the UI at this
 *                         origin's /openapi.json
 *
 * Swagger UI is not compiled in: it is 2 MB of JavaScript from npm, which
 * scripts/bootstrap.sh installs into docs/swagger-ui/node_modules/. When its
 * files are missing the UI answers 503 with a message saying how to install
 * them; nothing else is affected. Files are served by http_static (one plain
 * file name, no path traversal).
 *
 * Thread-safety: the struct is read-only after start; call from any
 * thread. */
#ifndef HTTP_DOCS_H
#define HTTP_DOCS_H

#include "http_util.h"
#include "sm_error.h"

#include <stdbool.h>
#include <stddef.h>

/* Where scripts/bootstrap.sh puts swagger-ui-dist, relative to the checkout
 * (the first --swagger-ui-dir default, relative to the working directory). */
#define HTTP_DOCS_UI_DIR_DEFAULT "docs/swagger-ui/node_modules/swagger-ui-dist"

/* Where `cmake --install` (and the Debian package) puts the files Swagger
 * UI needs: DATADIR/smpost/swagger-ui of the configured install prefix
 * (cmake/install.cmake defines SMPOST_SWAGGER_UI_INSTALLED), the second
 * default. */
#ifndef SMPOST_SWAGGER_UI_INSTALLED
#define SMPOST_SWAGGER_UI_INSTALLED "/usr/local/share/smpost/swagger-ui"
#endif
#define HTTP_DOCS_UI_DIR_INSTALLED SMPOST_SWAGGER_UI_INSTALLED

/* The --swagger-ui-dir help text, naming both defaults. */
#define HTTP_DOCS_UI_DIR_HELP                                                                    \
    "directory of the npm package swagger-ui-dist; unset: " HTTP_DOCS_UI_DIR_DEFAULT             \
    " (scripts/bootstrap.sh installs it) if that is a directory, else "                          \
    HTTP_DOCS_UI_DIR_INSTALLED " (cmake --install, the .deb)"

typedef struct http_docs {
    bool enabled;               /* --swagger: off makes every docs route 404 */
    const char *swagger_ui_dir; /* borrowed: a swagger-ui-dist directory */
    const char *openapi_json;   /* borrowed: the embedded document (JSON text) */
} http_docs;

/* The Swagger UI directory to serve: configured (--swagger-ui-dir /
 * SMPOST_SWAGGER_UI_DIR) when set; otherwise relative if it is a directory
 * (a checkout: the build tree's behaviour), else installed (an installed
 * binary, whatever its working directory). Returns one of the three
 * pointers (borrowed); main() passes HTTP_DOCS_UI_DIR_DEFAULT and
 * HTTP_DOCS_UI_DIR_INSTALLED. An installed dir that is missing too is left
 * for http_docs_check to report. */
const char *http_docs_pick_ui_dir(const char *configured, const char *relative,
                                  const char *installed);

/* GET /openapi.json: 200 with the document, or 404 when disabled. */
void http_docs_openapi(const http_docs *d, http_reply *reply);

/* GET /swagger, /swagger/ (file NULL) and /swagger/{file} (file_len bytes,
 * not NUL-terminated, as matched). path is the request path, used to tell
 * /swagger from /swagger/. */
void http_docs_swagger(const http_docs *d, const char *path, const char *file, size_t file_len,
                       http_reply *reply);

/* For a start-up log line: SM_OK when the docs are off or Swagger UI's files
 * are present; SM_ERR_UNAVAILABLE with a message (what is missing and how to
 * install it) otherwise. The binary still runs either way. */
sm_status http_docs_check(const http_docs *d, sm_error *err);

/* Logs one start-up line: event=api_docs (info) with the URLs, or
 * event=swagger_ui_missing (warn) with http_docs_check's message. */
void http_docs_log_status(const http_docs *d, const char *service);

#endif
