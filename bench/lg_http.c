/* SPDX-License-Identifier: Apache-2.0 */
/* lg_http.c — see lg_http.h. */
#include "lg_http.h"

#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool lg_url_parse(const char *url, lg_url *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(why, cap, "only http:// URLs are supported: %s", url);
        return false;
    }
    const char *h = url + 7, *end = h + strcspn(h, "/");
    if (*end && strcmp(end, "/") != 0) {
        snprintf(why, cap, "give a base URL without a path: %s", url);
        return false;
    }
    char host[128], port[8] = "80";
    size_t hlen = (size_t)(end - h);
    if (hlen == 0 || hlen >= sizeof host) {
        snprintf(why, cap, "bad host in %s", url);
        return false;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(out->host, sizeof out->host, "%s", host);
    char *colon = strrchr(host, ':');
    if (colon && !strchr(colon, ']')) {
        snprintf(port, sizeof port, "%.7s", colon + 1);
        *colon = '\0';
    }
    if (host[0] == '[') { /* [::1]:5001 */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(why, cap, "cannot resolve %s: %s", url, gai_strerror(rc));
        return false;
    }
    memcpy(&out->addr, ai->ai_addr, ai->ai_addrlen);
    out->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return true;
}

/* Case-insensitive "does header line [p, eol) have this name". Returns the
 * value (spaces skipped) or NULL. */
static const char *header_value(const char *p, const char *eol, const char *name)
{
    size_t n = strlen(name);
    if ((size_t)(eol - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
        return NULL;
    p += n + 1;
    while (p < eol && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static bool value_is(const char *v, const char *eol, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(eol - v) >= n && strncasecmp(v, word, n) == 0;
}

long lg_http_parse(const char *buf, size_t len, lg_response *out)
{
    memset(out, 0, sizeof *out);
    const char *hend = memmem(buf, len, "\r\n\r\n", 4);
    if (!hend)
        return len > 65536 ? -1 : 0; /* headers this long are not ours */
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
        !isdigit((unsigned char)buf[9]))
        return -1;
    out->status = atoi(buf + 9);
    long long content_length = -1;
    /* the status line ends at or before hend's "\r\n" */
    const char *p = (const char *)memchr(buf, '\n', (size_t)(hend + 2 - buf)) + 1;
    while (p < hend + 2) {
        const char *eol = memchr(p, '\r', (size_t)(hend + 2 - p));
        if (!eol)
            break;
        const char *v;
        if ((v = header_value(p, eol, "Content-Length")))
            content_length = strtoll(v, NULL, 10);
        else if ((v = header_value(p, eol, "Connection")))
            out->close = value_is(v, eol, "close");
        else if ((v = header_value(p, eol, "Transfer-Encoding")))
            return -1;
        else if ((v = header_value(p, eol, "X-Read-Model-Stale")))
            out->stale = value_is(v, eol, "true");
        p = eol + 2;
    }
    size_t head = (size_t)(hend + 4 - buf);
    if (content_length < 0) {
        if (out->status != 204 && out->status != 304 && out->status >= 200)
            return -1;
        content_length = 0;
    }
    if (content_length > 64L * 1024 * 1024)
        return -1;
    if (len < head + (size_t)content_length)
        return 0;
    out->body = buf + head;
    out->body_len = (size_t)content_length;
    return (long)(head + (size_t)content_length);
}

/* Where the value of "key" starts in a flat JSON text, or NULL. */
static const char *json_value(const char *body, size_t len, const char *key)
{
    char pat[64];
    int n = snprintf(pat, sizeof pat, "\"%s\"", key);
    if (n <= 0 || (size_t)n >= sizeof pat)
        return NULL;
    const char *end = body + len, *p = memmem(body, len, pat, (size_t)n);
    if (!p)
        return NULL;
    p += n;
    while (p < end && (*p == ' ' || *p == ':'))
        p++;
    return p < end ? p : NULL;
}

bool lg_json_str(const char *body, size_t len, const char *key, char *out, size_t cap)
{
    const char *p = json_value(body, len, key), *end = body + len;
    if (!p || *p != '"')
        return false;
    p++;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q || (size_t)(q - p) >= cap || memchr(p, '\\', (size_t)(q - p)))
        return false;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return true;
}

bool lg_json_int(const char *body, size_t len, const char *key, long long *out)
{
    const char *p = json_value(body, len, key), *end = body + len;
    if (!p)
        return false;
    char digits[24];
    size_t n = 0;
    while (p < end && n + 1 < sizeof digits &&
           (isdigit((unsigned char)*p) || (n == 0 && *p == '-')))
        digits[n++] = *p++;
    digits[n] = '\0';
    if (n == 0 || (n == 1 && digits[0] == '-'))
        return false;
    *out = strtoll(digits, NULL, 10);
    return true;
}
