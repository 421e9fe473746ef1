/* SPDX-License-Identifier: Apache-2.0 */
/* test_mssql_params.c — what the SQL Server read model sends, as a
 * specification checked without a server: for each kind of value, exactly
 * what goes to sp_executesql (the @params declaration, the db-lib type, the
 * bytes and their length, NULL); for each event and query, which
 * parameters its statement declares and uses; and how the connection
 * string is read. Hostile and non-ASCII text must travel as parameter
 * bytes, untouched, and never reach SQL text; only parameter names
 * (checked) and fixed SQL do. */
#include "mssql_params.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sybfront.h>
#include <sybdb.h>

#define T0 1795734301123LL /* 2026-11-26T23:05:01.123Z */
#define POST "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

/* The one parameter at index i, checked against what db-lib must send. */
static void assert_param(const mssql_params *p, size_t i, const char *name, int type,
                         const void *bytes, int len)
{
    assert_true(i < p->n);
    const mssql_param *it = &p->items[i];
    assert_string_equal(it->name, name);
    assert_int_equal(it->type, type);
    assert_int_equal(it->len, len);
    if (!bytes) {
        assert_true(it->is_null);
        assert_null(mssql_param_value(it));
        return;
    }
    assert_false(it->is_null);
    assert_non_null(mssql_param_value(it));
    assert_memory_equal(mssql_param_value(it), bytes, (size_t)len);
}

static void test_a_post_created_event_binds_five_typed_parameters(void **state)
{
    mssql_params p;
    mssql_params_init(&p);
    mssql_params_uuid(&p, "@id", POST);
    mssql_params_int64(&p, "@v", 0);
    mssql_params_text(&p, "@author", "alice", 0);
    mssql_params_text(&p, "@message", "hello", 0);
    mssql_params_time(&p, "@at", T0);
    assert_true(mssql_params_ok(&p));
    assert_int_equal(p.n, 5);
    assert_string_equal(p.decl, "@id nvarchar(36), @v bigint, @author nvarchar(max), "
                                "@message nvarchar(max), @at datetime2(3)");
    int64_t zero = 0;
    assert_param(&p, 0, "@id", SYBVARCHAR, POST, 36);
    assert_param(&p, 1, "@v", SYBINT8, &zero, 8);
    assert_param(&p, 2, "@author", SYBNTEXT, "alice", 5);
    assert_param(&p, 3, "@message", SYBNTEXT, "hello", 5);
    assert_param(&p, 4, "@at", SYBVARCHAR, "2026-11-26T23:05:01.123", 23);
    assert_string_equal(p.prologue, "");
}

static void test_hostile_text_is_a_parameter_and_never_sql(void **state)
{
    const char *texts[] = {"'; DROP TABLE Post; --", "O'Brien", "x' OR '1'='1",
                           "N'); DELETE FROM dbo.Comment; --", "100% _x_ [a] \\ \"q\" /* c */"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        mssql_params p;
        mssql_params_init(&p);
        mssql_params_text(&p, "@message", texts[i], 0);
        assert_true(mssql_params_ok(&p));
        /* the very bytes given, borrowed, not escaped or copied */
        assert_param(&p, 0, "@message", SYBNTEXT, texts[i], (int)strlen(texts[i]));
        assert_ptr_equal(mssql_param_value(&p.items[0]), texts[i]);
        assert_string_equal(p.decl, "@message nvarchar(max)");
        /* the statement sent is the fixed SQL, unchanged */
        const char *sql = "UPDATE dbo.Post SET Message = @message WHERE Id = @id;";
        char *stmt = mssql_params_statement(&p, sql);
        assert_non_null(stmt);
        assert_string_equal(stmt, sql);
        free(stmt);
    }
}

static void test_non_ascii_text_is_sent_as_its_utf8_bytes(void **state)
{
    const char *text = "é ✓ 😀 日本語";
    mssql_params p;
    mssql_params_init(&p);
    mssql_params_text(&p, "@comment", text, 0);
    assert_true(mssql_params_ok(&p));
    /* 2 + 1 + 3 + 1 + 4 + 1 + 9 bytes; FreeTDS converts them to UTF-16 */
    assert_param(&p, 0, "@comment", SYBNTEXT, text, 21);
}

static void test_empty_text_is_sent_as_null_and_restored_by_a_prologue(void **state)
{
    mssql_params p;
    mssql_params_init(&p);
    mssql_params_uuid(&p, "@id", POST);
    mssql_params_text(&p, "@message", "", 0);
    mssql_params_text(&p, "@author", "", 0);
    assert_true(mssql_params_ok(&p));
    /* db-lib sends datalen 0 as NULL, so an empty string goes as NULL... */
    assert_param(&p, 1, "@message", SYBNTEXT, NULL, 0);
    assert_param(&p, 2, "@author", SYBNTEXT, NULL, 0);
    /* ...and the batch sets it back to '' before the statement runs */
    assert_string_equal(p.prologue, "SET @message = N''; SET @author = N'';");
    char *stmt = mssql_params_statement(&p, "SELECT @message;");
    assert_non_null(stmt);
    assert_string_equal(stmt, "SET @message = N''; SET @author = N'';\nSELECT @message;");
    free(stmt);
}

static void test_null_text_is_sql_null_without_a_prologue(void **state)
{
    mssql_params p;
    mssql_params_init(&p);
    mssql_params_text(&p, "@comment", NULL, 0);
    assert_true(mssql_params_ok(&p));
    assert_param(&p, 0, "@comment", SYBNTEXT, NULL, 0);
    assert_string_equal(p.prologue, "");
}

static void test_a_bounded_text_declares_its_size(void **state)
{
    mssql_params p;
    mssql_params_init(&p);
    mssql_params_text(&p, "@author", "Bob", 4000);
    mssql_params_text(&p, "@x", "y", 0);
    assert_string_equal(p.decl, "@author nvarchar(4000), @x nvarchar(max)");
}

static void test_int64_is_eight_bytes_in_host_order(void **state)
{
    const int64_t values[] = {0, 1, -1, T0, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        mssql_params p;
        mssql_params_init(&p);
        mssql_params_int64(&p, "@limit", values[i]);
        assert_true(mssql_params_ok(&p));
        assert_param(&p, 0, "@limit", SYBINT8, &values[i], 8);
        assert_string_equal(p.decl, "@limit bigint");
    }
}

static void test_times_are_iso_text_in_utc_with_milliseconds_and_no_zone(void **state)
{
    const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {T0, "2026-11-26T23:05:01.123"},
        {0, "1970-01-01T00:00:00.000"},
        {-1, "1969-12-31T23:59:59.999"},
        {951782400000LL, "2000-02-29T00:00:00.000"},
        {-62135596800000LL, "0001-01-01T00:00:00.000"},  /* datetime2's first day */
        {253402300799999LL, "9999-12-31T23:59:59.999"},  /* and its last instant */
        {INT64_MAX, "9999-12-31T23:59:59.999"},          /* clamped, never invalid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[MSSQL_TIME_LEN + 1];
        mssql_time_format(cases[i].ms, text);
        assert_string_equal(text, cases[i].text);
        mssql_params p;
        mssql_params_init(&p);
        mssql_params_time(&p, "@at", cases[i].ms);
        assert_param(&p, 0, "@at", SYBVARCHAR, cases[i].text, MSSQL_TIME_LEN);
        assert_string_equal(p.decl, "@at datetime2(3)");
    }
}

static void test_a_null_edited_at_is_sql_null(void **state)
{
    mssql_params p;
    mssql_params_init(&p);
    mssql_params_uuid(&p, "@cid", POST);
    mssql_params_null_time(&p, "@edited_at");
    assert_true(mssql_params_ok(&p));
    assert_param(&p, 1, "@edited_at", SYBVARCHAR, NULL, 0);
    assert_string_equal(p.decl, "@cid nvarchar(36), @edited_at datetime2(3)");
    assert_string_equal(p.prologue, "");
}

static void test_uuids_are_checked_and_sent_canonical(void **state)
{
    mssql_params p;
    mssql_params_init(&p);
    mssql_params_uuid(&p, "@id", "3F2504E0-4F89-41D3-9A0C-0305E82C3301");
    mssql_params_uuid(&p, "@cid", "{3f2504e04f8941d39a0c0305e82c3301}");
    assert_true(mssql_params_ok(&p));
    assert_param(&p, 0, "@id", SYBVARCHAR, POST, 36);
    assert_param(&p, 1, "@cid", SYBVARCHAR, POST, 36);

    const char *bad[] = {"not-a-uuid", "'; DROP TABLE Post; --", "", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mssql_params_init(&p);
        mssql_params_uuid(&p, "@id", bad[i]);
        assert_false(mssql_params_ok(&p));
        assert_string_equal(p.why, "@id is not a UUID");
    }
}

static void test_names_that_are_not_plain_identifiers_are_refused(void **state)
{
    const char *bad[] = {"author", "@", "@1x", "@a b", "@x;DROP TABLE Post", "@x'",
                         "@a_name_that_is_far_too_long_to_be_ok", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mssql_params p;
        mssql_params_init(&p);
        mssql_params_text(&p, bad[i], "v", 0);
        assert_false(mssql_params_ok(&p));
        assert_int_equal(p.n, 0);
        assert_string_equal(p.decl, ""); /* nothing reached the declaration */
        assert_string_equal(p.why, "bad parameter name");
    }
    mssql_params p;
    mssql_params_init(&p);
    mssql_params_int64(&p, "@min_likes_2", 1);
    assert_true(mssql_params_ok(&p));
}

static void test_more_than_the_maximum_is_refused_and_keeps_the_first_reason(void **state)
{
    mssql_params p;
    mssql_params_init(&p);
    for (int i = 0; i < MSSQL_PARAMS_MAX + 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "@p%d", i);
        mssql_params_int64(&p, name, i);
    }
    mssql_params_uuid(&p, "@id", "nope");
    assert_false(mssql_params_ok(&p));
    assert_int_equal(p.n, MSSQL_PARAMS_MAX);
    assert_string_equal(p.why, "too many parameters");
}

static void test_a_copied_list_points_at_its_own_values(void **state)
{
    mssql_params p;
    mssql_params_init(&p);
    mssql_params_int64(&p, "@v", 42);
    mssql_params_time(&p, "@at", T0);
    mssql_params_uuid(&p, "@id", POST);
    mssql_params copy = p;
    memset(&p, 0xA5, sizeof p); /* the original is gone */
    int64_t v = 42;
    assert_param(&copy, 0, "@v", SYBINT8, &v, 8);
    assert_ptr_equal(mssql_param_value(&copy.items[0]), &copy.items[0].i64);
    assert_param(&copy, 1, "@at", SYBVARCHAR, "2026-11-26T23:05:01.123", 23);
    assert_param(&copy, 2, "@id", SYBVARCHAR, POST, 36);
}

/* ---- the statements ----------------------------------------------------- */

static const char *const HOSTILE = "'; DROP TABLE Post; --";

/* The distinct @names the SQL uses, ", "-joined in order of first use,
 * leaving out @@functions and the batch's own locals (@was, @claimed). */
static void used_names(const char *sql, char *out, size_t cap)
{
    char seen[16][MSSQL_PARAM_NAME_MAX + 8];
    size_t nseen = 0;
    out[0] = '\0';
    for (const char *s = sql; (s = strchr(s, '@')) != NULL;) {
        if (s[1] == '@') { /* @@ROWCOUNT */
            s += 2;
            continue;
        }
        int n = 1;
        while (isalnum((unsigned char)s[n]) || s[n] == '_')
            n++;
        char name[sizeof seen[0]];
        snprintf(name, sizeof name, "%.*s", n, s);
        s += n;
        bool dup = !strcmp(name, "@was") || !strcmp(name, "@claimed");
        for (size_t i = 0; i < nseen && !dup; i++)
            dup = !strcmp(seen[i], name);
        if (dup || nseen == 16)
            continue;
        strcpy(seen[nseen++], name);
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", used ? ", " : "", name);
    }
}

/* The declared names, without their types, in order. */
static void declared_names(const mssql_params *p, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < p->n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", used ? ", " : "", p->items[i].name);
    }
}

static sm_event event(sm_event_type type, int64_t version)
{
    sm_event e = {0};
    e.type = type;
    e.version = version;
    strcpy(e.aggregate_id, POST);
    strcpy(e.comment_id, "0fffffff-ffff-4fff-bfff-ffffffffffff");
    e.author = (char *)HOSTILE;
    e.message = (char *)HOSTILE;
    e.comment = (char *)HOSTILE;
    e.username = (char *)HOSTILE;
    e.at_ms = T0;
    return e;
}

/* Apply batches joined into one call: part i's variables and parameters
 * are renamed @name_i everywhere (statement, prologue, declaration, the
 * values' names), @@functions and quoted text are left alone, and the
 * values stay those of the part. */
static void test_apply_batches_joined_in_one_call_keep_their_own_names(void **state)
{
    (void)state;
    sm_event created = event(SM_EV_POST_CREATED, 0), liked = event(SM_EV_POST_LIKED, 1);
    created.message = ""; /* an empty text: sent NULL, restored by the prologue */
    mssql_params p0, p1;
    mssql_params_init(&p0);
    mssql_params_init(&p1);
    const char *s0 = mssql_apply_statement(&created, &p0), *s1 = mssql_apply_statement(&liked, &p1);
    mssql_multi m;
    mssql_multi_init(&m);
    assert_true(mssql_multi_add(&m, &p0, s0));
    assert_true(mssql_multi_add(&m, &p1, s1));
    assert_int_equal(m.nparts, 2);
    assert_int_equal(m.n, p0.n + p1.n);
    /* every @name in the joined text ends in _0 or _1; none is left bare */
    for (const char *c = m.stmt; (c = strchr(c, '@')) != NULL;) {
        if (c[1] == '@') {
            assert_true(strncmp(c, "@@ROWCOUNT", 10) == 0 || strncmp(c, "@@TRANCOUNT", 11) == 0);
            c += 2;
            while (isalnum((unsigned char)*c) || *c == '_')
                c++;
            continue;
        }
        const char *e = c + 1;
        while (isalnum((unsigned char)*e) || *e == '_')
            e++;
        assert_true(e - c > 2 && (strncmp(e - 2, "_0", 2) == 0 || strncmp(e - 2, "_1", 2) == 0));
        c = e;
    }
    assert_non_null(strstr(m.stmt, "SET @message_0 = N'';"));
    assert_non_null(strstr(m.stmt, "DECLARE @was_0 bigint = -1, @claimed_0 int = 0;"));
    assert_non_null(strstr(m.stmt, "DECLARE @was_1 bigint = -1, @claimed_1 int = 0;"));
    assert_non_null(strstr(m.stmt, "SET @claimed_1 = @@ROWCOUNT;"));
    assert_string_equal(m.decl, "@id_0 nvarchar(36), @v_0 bigint, @author_0 nvarchar(max), "
                                "@message_0 nvarchar(max), @at_0 datetime2(3), "
                                "@author_id_0 nvarchar(max), @id_1 nvarchar(36), @v_1 bigint");
    int64_t one = 1;
    assert_string_equal(m.items[0].name, "@id_0");
    assert_memory_equal(mssql_param_value(&m.items[0]), POST, 36);
    assert_string_equal(m.items[p0.n + 1].name, "@v_1");
    assert_memory_equal(mssql_param_value(&m.items[p0.n + 1]), &one, 8);
    mssql_multi_free(&m);

    /* a call holds at most MSSQL_MULTI_MAX parts, and stays usable when full */
    mssql_multi_init(&m);
    for (int i = 0; i < MSSQL_MULTI_MAX; i++)
        assert_true(mssql_multi_add(&m, &p1, s1));
    size_t len = strlen(m.stmt);
    assert_false(mssql_multi_add(&m, &p1, s1));
    assert_int_equal(m.nparts, MSSQL_MULTI_MAX);
    assert_int_equal(strlen(m.stmt), len);
    assert_non_null(strstr(m.stmt, "@v_63"));
    mssql_multi_free(&m);
}

static void test_each_event_declares_exactly_the_parameters_its_batch_uses(void **state)
{
    const struct {
        sm_event_type type;
        const char *decl, *used;
    } cases[] = {
        {SM_EV_POST_CREATED,
         "@id nvarchar(36), @v bigint, @author nvarchar(max), @message nvarchar(max), "
         "@at datetime2(3), @author_id nvarchar(max)", "@id, @v, @author, @message, @at, @author_id"},
        {SM_EV_MESSAGE_UPDATED, "@id nvarchar(36), @v bigint, @message nvarchar(max)",
         "@id, @v, @message"},
        {SM_EV_POST_LIKED, "@id nvarchar(36), @v bigint", "@id, @v"},
        {SM_EV_COMMENT_ADDED,
         "@id nvarchar(36), @v bigint, @cid nvarchar(36), @username nvarchar(max), "
         "@comment nvarchar(max), @at datetime2(3), @user_id nvarchar(max)",
         "@id, @v, @cid, @username, @comment, @at, @user_id"},
        {SM_EV_COMMENT_UPDATED, /* the username is not changed, so not sent */
         "@id nvarchar(36), @v bigint, @cid nvarchar(36), @comment nvarchar(max), "
         "@at datetime2(3)", "@id, @v, @comment, @at, @cid"},
        {SM_EV_COMMENT_REMOVED, "@id nvarchar(36), @v bigint, @cid nvarchar(36)",
         "@id, @v, @cid"},
        {SM_EV_POST_REMOVED, "@id nvarchar(36), @v bigint", "@id, @v"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sm_event e = event(cases[i].type, 7);
        mssql_params p;
        mssql_params_init(&p);
        const char *sql = mssql_apply_statement(&e, &p);
        assert_non_null(sql);
        assert_true(mssql_params_ok(&p));
        assert_string_equal(p.decl, cases[i].decl);
        char used[512], declared[512];
        used_names(sql, used, sizeof used);
        declared_names(&p, declared, sizeof declared);
        assert_string_equal(used, cases[i].used);
        /* every declared name is used and every used name declared */
        for (size_t k = 0; k < p.n; k++)
            assert_non_null(strstr(used, p.items[k].name));
        assert_int_equal(strlen(used), strlen(declared));
        assert_null(strstr(sql, HOSTILE));
        assert_param(&p, 0, "@id", SYBVARCHAR, POST, 36);
        int64_t v = 7;
        assert_param(&p, 1, "@v", SYBINT8, &v, 8);
    }
}

static void test_an_apply_batch_is_one_transaction_that_claims_the_version_first(void **state)
{
    for (int t = SM_EV_POST_CREATED; t < SM_EV_TYPE_COUNT; t++) {
        sm_event e = event((sm_event_type)t, 3);
        mssql_params p;
        mssql_params_init(&p);
        const char *sql = mssql_apply_statement(&e, &p);
        assert_non_null(sql);
        const char *abort_on = strstr(sql, "SET XACT_ABORT ON;");
        const char *begin = strstr(sql, "BEGIN TRAN;");
        const char *read = strstr(sql, "FROM dbo.PostVersion WITH (UPDLOCK, HOLDLOCK)");
        const char *claim = strstr(sql, "WHERE PostId = @id AND Version = @was");
        const char *change = strstr(sql, "IF @claimed = 1");
        const char *commit = strstr(sql, "COMMIT;");
        assert_true(abort_on && begin && read && claim && change && commit);
        assert_true(abort_on < begin && begin < read && read < claim && claim < change &&
                    change < commit);
        assert_non_null(strstr(commit, "SELECT @was AS Was, @claimed AS Claimed;"));
    }
}

static void test_a_comment_edit_sends_the_new_text_and_the_edit_time(void **state)
{
    sm_event e = event(SM_EV_COMMENT_UPDATED, 4);
    e.comment = "é ✓ 😀";
    e.at_ms = T0 + 1;
    mssql_params p;
    mssql_params_init(&p);
    const char *sql = mssql_apply_statement(&e, &p);
    assert_non_null(strstr(sql, "SET Comment = @comment, Edited = 1, EditedAt = @at"));
    assert_null(strstr(sql, "Username"));
    assert_param(&p, 2, "@cid", SYBVARCHAR, "0fffffff-ffff-4fff-bfff-ffffffffffff", 36);
    assert_param(&p, 3, "@comment", SYBNTEXT, "é ✓ 😀", 11);
    assert_param(&p, 4, "@at", SYBVARCHAR, "2026-11-26T23:05:01.124", 23);
}

static void test_missing_event_text_is_stored_as_empty(void **state)
{
    sm_event e = event(SM_EV_POST_CREATED, 0);
    e.author = NULL;
    e.message = "";
    mssql_params p;
    mssql_params_init(&p);
    const char *sql = mssql_apply_statement(&e, &p);
    assert_true(mssql_params_ok(&p));
    assert_param(&p, 2, "@author", SYBNTEXT, NULL, 0);
    assert_param(&p, 3, "@message", SYBNTEXT, NULL, 0);
    char *stmt = mssql_params_statement(&p, sql);
    assert_non_null(stmt);
    assert_memory_equal(stmt, "SET @author = N''; SET @message = N'';\nSET XACT_ABORT ON;", 57);
    free(stmt);
}

static void test_owner_ids_are_sent_as_text_or_as_sql_null_never_as_empty(void **state)
{
    sm_event e = event(SM_EV_POST_CREATED, 0);
    e.author_id = "auth0|alice";
    mssql_params p;
    mssql_params_init(&p);
    mssql_apply_statement(&e, &p);
    assert_param(&p, 5, "@author_id", SYBNTEXT, "auth0|alice", 11);
    e.author_id = NULL; /* an event from before owner ids, or with auth off */
    mssql_params_init(&p);
    mssql_apply_statement(&e, &p);
    assert_string_equal(p.items[5].name, "@author_id");
    assert_true(p.items[5].is_null);
    assert_null(mssql_param_value(&p.items[5]));
    assert_null(strstr(p.prologue, "@author_id")); /* stays NULL: no SET @author_id = N'' */

    e = event(SM_EV_COMMENT_ADDED, 1);
    e.user_id = "bob-sub";
    mssql_params_init(&p);
    const char *sql = mssql_apply_statement(&e, &p);
    assert_non_null(strstr(sql, "@user_id)"));
    assert_param(&p, 6, "@user_id", SYBNTEXT, "bob-sub", 7);
    e.user_id = NULL;
    mssql_params_init(&p);
    mssql_apply_statement(&e, &p);
    assert_true(p.items[6].is_null);
    assert_null(strstr(p.prologue, "@user_id"));
}

static void test_an_event_with_a_bad_id_or_type_is_refused(void **state)
{
    sm_event e = event(SM_EV_POST_LIKED, 1);
    strcpy(e.aggregate_id, "x' OR 1=1 --");
    mssql_params p;
    mssql_params_init(&p);
    assert_non_null(mssql_apply_statement(&e, &p));
    assert_false(mssql_params_ok(&p));
    assert_string_equal(p.why, "@id is not a UUID");
    const sm_event_type bad[] = {SM_EV_NONE, (sm_event_type)SM_EV_TYPE_COUNT,
                                 (sm_event_type)-1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = event(bad[i], 1);
        mssql_params_init(&p);
        assert_null(mssql_apply_statement(&e, &p));
    }
}

static void test_each_query_kind_binds_paging_and_its_filter(void **state)
{
    const struct {
        rm_query q;
        const char *decl, *where;
    } cases[] = {
        {{RM_Q_ALL, NULL, NULL, 0, 20, 40, NULL, 0, true, 7}, "@offset bigint, @limit bigint, @climit bigint", NULL},
        {{RM_Q_BY_ID, POST, NULL, 0, 20, 0, NULL, 0, true, 7}, "@offset bigint, @limit bigint, @climit bigint, @id nvarchar(36)",
         "WHERE p.Id = @id"},
        {{RM_Q_BY_AUTHOR, NULL, HOSTILE, 0, 20, 0, NULL, 0, true, 7},
         "@offset bigint, @limit bigint, @climit bigint, @author nvarchar(4000)",
         "WHERE p.Author = @author AND DATALENGTH(p.Author) = DATALENGTH(@author)"},
        {{RM_Q_WITH_COMMENTS, NULL, NULL, 0, 20, 0, NULL, 0, true, 7}, "@offset bigint, @limit bigint, @climit bigint",
         "WHERE EXISTS (SELECT 1 FROM dbo.Comment x WHERE x.PostId = p.Id)"},
        {{RM_Q_WITH_LIKES, NULL, NULL, 3, 20, 0, NULL, 0, true, 7},
         "@offset bigint, @limit bigint, @climit bigint, @min_likes bigint", "WHERE p.Likes >= @min_likes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mssql_params p;
        mssql_params_init(&p);
        const char *sql = mssql_query_statement(&cases[i].q, &p);
        assert_non_null(sql);
        assert_true(mssql_params_ok(&p));
        assert_string_equal(p.decl, cases[i].decl);
        char used[512], declared[512];
        used_names(sql, used, sizeof used);
        declared_names(&p, declared, sizeof declared);
        assert_int_equal(strlen(used), strlen(declared));
        for (size_t k = 0; k < p.n; k++)
            assert_non_null(strstr(used, p.items[k].name));
        /* each post's newest @climit comments, each a seek on the post */
        assert_string_equal(p.items[2].name, "@climit");
        assert_int_equal(p.items[2].i64, 7);
        assert_non_null(strstr(sql, "OUTER APPLY (SELECT TOP (@climit) x.* FROM dbo.Comment x"
                                    " WHERE x.PostId = g.Id ORDER BY x.CommentDate DESC"));
        if (cases[i].where)
            assert_non_null(strstr(sql, cases[i].where));
        else
            assert_null(strstr(sql, "WHERE p."));
        /* the stable order: newest first, ties by the id's text */
        assert_non_null(strstr(sql, "ORDER BY p.DatePosted DESC, CONVERT(char(36), p.Id) "
                                    "OFFSET @offset ROWS FETCH NEXT @limit ROWS ONLY"));
        assert_null(strstr(sql, HOSTILE));
        int64_t offset = cases[i].q.offset, limit = cases[i].q.limit;
        assert_param(&p, 0, "@offset", SYBINT8, &offset, 8);
        assert_param(&p, 1, "@limit", SYBINT8, &limit, 8);
    }
}

/* A keyset page (rm_query.after_id): each kind keeps its filter and adds
 * the place after the cursor's post, compared on the id's text exactly as
 * the ORDER BY sorts it, with the date and the id bound last. */
static void test_each_query_kind_after_a_cursor_binds_its_place(void **state)
{
    (void)state;
    const char *after = "p.DatePosted <= @after_at AND (p.DatePosted < @after_at OR "
                        "CONVERT(char(36), p.Id) > CONVERT(char(36), CONVERT(uniqueidentifier, "
                        "@after_id))) ORDER BY p.DatePosted DESC, CONVERT(char(36), p.Id) ";
    const struct {
        rm_query q;
        const char *where;
        size_t nparams;
    } cases[] = {
        {{RM_Q_ALL, NULL, NULL, 0, 21, 0, POST, 2000, false, 0}, "WHERE p.DatePosted <=", 5},
        {{RM_Q_BY_AUTHOR, NULL, "alice", 0, 21, 0, POST, 2000, false, 0},
         "DATALENGTH(@author) AND p.DatePosted <=", 6},
        {{RM_Q_WITH_COMMENTS, NULL, NULL, 0, 21, 0, POST, 2000, false, 0}, "p.Id) AND p.DatePosted <=", 5},
        {{RM_Q_WITH_LIKES, NULL, NULL, 3, 21, 0, POST, 2000, false, 0},
         "WHERE p.Likes >= @min_likes AND p.DatePosted <=", 6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mssql_params p;
        mssql_params_init(&p);
        const char *sql = mssql_query_statement(&cases[i].q, &p);
        assert_non_null(sql);
        assert_true(mssql_params_ok(&p));
        assert_non_null(strstr(sql, cases[i].where));
        assert_non_null(strstr(sql, after));
        assert_int_equal(p.n, cases[i].nparams);
        assert_param(&p, p.n - 2, "@after_at", SYBVARCHAR, "1970-01-01T00:00:02.000", 23);
        assert_param(&p, p.n - 1, "@after_id", SYBVARCHAR, POST, 36);
        assert_int_equal(p.items[2].i64, INT64_MAX); /* not capped: every comment */
    }
}

static void test_a_query_with_a_bad_id_or_kind_is_refused(void **state)
{
    rm_query q = {RM_Q_BY_ID, "nope", NULL, 0, 10, 0, NULL, 0, false, 0};
    mssql_params p;
    mssql_params_init(&p);
    assert_non_null(mssql_query_statement(&q, &p));
    assert_false(mssql_params_ok(&p));
    q.kind = (rm_query_kind)(RM_Q_WITH_LIKES + 1);
    mssql_params_init(&p);
    assert_null(mssql_query_statement(&q, &p));
}

static void test_the_version_lookup_binds_the_post_id(void **state)
{
    mssql_params p;
    mssql_params_init(&p);
    const char *sql = mssql_version_statement("3F2504E0-4F89-41D3-9A0C-0305E82C3301", &p);
    assert_string_equal(sql, "SELECT Version FROM dbo.PostVersion WHERE PostId = @id;");
    assert_string_equal(p.decl, "@id nvarchar(36)");
    assert_param(&p, 0, "@id", SYBVARCHAR, POST, 36);
}

/* ---- the connection string ------------------------------------------------ */

static void test_the_line_babelfish_prints_is_a_connection_string(void **state)
{
    mssql_conninfo ci;
    char why[128] = "";
    assert_true(mssql_conninfo_parse(
        "host=127.0.0.1;port=14330;user=smpost;password=Smpost-test-1;database=smpost", &ci,
        why, sizeof why));
    assert_string_equal(ci.host, "127.0.0.1");
    assert_int_equal(ci.port, 14330);
    assert_string_equal(ci.user, "smpost");
    assert_string_equal(ci.password, "Smpost-test-1");
    assert_string_equal(ci.database, "smpost");
}

static void test_keys_ignore_case_and_blanks_and_unknown_keys_are_ignored(void **state)
{
    mssql_conninfo ci;
    char why[128] = "";
    assert_true(mssql_conninfo_parse(" HOST = db.local ;User=sa; PassWord=p=w ;"
                                     "DATABASE=smpost;App=x;;noequals", &ci, why,
                                     sizeof why));
    assert_string_equal(ci.host, "db.local");
    assert_int_equal(ci.port, 1433); /* the default */
    assert_string_equal(ci.user, "sa");
    assert_string_equal(ci.password, "p=w");
    assert_string_equal(ci.database, "smpost");
}

static void test_a_connection_string_missing_a_field_or_with_a_bad_port_is_refused(void **state)
{
    const struct {
        const char *conn, *why;
    } cases[] = {
        {"", "the connection string needs host, user, password and database"},
        {"host=h;user=u;password=secret", "the connection string needs host, user, password "
                                          "and database"},
        {"host=h;user=u;password=secret;database=d;port=abc", "port must be a number from 1 "
                                                              "to 65535"},
        {"host=h;user=u;password=secret;database=d;port=0", "port must be a number from 1 to "
                                                            "65535"},
        {"host=h;user=u;password=secret;database=d;port=65536", "port must be a number from 1 "
                                                                "to 65535"},
        {"host=h;user=u;password=secret;database=d;port=-1", "port must be a number from 1 to "
                                                             "65535"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mssql_conninfo ci;
        char why[128] = "";
        assert_false(mssql_conninfo_parse(cases[i].conn, &ci, why, sizeof why));
        assert_string_equal(why, cases[i].why);
        assert_null(strstr(why, "secret"));
    }
    char long_user[300] = "host=h;password=p;database=d;user=";
    memset(long_user + strlen(long_user), 'u', 200);
    mssql_conninfo ci;
    char why[128] = "";
    assert_false(mssql_conninfo_parse(long_user, &ci, why, sizeof why));
    assert_string_equal(why, "user is too long");
}

/* ---- TLS: ca= and the freetds.conf -------------------------------------- */

static void test_ca_requires_tls_and_the_freetds_conf_says_so_without_the_login(void **state)
{
    mssql_conninfo ci;
    char why[128] = "";
    assert_true(mssql_conninfo_parse("host=db.local;port=1444;user=u;password=Secret-pw-9;"
                                     "database=d;encrypt=Require;ca=/run/secrets/sql ca.pem",
                                     &ci, why, sizeof why));
    assert_string_equal(ci.ca, "/run/secrets/sql ca.pem");
    char conf[1024];
    assert_true(mssql_freetds_conf(&ci, "smpost_rm_3", conf, sizeof conf));
    assert_non_null(strstr(conf, "\n[smpost_rm_3]\n"));
    assert_non_null(strstr(conf, "\n\thost = db.local\n"));
    assert_non_null(strstr(conf, "\n\tport = 1444\n"));
    assert_non_null(strstr(conf, "\n\tencryption = require\n"));
    assert_non_null(strstr(conf, "\n\tca file = /run/secrets/sql ca.pem\n"));
    assert_non_null(strstr(conf, "\n\tcheck certificate hostname = yes\n"));
    assert_null(strstr(conf, "Secret-pw-9"));
    assert_null(strstr(conf, "user"));
    assert_null(strstr(conf, "password"));
    char small[64];
    assert_false(mssql_freetds_conf(&ci, "smpost_rm_3", small, sizeof small));
    /* without ca= nothing asks for TLS */
    assert_true(mssql_conninfo_parse("host=h;user=u;password=p;database=d", &ci, why,
                                     sizeof why));
    assert_string_equal(ci.ca, "");
}

static void test_tls_settings_freetds_conf_cannot_carry_are_refused(void **state)
{
    const struct {
        const char *conn, *why;
    } cases[] = {
        {"host=h;user=u;password=secret;database=d;encrypt=require",
         "encrypt=require needs the CA file (ca=PATH or SMPOST_MSSQL_TLS_CA)"},
        {"host=h;user=u;password=secret;database=d;encrypt=yes;ca=/ca.pem",
         "encrypt must be require (or left out)"},
        {"host=h;user=u;password=secret;database=d;ca=/etc/#ca.pem",
         "the CA file's path (SMPOST_MSSQL_TLS_CA or ca=) holds '#', ';', a control character "
         "or two blanks in a row, which freetds.conf cannot carry"},
        {"host=h;user=u;password=secret;database=d;ca=/etc/two  blanks.pem",
         "the CA file's path (SMPOST_MSSQL_TLS_CA or ca=) holds '#', ';', a control character "
         "or two blanks in a row, which freetds.conf cannot carry"},
        {"host=h;user=u;password=secret;database=d;ca=/etc/a\tb.pem",
         "the CA file's path (SMPOST_MSSQL_TLS_CA or ca=) holds '#', ';', a control character "
         "or two blanks in a row, which freetds.conf cannot carry"},
        {"host=h#x;user=u;password=secret;database=d;ca=/ca.pem",
         "host holds a character freetds.conf cannot carry"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mssql_conninfo ci;
        char why[200] = "";
        assert_false(mssql_conninfo_parse(cases[i].conn, &ci, why, sizeof why));
        assert_string_equal(why, cases[i].why);
        assert_null(strstr(why, "secret"));
    }
    char long_ca[400] = "host=h;user=u;password=p;database=d;ca=/";
    memset(long_ca + strlen(long_ca), 'c', MSSQL_CA_MAX);
    mssql_conninfo ci;
    char why[200] = "";
    assert_false(mssql_conninfo_parse(long_ca, &ci, why, sizeof why));
    assert_string_equal(why, "ca is too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_post_created_event_binds_five_typed_parameters),
        cmocka_unit_test(test_ca_requires_tls_and_the_freetds_conf_says_so_without_the_login),
        cmocka_unit_test(test_tls_settings_freetds_conf_cannot_carry_are_refused),
        cmocka_unit_test(test_hostile_text_is_a_parameter_and_never_sql),
        cmocka_unit_test(test_non_ascii_text_is_sent_as_its_utf8_bytes),
        cmocka_unit_test(test_empty_text_is_sent_as_null_and_restored_by_a_prologue),
        cmocka_unit_test(test_null_text_is_sql_null_without_a_prologue),
        cmocka_unit_test(test_a_bounded_text_declares_its_size),
        cmocka_unit_test(test_int64_is_eight_bytes_in_host_order),
        cmocka_unit_test(test_times_are_iso_text_in_utc_with_milliseconds_and_no_zone),
        cmocka_unit_test(test_a_null_edited_at_is_sql_null),
        cmocka_unit_test(test_uuids_are_checked_and_sent_canonical),
        cmocka_unit_test(test_names_that_are_not_plain_identifiers_are_refused),
        cmocka_unit_test(test_more_than_the_maximum_is_refused_and_keeps_the_first_reason),
        cmocka_unit_test(test_a_copied_list_points_at_its_own_values),
        cmocka_unit_test(test_each_event_declares_exactly_the_parameters_its_batch_uses),
        cmocka_unit_test(test_an_apply_batch_is_one_transaction_that_claims_the_version_first),
        cmocka_unit_test(test_a_comment_edit_sends_the_new_text_and_the_edit_time),
        cmocka_unit_test(test_missing_event_text_is_stored_as_empty),
        cmocka_unit_test(test_owner_ids_are_sent_as_text_or_as_sql_null_never_as_empty),
        cmocka_unit_test(test_an_event_with_a_bad_id_or_type_is_refused),
        cmocka_unit_test(test_each_query_kind_binds_paging_and_its_filter),
        cmocka_unit_test(test_each_query_kind_after_a_cursor_binds_its_place),
        cmocka_unit_test(test_a_query_with_a_bad_id_or_kind_is_refused),
        cmocka_unit_test(test_the_version_lookup_binds_the_post_id),
        cmocka_unit_test(test_the_line_babelfish_prints_is_a_connection_string),
        cmocka_unit_test(test_apply_batches_joined_in_one_call_keep_their_own_names),
        cmocka_unit_test(test_keys_ignore_case_and_blanks_and_unknown_keys_are_ignored),
        cmocka_unit_test(test_a_connection_string_missing_a_field_or_with_a_bad_port_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
