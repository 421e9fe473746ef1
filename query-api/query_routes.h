/* query_routes.h — the query API's HTTP surface: /api/v1/PostLookup/... to the
 * query dispatcher, plus /health and /metrics. Paths match ignoring case. */
#ifndef QUERY_ROUTES_H
#define QUERY_ROUTES_H

#include "queries.h"

/* http_handler_fn for the query API; app is a query_app *. */
void query_routes_handle(void *app, const http_request *req, http_reply *reply);

/* Enumerates the registered routes (see command-api/routes.h). */
size_t query_routes_list(size_t i, const char **method, const char **pattern);

#endif
