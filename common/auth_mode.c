/* SPDX-License-Identifier: Apache-2.0 */
/* auth_mode.c — protected mode and the bearer-token HTTP helpers
 * (auth_mode.h). */
#include "auth_mode.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool auth_listen_is_loopback(const char *addr)
{
    if (!addr)
        return false;
    if (strcasecmp(addr, "localhost") == 0 || strcmp(addr, "::1") == 0 ||
        strcmp(addr, "[::1]") == 0)
        return true;
    if (strncasecmp(addr, "::ffff:", 7) == 0)
        addr += 7;
    unsigned a, b, c, d;
    char tail;
    if (sscanf(addr, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) != 4)
        return false;
    return a == 127 && b <= 255 && c <= 255 && d <= 255;
}

sm_status auth_mode_resolve(const char *setting, const char *listen_addr, auth_mode *out,
                            sm_error *err)
{
    if (setting && strcmp(setting, "jwt") == 0) {
        *out = AUTH_MODE_JWT;
        return SM_OK;
    }
    if (setting && strcmp(setting, "off") == 0) {
        *out = AUTH_MODE_OFF;
        return SM_OK;
    }
    if (setting && *setting)
        return sm_fail(err, SM_ERR_INVALID, "SMPOST_AUTH (--auth) must be jwt or off, not '%.40s'",
                       setting);
    if (auth_listen_is_loopback(listen_addr)) {
        *out = AUTH_MODE_OFF;
        return SM_OK;
    }
    return sm_fail(err, SM_ERR_INVALID,
                   "protected mode: asked to listen on %.60s (not loopback) with no "
                   "authentication configured. Set SMPOST_AUTH=jwt with SMPOST_JWKS_FILE, "
                   "SMPOST_JWT_ISSUER and SMPOST_JWT_AUDIENCE to require signed tokens, or "
                   "SMPOST_AUTH=off to trust the names in request bodies explicitly "
                   "(docs/operations.md, Authentication)",
                   listen_addr ? listen_addr : "(none)");
}

sm_status auth_mode_resolve_listeners(const char *setting, const char *listen_addr,
                                      const char *admin_listen, auth_mode *out, sm_error *err)
{
    if (auth_mode_resolve(setting, listen_addr, out, err) != SM_OK)
        return err->status;
    if (!admin_listen || !*admin_listen)
        return SM_OK;
    char host[80];
    long port;
    sm_error bad = {0};
    if (http_listen_parse(admin_listen, host, sizeof host, &port, &bad) != SM_OK)
        return sm_fail(err, SM_ERR_INVALID, "SMPOST_ADMIN_LISTEN (--admin-listen): %s",
                       bad.message);
    if (auth_mode_resolve(setting, host, out, &bad) != SM_OK)
        return sm_fail(err, SM_ERR_INVALID, "SMPOST_ADMIN_LISTEN (--admin-listen): %s",
                       bad.message);
    return SM_OK;
}

const char *auth_bearer_token(const char *value)
{
    if (!value)
        return NULL;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp(value, "Bearer", 6) != 0 || (value[6] != ' ' && value[6] != '\t'))
        return NULL;
    value += 6;
    while (*value == ' ' || *value == '\t')
        value++;
    return *value ? value : NULL;
}

void auth_reply_unauthenticated(http_reply *reply, const char *description)
{
    if (!description) {
        http_reply_error(reply, SM_ERR_UNAUTHENTICATED,
                         "This route needs a bearer token: Authorization: Bearer <JWT>.");
        snprintf(reply->extra_headers, sizeof reply->extra_headers,
                 "WWW-Authenticate: Bearer\r\n");
        return;
    }
    char desc[80];
    size_t n = 0;
    for (const char *s = description; *s && n < sizeof desc - 1; s++)
        desc[n++] = (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) ? '\'' : *s;
    desc[n] = '\0';
    char msg[SM_ERROR_MAX];
    snprintf(msg, sizeof msg, "The bearer token was refused: %s.", desc);
    http_reply_error(reply, SM_ERR_UNAUTHENTICATED, msg);
    snprintf(reply->extra_headers, sizeof reply->extra_headers,
             "WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"%s\"\r\n",
             desc);
}
