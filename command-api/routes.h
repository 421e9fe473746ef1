/* SPDX-License-Identifier: Apache-2.0 */
/* routes.h — the command API's HTTP surface: maps (verb, path) to a command
 * or an operational endpoint, and results to replies.
 *
 * Paths are matched case-insensitively, as the original's were. The route
 * table in routes.c is the single list of what this binary serves; the
 * acceptance test and docs/api.md follow it.
 *
 * With a verifier (SMPOST_AUTH=jwt) each route says what it needs: public
 * (/health, the docs), a bearer token (the commands, PostHistory, PostAt),
 * or a token with role admin (RestoreReadDb, /metrics). A missing or
 * refused token is 401 with WWW-Authenticate (auth_mode.h), a missing role
 * 403. The token's name then stands for the body's author / username
 * (a different value in the body is 403), and the owner rules of the
 * aggregate (post_actor, post.h) apply to it. */
#ifndef ROUTES_H
#define ROUTES_H

#include "auth_jwt.h"
#include "dispatcher.h"
#include "http_docs.h"
#include "http_util.h"
#include "relay.h"

typedef struct cmd_app {
    cmd_context cmd;   /* the dispatcher; its store is borrowed from below */
    es_store *store;   /* owned by main */
    relay *relay;      /* owned by main; NULL when publishing is disabled */
    http_docs docs;    /* /openapi.json and /swagger/; zeroed: both answer 404 */
    char instance[100]; /* instance id (sm_config_instance_id); "" in tests */
    auth_verifier *auth; /* owned by main; NULL: SMPOST_AUTH=off, names come from bodies */
} cmd_app;

/* This binary's part of docs/openapi.yaml as JSON, generated and compiled in
 * at build time (cmake/embed.cmake, smpost_embed_openapi). */
extern const char sm_openapi_command_json[];

/* http_handler_fn for the command API; app is a cmd_app *. */
void routes_handle(void *app, const http_request *req, http_reply *reply);

/* Enumerates the registered routes (for tests and docs): returns the number
 * of routes and, for i < count, sets *method and *pattern (e.g.
 * "/api/v1/LikePost/{postId}"). */
size_t routes_list(size_t i, const char **method, const char **pattern);

#endif
