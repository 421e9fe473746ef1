/* SPDX-License-Identifier: Apache-2.0 */
/* test_auth.c — bearer tokens over HTTP (issue 16, slice A): the real
 * command-api with SMPOST_AUTH=jwt, a JWKS of EC P-256 keys generated here
 * and tokens signed per case (tools/jwt_mint.h). Checks who may do what
 * (docs/api.md, "Authentication"): 401 with WWW-Authenticate for a missing
 * or refused token, the token's name as author / username (403 when the body
 * names someone else), the owner rules (403) and the moderator's bypass,
 * admin-only RestoreReadDb and /metrics, public /health; the admin listener
 * (SMPOST_ADMIN_LISTEN: those two only there, 404 on the public port, the
 * same auth rules, protected mode on its address); key rotation by
 * replacing the JWKS file and by SIGHUP; and protected mode in both
 * binaries. Binaries from SMPOST_COMMAND_API_BIN and SMPOST_QUERY_API_BIN. */
#include "http_client.h"
#include "jwt_mint.h"
#include "proc.h"
#include "sm_event.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ISS "https://id.example.test/realms/smpost"
#define AUD "smpost-api"

static const char *cmd_bin, *query_bin;
static char dir[256], db_url[320], log_path[320], jwks_path[320];
static test_proc proc;
static test_proc side; /* a second service of one case, stopped by the teardown if it fails */
static EVP_PKEY *key1, *key2; /* key1 "k1" at start; key2 "k2" after rotation */

/* ---- fixtures ---------------------------------------------------------- */

/* Writes the JWKS holding key (kid) atomically. */
static void write_jwks(EVP_PKEY *key, const char *kid)
{
    json_t *jwks = json_pack("{s:[o]}", "keys", jwt_mint_public_jwk(key, kid));
    char tmp[340];
    snprintf(tmp, sizeof tmp, "%s.tmp", jwks_path);
    assert_int_equal(json_dump_file(jwks, tmp, 0), 0);
    assert_int_equal(rename(tmp, jwks_path), 0);
    json_decref(jwks);
}

/* A token for name with roles ("" for none), signed by key as kid, valid
 * from now for ttl seconds (negative: expired that long ago). Caller frees. */
static char *token_sub_full(EVP_PKEY *key, const char *kid, const char *sub, const char *name,
                            const char *roles, long ttl, const char *aud)
{
    json_t *r = json_array();
    char buf[128];
    snprintf(buf, sizeof buf, "%s", roles);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(r, json_string(t));
    long now = (long)time(NULL);
    json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:I}", "iss", ISS, "aud", aud, "sub",
                          sub, "preferred_username", name, "roles", r, "iat",
                          (json_int_t)(now - 5), "exp",
                          (json_int_t)(ttl > 0 ? now + ttl : now + ttl - 120));
    char *payload = json_dumps(c, JSON_COMPACT);
    char header[100];
    snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", kid);
    char *tok = jwt_mint_sign(key, header, payload);
    free(payload);
    json_decref(c);
    assert_non_null(tok);
    return tok;
}

/* As token_sub_full with sub = name. */
static char *token_full(EVP_PKEY *key, const char *kid, const char *name, const char *roles,
                        long ttl, const char *aud)
{
    return token_sub_full(key, kid, name, name, roles, ttl, aud);
}

static char *token(const char *name, const char *roles)
{
    return token_full(key1, "k1", name, roles, 600, AUD);
}

static int group_setup(void **state)
{
    (void)state;
    if (!test_temp_dir("smpost-auth", dir, sizeof dir))
        return -1;
    snprintf(db_url, sizeof db_url, "sqlite:%s/data/events.db", dir);
    snprintf(log_path, sizeof log_path, "%s/command-api.log", dir);
    snprintf(jwks_path, sizeof jwks_path, "%s/jwks.json", dir);
    key1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    key2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!key1 || !key2)
        return -1;
    write_jwks(key1, "k1");
    unsetenv("SMPOST_AUTH");
    proc.port = test_free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", proc.port);
    /* info: the SIGHUP case reads the jwks_reloaded line */
    char *argv[] = {(char *)cmd_bin, "--port", port, "--event-store", db_url, "--log-level",
                    "info", "--kafka-bootstrap", "none", "--auth", "jwt", "--jwks-file",
                    jwks_path, "--jwt-issuer", ISS, "--jwt-audience", AUD, NULL};
    if (!test_proc_start(&proc, argv, log_path) || !test_proc_wait_http(proc.port, 10000)) {
        fprintf(stderr, "command-api did not come up; see %s\n", log_path);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (proc.pid > 0)
        test_proc_stop(&proc, SIGTERM, 5000);
    if (side.pid > 0)
        test_proc_stop(&side, SIGTERM, 5000);
    EVP_PKEY_free(key1);
    EVP_PKEY_free(key2);
    test_rm_rf(dir);
    return 0;
}

/* One call to port with an optional bearer token; asserts the status.
 * Caller frees. */
static http_resp call_at(int port, int status, const char *tok, const char *method,
                         const char *path, const char *body)
{
    char headers[2048] = "";
    size_t o = 0;
    if (tok)
        o += (size_t)snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", tok);
    if (body)
        snprintf(headers + o, sizeof headers - o, "Content-Type: application/json\r\n");
    http_resp r;
    assert_int_equal(http_call(port, method, path, headers, body, body ? strlen(body) : 0,
                               10000, &r),
                     0);
    if (r.status != status)
        fail_msg("port %d: %s %s: status %d, want %d; body %s", port, method, path, r.status,
                 status, r.body);
    return r;
}

/* The same on the service under test's (public) port. */
static http_resp call(int status, const char *tok, const char *method, const char *path,
                      const char *body)
{
    return call_at(proc.port, status, tok, method, path, body);
}

static void expect_at(int port, int status, const char *tok, const char *method,
                      const char *path)
{
    http_resp r = call_at(port, status, tok, method, path, NULL);
    if (status == 404)
        assert_string_equal(http_resp_str(&r, "error"), "not_found");
    http_resp_free(&r);
}

static void expect(int status, const char *tok, const char *method, const char *path,
                   const char *body)
{
    http_resp r = call(status, tok, method, path, body);
    if (status == 403)
        assert_string_equal(http_resp_str(&r, "error"), "forbidden");
    http_resp_free(&r);
}

/* A 401 whose WWW-Authenticate is exactly want. */
static void expect_401(const char *tok, const char *method, const char *path, const char *want)
{
    http_resp r = call(401, tok, method, path, NULL);
    char h[200];
    assert_non_null(http_resp_header(&r, "WWW-Authenticate", h, sizeof h));
    assert_string_equal(h, want);
    assert_string_equal(http_resp_str(&r, "error"), "unauthenticated");
    assert_non_null(http_resp_str(&r, "message"));
    http_resp_free(&r);
}

static void new_post(const char *tok, char id[40])
{
    http_resp r = call(201, tok, "POST", "/api/v1/NewPost", "{\"message\":\"hello\"}");
    strcpy(id, http_resp_str(&r, "id"));
    http_resp_free(&r);
}

/* The post's author as PostAt sees it (read with a moderator's token). */
static void expect_author(const char *id, const char *author)
{
    char *mod = token("mona", "moderator");
    char p[160];
    snprintf(p, sizeof p, "/api/v1/PostAt/%s?version=0", id);
    http_resp r = call(200, mod, "GET", p, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "post"),
                                                          "author")),
                        author);
    http_resp_free(&r);
    free(mod);
}

#define PATH(buf, route, id) snprintf(buf, sizeof buf, "/api/v1/%s/%s", route, id)

/* ---- authentication ---------------------------------------------------- */

static void test_missing_or_refused_tokens_are_401_with_www_authenticate(void **state)
{
    (void)state;
    expect_401(NULL, "POST", "/api/v1/NewPost", "Bearer");
    char *expired = token_full(key1, "k1", "alice", "", -1, AUD);
    expect_401(expired, "POST", "/api/v1/NewPost",
               "Bearer error=\"invalid_token\", error_description=\"token expired\"");
    char *wrong_aud = token_full(key1, "k1", "alice", "", 600, "another-api");
    expect_401(wrong_aud, "POST", "/api/v1/NewPost",
               "Bearer error=\"invalid_token\", error_description=\"wrong audience\"");
    /* signed by a key the JWKS does not hold, under a kid it does */
    char *forged = token_full(key2, "k1", "alice", "", 600, AUD);
    expect_401(forged, "POST", "/api/v1/NewPost",
               "Bearer error=\"invalid_token\", error_description=\"signature invalid\"");
    http_resp r;
    assert_int_equal(http_call(proc.port, "POST", "/api/v1/NewPost",
                               "Authorization: Basic YWxpY2U6eA==\r\n", NULL, 0, 10000, &r),
                     0);
    assert_int_equal(r.status, 401);
    http_resp_free(&r);
    free(expired);
    free(wrong_aud);
    free(forged);
}

static void test_health_and_docs_stay_public(void **state)
{
    (void)state;
    expect(200, NULL, "GET", "/health", NULL);
    expect(200, NULL, "GET", "/openapi.json", NULL);
}

/* ---- who may do what --------------------------------------------------- */

static void test_new_post_takes_the_author_from_the_token(void **state)
{
    (void)state;
    char *alice = token("alice", "");
    char id[40];
    new_post(alice, id);
    expect_author(id, "alice");
    http_resp r = call(201, alice, "POST", "/api/v1/NewPost",
                       "{\"author\":\"ALICE\",\"message\":\"same name, other case\"}");
    char id2[40];
    strcpy(id2, http_resp_str(&r, "id"));
    http_resp_free(&r);
    expect_author(id2, "alice");
    expect(403, alice, "POST", "/api/v1/NewPost", "{\"author\":\"bob\",\"message\":\"x\"}");
    expect(403, alice, "POST", "/api/v1/NewPost", "{\"Author\":\"bob\",\"message\":\"x\"}");
    free(alice);
}

static void test_only_the_author_or_a_moderator_edits_and_deletes_a_post(void **state)
{
    (void)state;
    char *alice = token("alice", ""), *bob = token("bob", ""), *mod = token("mona", "moderator");
    char id[40], p[160];
    new_post(bob, id);
    PATH(p, "EditMessage", id);
    expect(403, alice, "PUT", p, "{\"message\":\"hijacked\"}");
    expect(200, bob, "PUT", p, "{\"message\":\"edited by bob\"}");
    expect(200, mod, "PUT", p, "{\"message\":\"edited by a moderator\"}");
    PATH(p, "DeletePost", id);
    expect(403, alice, "DELETE", p, NULL);
    expect(403, alice, "DELETE", p, "{\"username\":\"bob\"}"); /* not the token's name */
    expect(200, mod, "DELETE", p, NULL);

    new_post(bob, id);
    PATH(p, "DeletePost", id);
    expect(200, bob, "DELETE", p, "{\"username\":\"BOB\"}");
    free(alice);
    free(bob);
    free(mod);
}

static void test_comments_belong_to_their_author_or_a_moderator(void **state)
{
    (void)state;
    char *alice = token("alice", ""), *bob = token("bob", ""), *mod = token("mona", "moderator");
    char id[40], p[160], body[300];
    new_post(alice, id);
    PATH(p, "AddComment", id);
    expect(403, bob, "PUT", p, "{\"comment\":\"as alice\",\"username\":\"alice\"}");
    http_resp r = call(200, bob, "PUT", p, "{\"comment\":\"nice\"}");
    char cid[40];
    strcpy(cid, http_resp_str(&r, "commentId"));
    http_resp_free(&r);

    PATH(p, "EditComment", id);
    snprintf(body, sizeof body, "{\"commentId\":\"%s\",\"comment\":\"mine now\"}", cid);
    expect(403, alice, "PUT", p, body);
    expect(200, bob, "PUT", p, body);
    expect(200, mod, "PUT", p, body);
    PATH(p, "RemoveComment", id);
    snprintf(body, sizeof body, "{\"commentId\":\"%s\"}", cid);
    expect(403, alice, "DELETE", p, body);
    expect(200, mod, "DELETE", p, body);

    PATH(p, "AddComment", id);
    r = call(200, bob, "PUT", p, "{\"comment\":\"again\",\"username\":\"bob\"}");
    strcpy(cid, http_resp_str(&r, "commentId"));
    http_resp_free(&r);
    PATH(p, "RemoveComment", id);
    snprintf(body, sizeof body, "{\"commentId\":\"%s\"}", cid);
    expect(200, bob, "DELETE", p, body);
    free(alice);
    free(bob);
    free(mod);
}

static void test_any_user_likes_with_a_token(void **state)
{
    (void)state;
    char *alice = token("alice", ""), *bob = token("bob", "");
    char id[40], p[160];
    new_post(alice, id);
    PATH(p, "LikePost", id);
    expect_401(NULL, "PUT", p, "Bearer");
    expect(200, bob, "PUT", p, NULL);
    expect(200, alice, "PUT", p, NULL);
    free(alice);
    free(bob);
}

static void test_history_is_for_the_author_or_a_moderator(void **state)
{
    (void)state;
    char *alice = token("alice", ""), *bob = token("bob", ""), *mod = token("mona", "moderator");
    char id[40], p[160];
    new_post(alice, id);
    PATH(p, "PostHistory", id);
    expect_401(NULL, "GET", p, "Bearer");
    expect(403, bob, "GET", p, NULL);
    expect(200, alice, "GET", p, NULL);
    expect(200, mod, "GET", p, NULL);
    snprintf(p, sizeof p, "/api/v1/PostAt/%s?version=0", id);
    expect_401(NULL, "GET", p, "Bearer");
    expect(403, bob, "GET", p, NULL);
    expect(200, alice, "GET", p, NULL);
    free(alice);
    free(bob);
    free(mod);
}

/* Owners are subs, not names (issue 16): a second user with the same
 * display name owns nothing of the first's, and the owner keeps the post
 * under a new name. The events record the sub (authorId / userId and
 * metadata.userId), the request id and the caller's traceparent, which the
 * reply echoes; a command without one starts a new trace. */
#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
static void test_owners_are_subs_and_events_carry_metadata(void **state)
{
    (void)state;
    char *alice1 = token_sub_full(key1, "k1", "sub-alice-1", "alice", "", 600, AUD);
    char *alice2 = token_sub_full(key1, "k1", "sub-alice-2", "alice", "", 600, AUD);
    char *renamed = token_sub_full(key1, "k1", "sub-alice-1", "Alice Smith", "", 600, AUD);
    char headers[2048], h[100], id[40], cid[40], p[160], body[300];
    snprintf(headers, sizeof headers,
             "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
             "traceparent: " TRACEPARENT "\r\n", alice1);
    const char *msg = "{\"message\":\"hello\"}";
    http_resp r;
    assert_int_equal(http_call(proc.port, "POST", "/api/v1/NewPost", headers, msg, strlen(msg),
                               10000, &r), 0);
    assert_int_equal(r.status, 201);
    assert_non_null(http_resp_header(&r, "traceparent", h, sizeof h));
    assert_string_equal(h, TRACEPARENT);
    strcpy(id, http_resp_str(&r, "id"));
    http_resp_free(&r);

    PATH(p, "EditMessage", id);
    expect(403, alice2, "PUT", p, "{\"message\":\"same name, other user\"}");
    r = call(200, renamed, "PUT", p, "{\"message\":\"still mine\"}");
    assert_non_null(http_resp_header(&r, "traceparent", h, sizeof h));
    assert_string_not_equal(h, TRACEPARENT); /* a new trace */
    http_resp_free(&r);
    PATH(p, "DeletePost", id);
    expect(403, alice2, "DELETE", p, NULL);

    PATH(p, "AddComment", id);
    r = call(200, alice2, "PUT", p, "{\"comment\":\"by the other alice\"}");
    strcpy(cid, http_resp_str(&r, "commentId"));
    http_resp_free(&r);
    PATH(p, "RemoveComment", id);
    snprintf(body, sizeof body, "{\"commentId\":\"%s\"}", cid);
    expect(403, alice1, "DELETE", p, body);
    PATH(p, "EditComment", id);
    snprintf(body, sizeof body, "{\"commentId\":\"%s\",\"comment\":\"edited\"}", cid);
    expect(200, alice2, "PUT", p, body);

    PATH(p, "PostHistory", id);
    expect(403, alice2, "GET", p, NULL);
    r = call(200, alice1, "GET", p, NULL);
    json_t *evs = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(evs), 4);
    json_t *created = json_array_get(evs, 0), *edited = json_array_get(evs, 1);
    json_t *added = json_array_get(evs, 2);
    json_t *m0 = json_object_get(created, "metadata"), *m1 = json_object_get(edited, "metadata");
    assert_string_equal(json_string_value(json_object_get(json_object_get(created, "data"),
                                                          "authorId")), "sub-alice-1");
    assert_string_equal(json_string_value(json_object_get(m0, "userId")), "sub-alice-1");
    assert_string_equal(json_string_value(json_object_get(m0, "traceparent")), TRACEPARENT);
    assert_true(json_string_length(json_object_get(m0, "requestId")) > 0);
    assert_string_equal(json_string_value(json_object_get(m1, "userId")), "sub-alice-1");
    assert_true(sm_traceparent_valid(json_string_value(json_object_get(m1, "traceparent"))));
    assert_string_equal(json_string_value(json_object_get(json_object_get(added, "data"),
                                                          "userId")), "sub-alice-2");
    http_resp_free(&r);
    free(alice1);
    free(alice2);
    free(renamed);
}

static void test_restore_and_metrics_need_role_admin(void **state)
{
    (void)state;
    char *alice = token("alice", "moderator"), *root = token("root", "admin");
    expect_401(NULL, "POST", "/api/v1/RestoreReadDb", "Bearer");
    expect(403, alice, "POST", "/api/v1/RestoreReadDb", NULL);
    /* publishing is off here: the admin gets past auth to the 503 */
    expect(503, root, "POST", "/api/v1/RestoreReadDb", NULL);
    expect_401(NULL, "GET", "/metrics", "Bearer");
    expect(403, alice, "GET", "/metrics", NULL);
    http_resp r = call(200, root, "GET", "/metrics", NULL);
    assert_non_null(strstr(r.body, "smpost_auth_signature_checks_total"));
    http_resp_free(&r);
    free(alice);
    free(root);
}

/* ---- the admin listener ------------------------------------------------- */

/* Starts bin (argv after the binary and its port / store options in more,
 * NULL-terminated) on a free public port with --admin-listen on a second
 * free port of 127.0.0.1; both ports in *p and *admin_port. */
static void start_with_admin_listener(test_proc *p, int *admin_port, const char *bin,
                                      const char *name, char *const more[])
{
    if (p->pid > 0) /* left running by a failed case */
        test_proc_stop(p, SIGTERM, 5000);
    p->port = test_free_port();
    do
        *admin_port = test_free_port();
    while (*admin_port == p->port);
    char port[16], admin[40], url[340], log[340];
    snprintf(port, sizeof port, "%d", p->port);
    snprintf(admin, sizeof admin, "127.0.0.1:%d", *admin_port);
    snprintf(url, sizeof url, "sqlite:%s/%s-admin.db", dir, name);
    snprintf(log, sizeof log, "%s/%s-admin.log", dir, name);
    char *argv[32] = {(char *)bin, "--port", port, "--admin-listen", admin,
                      bin == cmd_bin ? "--event-store" : "--read-model", url, "--log-level",
                      "warn"};
    size_t n = 9;
    for (size_t i = 0; more[i] && n < 31; i++)
        argv[n++] = more[i];
    assert_true(test_proc_start(p, argv, log));
    if (!test_proc_wait_http(p->port, 10000) || !test_proc_wait_http(*admin_port, 10000))
        fail_msg("%s with an admin listener did not come up; see %s", name, log);
}

static void test_admin_listener_alone_serves_restore_and_metrics_with_the_same_auth(void **state)
{
    (void)state;
    test_proc *p = &side;
    int admin;
    /* a broker that is not there: the relay keeps retrying, and
     * RestoreReadDb, which only marks the outbox, answers 201 */
    char *more[] = {"--kafka-bootstrap", "127.0.0.1:1", "--auth", "jwt", "--jwks-file",
                    jwks_path, "--jwt-issuer", ISS, "--jwt-audience", AUD, NULL};
    start_with_admin_listener(p, &admin, cmd_bin, "command-api", more);
    char *root = token("root", "admin"), *alice = token("alice", "");
    /* the public port: no such routes, whoever asks */
    expect_at(p->port, 404, root, "GET", "/metrics");
    expect_at(p->port, 404, root, "POST", "/api/v1/RestoreReadDb");
    expect_at(p->port, 404, NULL, "GET", "/metrics");
    /* /health on both ports: 503 here, as Kafka is not there */
    expect_at(p->port, 503, NULL, "GET", "/health");
    http_resp r = call_at(p->port, 201, alice, "POST", "/api/v1/NewPost",
                          "{\"message\":\"on the public port\"}");
    http_resp_free(&r);
    /* the admin port: the same rules as a single port (role admin), and
     * nothing of the public API */
    expect_at(admin, 401, NULL, "GET", "/metrics");
    expect_at(admin, 403, alice, "GET", "/metrics");
    r = call_at(admin, 200, root, "GET", "/metrics", NULL);
    assert_non_null(strstr(r.body, "smpost_outbox_pending"));
    http_resp_free(&r);
    expect_at(admin, 401, NULL, "POST", "/api/v1/RestoreReadDb");
    expect_at(admin, 403, alice, "POST", "/api/v1/RestoreReadDb");
    r = call_at(admin, 201, root, "POST", "/api/v1/RestoreReadDb", NULL);
    assert_true(json_is_integer(json_object_get(r.json, "events")));
    http_resp_free(&r);
    expect_at(admin, 503, NULL, "GET", "/health");
    expect_at(admin, 404, alice, "POST", "/api/v1/NewPost");
    expect_at(admin, 404, NULL, "GET", "/swagger/");
    free(root);
    free(alice);
    assert_int_equal(test_proc_stop(p, SIGTERM, 10000), 0);
}

static void test_query_api_serves_metrics_on_its_admin_listener_only(void **state)
{
    (void)state;
    test_proc *p = &side;
    int admin;
    char *more[] = {"--kafka-bootstrap", "none", NULL};
    start_with_admin_listener(p, &admin, query_bin, "query-api", more);
    expect_at(p->port, 404, NULL, "GET", "/metrics");
    expect_at(p->port, 200, NULL, "GET", "/health");
    expect_at(p->port, 204, NULL, "GET", "/api/v1/PostLookup"); /* no posts */
    http_resp r = call_at(admin, 200, NULL, "GET", "/metrics", NULL);
    assert_non_null(strstr(r.body, "smpost_read_model_up 1"));
    http_resp_free(&r);
    expect_at(admin, 200, NULL, "GET", "/health");
    expect_at(admin, 404, NULL, "GET", "/api/v1/PostLookup");
    assert_int_equal(test_proc_stop(p, SIGTERM, 10000), 0);
}

/* Protected mode covers the admin listener too: on loopback publicly but
 * with the admin port open to the network, and no SMPOST_AUTH, both
 * binaries refuse to start; a malformed address is refused as well. */
static void test_an_admin_listener_beyond_loopback_needs_auth_configured(void **state)
{
    (void)state;
    const char *bins[] = {cmd_bin, query_bin}, *names[] = {"command-api", "query-api"};
    const char *addrs[] = {"0.0.0.0:0", "9101"}, *want[] = {"protected mode", "HOST:PORT"};
    for (int i = 0; i < 2; i++)
        for (int a = 0; a < 2; a++) {
            test_proc p = {.port = test_free_port()};
            char port[16], url[340], log[340];
            snprintf(port, sizeof port, "%d", p.port);
            snprintf(url, sizeof url, "sqlite:%s/%s-pm%d.db", dir, names[i], a);
            snprintf(log, sizeof log, "%s/%s-pm%d.log", dir, names[i], a);
            char *argv[] = {(char *)bins[i], "--port", port, "--admin-listen",
                            (char *)addrs[a], i == 0 ? "--event-store" : "--read-model", url,
                            "--kafka-bootstrap", "none", NULL};
            assert_true(test_proc_start(&p, argv, log));
            /* it exits by itself, before binding */
            assert_int_equal(test_proc_stop(&p, 0, 5000), 2);
            FILE *f = fopen(log, "r");
            char text[4096] = "";
            size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
            text[n] = '\0';
            if (f)
                fclose(f);
            assert_non_null(strstr(text, "SMPOST_ADMIN_LISTEN"));
            assert_non_null(strstr(text, want[a]));
        }
}

/* ---- key rotation -------------------------------------------------------- */

static bool log_has(const char *text, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        FILE *f = fopen(log_path, "r");
        char line[2048];
        bool found = false;
        while (f && !found && fgets(line, sizeof line, f))
            found = strstr(line, text) != NULL;
        if (f)
            fclose(f);
        if (found)
            return true;
        usleep(50000);
    }
    return false;
}

static void test_a_replaced_jwks_file_rotates_the_keys(void **state)
{
    (void)state;
    char *old_key = token("alice", ""), *new_key = token_full(key2, "k2", "alice", "", 600, AUD);
    expect(201, old_key, "POST", "/api/v1/NewPost", "{\"message\":\"before\"}");
    write_jwks(key2, "k2");
    expect(201, new_key, "POST", "/api/v1/NewPost", "{\"message\":\"after\"}");
    expect_401(old_key, "POST", "/api/v1/NewPost",
               "Bearer error=\"invalid_token\", error_description=\"unknown key id\"");
    write_jwks(key1, "k1"); /* back, for the other cases */
    expect(201, old_key, "POST", "/api/v1/NewPost", "{\"message\":\"back\"}");
    free(old_key);
    free(new_key);
}

static void test_sighup_rereads_the_jwks(void **state)
{
    (void)state;
    assert_int_equal(kill(proc.pid, SIGHUP), 0);
    assert_true(log_has("jwks_reloaded", 5000));
    char *alice = token("alice", "");
    expect(201, alice, "POST", "/api/v1/NewPost", "{\"message\":\"after SIGHUP\"}");
    free(alice);
}

/* ---- protected mode ------------------------------------------------------ */

/* Starts bin on 0.0.0.0 with auth (NULL: unset); returns its exit status if
 * it exits within 5 s, else -1 after checking it serves, and stops it. */
static int start_on_all_interfaces(const char *bin, const char *name, const char *auth,
                                   char *log, size_t cap)
{
    test_proc p = {.port = test_free_port()};
    char port[16], url[340];
    snprintf(port, sizeof port, "%d", p.port);
    snprintf(log, cap, "%s/%s-%s.log", dir, name, auth ? auth : "unset");
    bool is_cmd = bin == cmd_bin;
    snprintf(url, sizeof url, "sqlite:%s/%s-%s.db", dir, name, auth ? auth : "unset");
    char *argv[16] = {(char *)bin, "--listen", "0.0.0.0", "--port", port,
                      is_cmd ? "--event-store" : "--read-model", url, "--kafka-bootstrap",
                      "none", "--log-level", "warn"};
    if (auth) {
        argv[11] = "--auth";
        argv[12] = (char *)auth;
    }
    assert_true(test_proc_start(&p, argv, log));
    if (test_proc_wait_http(p.port, 5000)) {
        test_proc_stop(&p, SIGTERM, 5000);
        return -1;
    }
    return test_proc_stop(&p, 0, 5000);
}

static void test_protected_mode_refuses_to_listen_beyond_loopback_without_auth(void **state)
{
    (void)state;
    const char *bins[] = {cmd_bin, query_bin}, *names[] = {"command-api", "query-api"};
    for (int i = 0; i < 2; i++) {
        char log[400];
        int code = start_on_all_interfaces(bins[i], names[i], NULL, log, sizeof log);
        if (code <= 0)
            fail_msg("%s on 0.0.0.0 without SMPOST_AUTH: exit %d, want non-zero", names[i],
                     code);
        FILE *f = fopen(log, "r");
        char text[4096] = "";
        size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
        text[n] = '\0';
        if (f)
            fclose(f);
        assert_non_null(strstr(text, "protected mode"));
        assert_non_null(strstr(text, "SMPOST_AUTH=jwt"));
        assert_non_null(strstr(text, "SMPOST_JWKS_FILE"));
        assert_non_null(strstr(text, "SMPOST_AUTH=off"));
        assert_int_equal(start_on_all_interfaces(bins[i], names[i], "off", log, sizeof log),
                         -1);
    }
    /* query-api has no protected routes yet: jwt there only satisfies
     * protected mode */
    char log[400];
    assert_int_equal(start_on_all_interfaces(query_bin, "query-api", "jwt", log, sizeof log), -1);
}

static void test_jwt_without_keys_refuses_to_start(void **state)
{
    (void)state;
    test_proc p = {.port = test_free_port()};
    char port[16], log[340], url[340];
    snprintf(port, sizeof port, "%d", p.port);
    snprintf(log, sizeof log, "%s/nokeys.log", dir);
    snprintf(url, sizeof url, "sqlite:%s/nokeys.db", dir);
    char *argv[] = {(char *)cmd_bin, "--port", port, "--event-store", url, "--kafka-bootstrap",
                    "none", "--auth", "jwt", "--jwt-issuer", ISS, "--jwt-audience", AUD, NULL};
    assert_true(test_proc_start(&p, argv, log));
    assert_false(test_proc_wait_http(p.port, 3000));
    assert_true(test_proc_stop(&p, 0, 5000) > 0);
}

int main(void)
{
    cmd_bin = getenv("SMPOST_COMMAND_API_BIN");
    query_bin = getenv("SMPOST_QUERY_API_BIN");
    if (!cmd_bin || !query_bin) {
        fprintf(stderr, "SMPOST_COMMAND_API_BIN / SMPOST_QUERY_API_BIN not set; skipping\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_or_refused_tokens_are_401_with_www_authenticate),
        cmocka_unit_test(test_health_and_docs_stay_public),
        cmocka_unit_test(test_new_post_takes_the_author_from_the_token),
        cmocka_unit_test(test_only_the_author_or_a_moderator_edits_and_deletes_a_post),
        cmocka_unit_test(test_comments_belong_to_their_author_or_a_moderator),
        cmocka_unit_test(test_any_user_likes_with_a_token),
        cmocka_unit_test(test_history_is_for_the_author_or_a_moderator),
        cmocka_unit_test(test_owners_are_subs_and_events_carry_metadata),
        cmocka_unit_test(test_restore_and_metrics_need_role_admin),
        cmocka_unit_test(test_admin_listener_alone_serves_restore_and_metrics_with_the_same_auth),
        cmocka_unit_test(test_query_api_serves_metrics_on_its_admin_listener_only),
        cmocka_unit_test(test_an_admin_listener_beyond_loopback_needs_auth_configured),
        cmocka_unit_test(test_a_replaced_jwks_file_rotates_the_keys),
        cmocka_unit_test(test_sighup_rereads_the_jwks),
        cmocka_unit_test(test_protected_mode_refuses_to_listen_beyond_loopback_without_auth),
        cmocka_unit_test(test_jwt_without_keys_refuses_to_start),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
