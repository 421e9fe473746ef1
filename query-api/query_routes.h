/* SPDX-License-Identifier: Apache-2.0 */
/* query_routes.h — the query API's HTTP surface: /api/v1/PostLookup/... to the
 * query dispatcher, plus /health, /metrics and the API documentation
 * (/openapi.json, /swagger/: common/http_docs.h). Paths match ignoring case. */
#ifndef QUERY_ROUTES_H
#define QUERY_ROUTES_H

#include "queries.h"

/* This binary's part of docs/openapi.yaml as JSON, generated and compiled in
 * at build time (cmake/embed.cmake, smpost_embed_openapi). */
extern const char sm_openapi_query_json[];

/* http_handler_fn for the query API; app is a query_app *. */
void query_routes_handle(void *app, const http_request *req, http_reply *reply);

/* Enumerates the registered routes (see command-api/routes.h). */
size_t query_routes_list(size_t i, const char **method, const char **pattern);

#endif
