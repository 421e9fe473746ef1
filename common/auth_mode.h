/* SPDX-License-Identifier: Apache-2.0 */
/* auth_mode.h — whether a service checks bearer tokens, and the HTTP side of
 * checking them: protected mode, the Authorization header, the 401 reply.
 *
 * SMPOST_AUTH is "jwt" (every protected route needs a verified token), "off"
 * (the seed's contract: the name in the body is trusted) or unset. Unset
 * means off only on a loopback address: a service asked to listen anywhere
 * else with nothing set refuses to start ("protected mode"), so a deployment
 * never trusts names in bodies by accident. Both binaries decide the mode
 * with auth_mode_resolve before they bind.
 *
 * Pure functions, no state: thread-safe. */
#ifndef AUTH_MODE_H
#define AUTH_MODE_H

#include "http_util.h"
#include "sm_error.h"

#include <stdbool.h>

typedef enum { AUTH_MODE_OFF = 0, AUTH_MODE_JWT } auth_mode;

/* True for 127.0.0.0/8, ::1 (also [::1] and ::ffff:127.x.y.z) and
 * "localhost"; false for anything else, 0.0.0.0 and :: included. */
bool auth_listen_is_loopback(const char *addr);

/* Decides the mode from the SMPOST_AUTH setting (NULL or "": unset) and the
 * listen address. SM_ERR_INVALID with a message for the operator (how to
 * configure tokens or turn auth off explicitly) for an unknown value, or
 * for an unset value on a non-loopback address. */
sm_status auth_mode_resolve(const char *setting, const char *listen_addr, auth_mode *out,
                            sm_error *err);

/* auth_mode_resolve for a service that may also open an admin listener
 * (admin_listen "HOST:PORT", NULL or "": none; http_server.h): with the
 * setting unset, both addresses must be loopback for auth to be off, so an
 * admin port opened to the network is refused like a public one. A
 * malformed admin_listen is SM_ERR_INVALID too. */
sm_status auth_mode_resolve_listeners(const char *setting, const char *listen_addr,
                                      const char *admin_listen, auth_mode *out, sm_error *err);

/* The token of an "Authorization: Bearer <token>" value (scheme matched
 * case-insensitively, RFC 6750 2.1), borrowed from value; NULL when value is
 * NULL, another scheme, or has no token. */
const char *auth_bearer_token(const char *value);

/* Fills reply with 401, the JSON error body and WWW-Authenticate: just
 * "Bearer" when description is NULL (no credentials sent, RFC 6750 3.1),
 * else Bearer error="invalid_token", error_description="<description>"
 * (quotes and backslashes in it replaced). */
void auth_reply_unauthenticated(http_reply *reply, const char *description);

#endif
