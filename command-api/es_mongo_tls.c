/* SPDX-License-Identifier: Apache-2.0 */
/* es_mongo_tls.c — TLS and authentication of the MongoDB event store: the
 * checks at open that turn a misconfiguration into a refused start.
 *
 * What the URI says is applied by libmongoc 1.23 itself: user:password@,
 * authSource and authMechanism; tls=true with tlsCAFile (the CA that signed
 * the server's certificate), tlsCertificateKeyFile (a client certificate and
 * its key in one PEM file, for servers that ask for one) and
 * tlsCertificateKeyFilePassword. A client pool reads the TLS options from
 * its URI when it is created (mongoc_client_pool_new calls
 * mongoc_client_pool_set_ssl_opts with them), so nothing is set here; the
 * host name (or IP address) of the URI is checked against the certificate.
 *
 * What a pool does not do is tell a misconfiguration from a server that is
 * down: its monitor records the TLS error and server selection reports "No
 * suitable servers found", which the adapter treats as "down for now" (a
 * warning; the store recovers when the server comes). At open, so the
 * service stops with one line that says what to fix instead of starting and
 * answering 503 for ever:
 *  - a CA or client certificate file that cannot be read;
 *  - a TLS failure about certificates (the server's is not signed by
 *    tlsCAFile, or names another host; a client certificate the driver
 *    cannot load): libmongoc's messages "TLS handshake failed: certificate
 *    verify failed", "...: Failed certificate verification", "Failed OCSP
 *    verification", "Failed initialize TLS state";
 *  - a server that answers without TLS where the URI says tls=true (a plain
 *    server may never answer a TLS hello, so this is asked separately: a
 *    ping over plain TCP, with no user name, to each host of the URI);
 *  - a login the server refuses (wrong user, password or authSource), which
 *    the pool does report as such.
 * The messages name the URI option to fix, never its value's secret part;
 * the caller (main.c) names the setting. tlsInsecure, tlsAllowInvalid-
 * Certificates and tlsAllowInvalidHostnames are honoured (libmongoc's), but
 * logged at warn on every start. */
#include "es_mongo_internal.h"

#include "sm_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define PROBE_TIMEOUT_MS 2000

static es_status unreadable(const char *option, const char *path, sm_error *err)
{
    sm_fail(err, SM_ERR_INVALID, "event store (mongodb): %s '%s' cannot be read: %s", option,
            path, strerror(errno));
    return ES_INVALID;
}

es_status mongo_tls_preflight(const mongoc_uri_t *uri, const char *db_name, sm_error *err)
{
    if (!mongoc_uri_get_tls(uri))
        return ES_OK;
    /* the option's key, and its name as the documentation spells it
     * (libmongoc keeps keys in lower case) */
    static const char *const files[][2] = {{MONGOC_URI_TLSCAFILE, "tlsCAFile"},
                                           {MONGOC_URI_TLSCERTIFICATEKEYFILE,
                                            "tlsCertificateKeyFile"}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *path = mongoc_uri_get_option_as_utf8(uri, files[i][0], NULL);
        if (!path)
            continue;
        FILE *f = fopen(path, "r");
        if (!f)
            return unreadable(files[i][1], path, err);
        fclose(f);
    }
    static const char *const insecure[] = {MONGOC_URI_TLSINSECURE,
                                           MONGOC_URI_TLSALLOWINVALIDCERTIFICATES,
                                           MONGOC_URI_TLSALLOWINVALIDHOSTNAMES};
    for (size_t i = 0; i < sizeof insecure / sizeof insecure[0]; i++)
        if (mongoc_uri_get_option_as_bool(uri, insecure[i], false))
            sm_log(SM_LOG_WARN, "event_store_tls_unverified", "adapter=mongodb db=%s option=%s "
                   "effect=\"the server's certificate is not fully checked: anyone on the path "
                   "can pose as the server\"", db_name, insecure[i]);
    return ES_OK;
}

static bool about_certificates(const char *msg)
{
    static const char *const marks[] = {
        "certificate verify failed", "Failed certificate verification",
        "Failed OCSP verification", "Failed initialize TLS state", "Cannot load"};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (strstr(msg, marks[i]))
            return true;
    return false;
}

/* True if the server at host answers a ping over plain TCP (any reply, even
 * an error, is an answer: it read a plaintext command). No credentials are
 * sent: the probe's URI has the host and nothing else of the original. */
static bool answers_without_tls(const mongoc_host_list_t *host)
{
    char text[BSON_HOST_NAME_MAX + 200];
    snprintf(text, sizeof text, "mongodb://%s/?directConnection=true&tls=false&appname=smpost-"
             "tls-probe&serverSelectionTimeoutMS=%d&connectTimeoutMS=%d&socketTimeoutMS=%d",
             host->host_and_port, PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS);
    mongoc_uri_t *uri = mongoc_uri_new_with_error(text, NULL);
    mongoc_client_t *client = uri ? mongoc_client_new_from_uri(uri) : NULL;
    bool answered = false;
    if (client) {
        mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
        bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
        bson_error_t e;
        answered = mongoc_client_command_simple(client, "admin", cmd, NULL, NULL, &e) ||
                   e.domain == MONGOC_ERROR_SERVER;
        bson_destroy(cmd);
        mongoc_client_destroy(client);
    }
    mongoc_uri_destroy(uri);
    return answered;
}

es_status mongo_explain_open_failure(const mongoc_uri_t *uri, es_status st, sm_error *first)
{
    char was[SM_ERROR_MAX];
    snprintf(was, sizeof was, "%s", first->message);
    if (st != ES_UNAVAILABLE) {
        if (strstr(was, "Authentication failed") || strstr(was, "requires authentication") ||
            strstr(was, "SCRAM Failure")) {
            const char *user = mongoc_uri_get_username(uri);
            const char *source = mongoc_uri_get_auth_source(uri);
            sm_fail(first, SM_ERR_INVALID, "event store (mongodb): the server refused the login "
                    "(user '%s', authSource '%s'); check the user name, password and authSource "
                    "in the URI: %s", user ? user : "(none)", source ? source : "(default)", was);
            return ES_INVALID;
        }
        return st;
    }
    if (!mongoc_uri_get_tls(uri))
        return st;
    if (about_certificates(was)) {
        sm_fail(first, SM_ERR_INVALID, "event store (mongodb): TLS to the server failed on its "
                "certificate; check tlsCAFile (the CA that signed the server's certificate), the "
                "host name in the URI (the certificate must name it) and tlsCertificateKeyFile: %s",
                was);
        return ES_INVALID;
    }
    for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri); h; h = h->next) {
        if (h->family == AF_UNIX || !answers_without_tls(h))
            continue;
        sm_fail(first, SM_ERR_INVALID, "event store (mongodb): the server at %s answers without "
                "TLS, but the URI says tls=true: enable TLS on the server, or fix the host or "
                "port in the URI", h->host_and_port);
        return ES_INVALID;
    }
    return st;
}
