/* SPDX-License-Identifier: Apache-2.0 */
/* http_static.c — see http_static.h.
 *
 * Defence in depth against path traversal: the name is checked as text
 * first (one plain segment, so "..", "/" and encoded variants never reach
 * the file system: civetweb has already URL-decoded the path), and the file
 * found is then checked by its real path, so a symbolic link inside the
 * root cannot lead outside it either. */
#include "http_static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"map", "application/json; charset=utf-8"},
    {"json", "application/json; charset=utf-8"},
    {"txt", "text/plain; charset=utf-8"},
};

const char *http_static_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(dot + 1, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

bool http_static_name_ok(const char *name, size_t name_len)
{
    if (name_len == 0 || name_len > HTTP_STATIC_MAX_NAME || name[0] == '.')
        return false;
    for (size_t i = 0; i < name_len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static int not_found(http_reply *reply, const char *name)
{
    char msg[HTTP_STATIC_MAX_NAME + 64];
    snprintf(msg, sizeof msg, "No file '%s' here.", name);
    http_reply_error(reply, SM_ERR_NOT_FOUND, msg);
    return reply->status;
}

/* Reads the whole regular file fd into a NUL-terminated heap buffer. */
static sm_status read_all(int fd, char **out, size_t *len, sm_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return sm_fail(err, SM_ERR_INTERNAL, "cannot stat the file: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return sm_fail(err, SM_ERR_NOT_FOUND, "not a regular file");
    if (st.st_size > HTTP_STATIC_MAX_FILE)
        return sm_fail(err, SM_ERR_INTERNAL, "the file is over %d bytes", HTTP_STATIC_MAX_FILE);
    size_t size = (size_t)st.st_size, n = 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return sm_fail(err, SM_ERR_INTERNAL, "cannot read the file: %s",
                           r < 0 ? strerror(errno) : "it shrank while being read");
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return SM_OK;
}

int http_static_serve(const char *root, const char *name, size_t name_len, http_reply *reply)
{
    char shown[HTTP_STATIC_MAX_NAME + 1];
    snprintf(shown, sizeof shown, "%.*s",
             (int)(name_len < HTTP_STATIC_MAX_NAME ? name_len : HTTP_STATIC_MAX_NAME), name);
    if (!http_static_name_ok(name, name_len) || !http_static_content_type(shown))
        return not_found(reply, http_static_name_ok(name, name_len) ? shown : "(refused name)");

    char real_root[PATH_MAX];
    struct stat st;
    if (!root || !*root || !realpath(root, real_root) || stat(real_root, &st) != 0 ||
        !S_ISDIR(st.st_mode)) {
        char msg[PATH_MAX + 64];
        snprintf(msg, sizeof msg, "The directory '%s' to serve files from does not exist.",
                 root ? root : "");
        http_reply_error(reply, SM_ERR_UNAVAILABLE, msg);
        return reply->status;
    }
    char path[PATH_MAX], real_path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", real_root, shown) >= sizeof path ||
        !realpath(path, real_path))
        return not_found(reply, shown);
    size_t rlen = strlen(real_root);
    if (strncmp(real_path, real_root, rlen) != 0 || real_path[rlen] != '/')
        return not_found(reply, shown); /* a link out of the root */

    int fd = open(real_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return not_found(reply, shown);
    sm_error err = {0};
    char *data = NULL;
    size_t len = 0;
    sm_status rs = read_all(fd, &data, &len, &err);
    close(fd);
    if (rs == SM_ERR_NOT_FOUND)
        return not_found(reply, shown);
    if (rs != SM_OK) {
        http_reply_error(reply, rs, err.message);
        return reply->status;
    }
    json_decref(reply->body);
    reply->body = NULL;
    free(reply->body_text);
    reply->status = 200;
    reply->body_text = data;
    reply->body_text_len = len;
    reply->content_type = http_static_content_type(shown);
    snprintf(reply->extra_headers, sizeof reply->extra_headers,
             "X-Content-Type-Options: nosniff\r\n");
    return 200;
}

sm_status http_static_check_dir(const char *root, const char *const *required, sm_error *err)
{
    struct stat st;
    if (!root || !*root || stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        return sm_fail(err, SM_ERR_UNAVAILABLE, "directory '%s' does not exist",
                       root ? root : "");
    for (size_t i = 0; required && required[i]; i++) {
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", root, required[i]) >= sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            return sm_fail(err, SM_ERR_UNAVAILABLE, "directory '%s' has no %s", root,
                           required[i]);
    }
    return SM_OK;
}
