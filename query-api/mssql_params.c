/* SPDX-License-Identifier: Apache-2.0 */
/* mssql_params.c — see mssql_params.h. Pure string and memory work: no
 * db-lib calls (only its type constants), so the unit test needs no server.
 * Three parts: the parameter builders, the read model's T-SQL statements
 * with the binding of each event and query, and the connection string. */
#include "mssql_params.h"

#include "sm_time.h"
#include "sm_uuid.h"

#include <sybfront.h>
#include <sybdb.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- typed parameters ------------------------------------------------------ */

void mssql_params_init(mssql_params *p) { memset(p, 0, sizeof *p); }

static void refuse(mssql_params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(mssql_params *p, const char *fmt, ...)
{
    if (p->bad)
        return; /* keep the first reason */
    p->bad = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
}

/* Names end up in the declaration and the prologue, which are SQL text:
 * only "@" + an identifier may pass. */
static bool valid_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len < 2 || len >= MSSQL_PARAM_NAME_MAX || name[0] != '@' ||
        isdigit((unsigned char)name[1]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_')
            return false;
    return true;
}

/* Appends ", " (unless first) and text to buf; refuses if it does not fit. */
static void append(mssql_params *p, char *buf, const char *sep, const char *text)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, MSSQL_DECL_MAX - used, "%s%s", used ? sep : "", text);
    if (n < 0 || (size_t)n >= MSSQL_DECL_MAX - used) {
        buf[used] = '\0';
        refuse(p, "parameter list too long");
    }
}

/* Reserves the next slot, named and declared; NULL if refused. */
static mssql_param *add(mssql_params *p, const char *name, mssql_param_kind kind, int type,
                        const char *sql_type)
{
    if (!valid_name(name)) {
        refuse(p, "bad parameter name");
        return NULL;
    }
    if (p->n == MSSQL_PARAMS_MAX) {
        refuse(p, "too many parameters");
        return NULL;
    }
    mssql_param *it = &p->items[p->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    it->kind = kind;
    it->type = type;
    char decl[MSSQL_PARAM_NAME_MAX + 32];
    snprintf(decl, sizeof decl, "%s %s", name, sql_type);
    append(p, p->decl, ", ", decl);
    return it;
}

void mssql_params_text(mssql_params *p, const char *name, const char *utf8, int max_chars)
{
    char sql_type[32] = "nvarchar(max)";
    if (max_chars > 0 && max_chars <= 4000)
        snprintf(sql_type, sizeof sql_type, "nvarchar(%d)", max_chars);
    mssql_param *it = add(p, name, MSSQL_P_TEXT, SYBNTEXT, sql_type);
    if (!it)
        return;
    size_t len = utf8 ? strlen(utf8) : 0;
    if (len > INT32_MAX) {
        refuse(p, "%s is too long", name);
        return;
    }
    it->text = utf8;
    it->len = (int)len;
    it->is_null = utf8 == NULL || len == 0;
    if (utf8 && len == 0) {
        /* sent as NULL (db-lib's datalen 0), set back to '' by the prologue */
        char set[MSSQL_PARAM_NAME_MAX + 16];
        snprintf(set, sizeof set, "SET %s = N'';", name);
        append(p, p->prologue, " ", set);
    }
}

void mssql_params_int64(mssql_params *p, const char *name, int64_t v)
{
    mssql_param *it = add(p, name, MSSQL_P_INT64, SYBINT8, "bigint");
    if (!it)
        return;
    it->i64 = v;
    it->len = (int)sizeof it->i64;
}

void mssql_time_format(int64_t ms, char out[MSSQL_TIME_LEN + 1])
{
    sm_time_str full;
    sm_time_format(ms, full);
    memcpy(out, full, MSSQL_TIME_LEN); /* all but the 'Z': datetime2 has no zone */
    out[MSSQL_TIME_LEN] = '\0';
}

void mssql_params_time(mssql_params *p, const char *name, int64_t ms)
{
    mssql_param *it = add(p, name, MSSQL_P_TIME, SYBVARCHAR, "datetime2(3)");
    if (!it)
        return;
    mssql_time_format(ms, it->ascii);
    it->len = MSSQL_TIME_LEN;
}

void mssql_params_null_time(mssql_params *p, const char *name)
{
    mssql_param *it = add(p, name, MSSQL_P_TIME, SYBVARCHAR, "datetime2(3)");
    if (it)
        it->is_null = true;
}

void mssql_params_uuid(mssql_params *p, const char *name, const char *uuid)
{
    /* nvarchar(36), not uniqueidentifier: see "uuid" in mssql_params.h */
    mssql_param *it = add(p, name, MSSQL_P_UUID, SYBVARCHAR, "nvarchar(36)");
    if (!it)
        return;
    if (!uuid || !sm_uuid_parse(uuid, it->ascii)) {
        refuse(p, "%s is not a UUID", name);
        return;
    }
    it->len = SM_UUID_LEN;
}

bool mssql_params_ok(const mssql_params *p) { return !p->bad; }

const void *mssql_param_value(const mssql_param *item)
{
    if (item->is_null)
        return NULL;
    switch (item->kind) {
    case MSSQL_P_TEXT:
        return item->text;
    case MSSQL_P_INT64:
        return &item->i64;
    default:
        return item->ascii;
    }
}

char *mssql_params_statement(const mssql_params *p, const char *sql)
{
    size_t plen = strlen(p->prologue), slen = strlen(sql);
    char *out = malloc(plen + 1 + slen + 1);
    if (!out)
        return NULL;
    if (plen) {
        memcpy(out, p->prologue, plen);
        out[plen++] = '\n';
    }
    memcpy(out + plen, sql, slen + 1);
    return out;
}

/* ---- several apply batches in one call -------------------------------------- */

void mssql_multi_init(mssql_multi *m) { memset(m, 0, sizeof *m); }

void mssql_multi_free(mssql_multi *m)
{
    free(m->stmt);
    free(m->decl);
    free(m->items);
    mssql_multi_init(m);
}

static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* text with every @name outside quotes renamed @name_<part>, appended to
 * *out after sep (realloc'd). Our statements and declarations only. */
static bool append_renamed(char **out, const char *sep, const char *text, size_t part)
{
    size_t have = *out ? strlen(*out) : 0, cap = have + strlen(sep) + 1;
    size_t vars = 0;
    for (const char *c = text; *c; c++)
        vars += *c == '@';
    cap += strlen(text) + vars * 8;
    char *buf = realloc(*out, cap);
    if (!buf)
        return false;
    *out = buf;
    char *w = buf + have;
    if (have)
        w += sprintf(w, "%s", sep);
    bool quoted = false;
    for (const char *c = text; *c;) {
        if (*c == '\'')
            quoted = !quoted;
        if (quoted || *c != '@') {
            *w++ = *c++;
            continue;
        }
        if (c[1] == '@') { /* @@ROWCOUNT, @@TRANCOUNT */
            *w++ = *c++;
            *w++ = *c++;
            while (ident_char(*c))
                *w++ = *c++;
            continue;
        }
        *w++ = *c++;
        while (ident_char(*c))
            *w++ = *c++;
        w += sprintf(w, "_%zu", part);
    }
    *w = '\0';
    return true;
}

bool mssql_multi_add(mssql_multi *m, const mssql_params *p, const char *sql)
{
    if (m->nparts == MSSQL_MULTI_MAX || p->bad)
        return false;
    char *stmt = mssql_params_statement(p, sql);
    mssql_param *items = realloc(m->items, (m->n + p->n + 1) * sizeof *items);
    if (!stmt || !items) {
        free(stmt);
        if (items)
            m->items = items;
        return false;
    }
    m->items = items;
    size_t stmt_len = m->stmt ? strlen(m->stmt) : 0, decl_len = m->decl ? strlen(m->decl) : 0;
    bool ok = append_renamed(&m->stmt, "\n", stmt, m->nparts) &&
              (p->n == 0 || append_renamed(&m->decl, ", ", p->decl, m->nparts));
    free(stmt);
    for (size_t i = 0; ok && i < p->n; i++) {
        mssql_param *it = &m->items[m->n + i];
        *it = p->items[i];
        ok = snprintf(it->name, sizeof it->name, "%s_%zu", p->items[i].name, m->nparts) <
             (int)sizeof it->name;
    }
    if (!ok) { /* undo: cut the joined texts back */
        if (m->stmt)
            m->stmt[stmt_len] = '\0';
        if (m->decl)
            m->decl[decl_len] = '\0';
        return false;
    }
    m->n += p->n;
    m->nparts++;
    return true;
}

/* ---- statements ----------------------------------------------------------- */

/* Apply: one batch, one transaction (XACT_ABORT ON: any error rolls it
 * back). It reads the post's version WITH (UPDLOCK, HOLDLOCK), which on SQL
 * Server serialises appliers of the same post, then claims the next version
 * with a compare-and-set (INSERT for a new post, UPDATE ... WHERE Version =
 * @was otherwise) before touching Post or Comment, and reports the version
 * it found and whether it claimed. Babelfish accepts those hints but
 * ignores them, so the claim is what makes it safe there: a concurrent
 * UPDATE waits for the winner, then matches no row, and the batch re-reads
 * and reports the winner's version (a duplicate); two first INSERTs collide
 * on the primary key and the loser fails with Msg 2627 (rm_mssql.c retries
 * it once and sees the duplicate). Nothing is changed unless claimed. */
#define APPLY_HEAD                                                                        \
    "SET XACT_ABORT ON;\n"                                                               \
    "DECLARE @was bigint = -1, @claimed int = 0;\n"                                      \
    "BEGIN TRAN;\n"                                                                      \
    "SELECT @was = Version FROM dbo.PostVersion WITH (UPDLOCK, HOLDLOCK) WHERE PostId = @id;\n" \
    "IF @v = @was + 1\nBEGIN\n"                                                          \
    "  IF @was < 0 BEGIN\n"                                                              \
    "    INSERT INTO dbo.PostVersion (PostId, Version) VALUES (@id, @v);\n"              \
    "    SET @claimed = @@ROWCOUNT;\n"                                                   \
    "  END ELSE BEGIN\n"                                                                 \
    "    UPDATE dbo.PostVersion SET Version = @v WHERE PostId = @id AND Version = @was;\n" \
    "    SET @claimed = @@ROWCOUNT;\n"                                                   \
    "  END\n"                                                                            \
    "  IF @claimed = 1 BEGIN\n"
#define APPLY_TAIL                                                                        \
    "\n  END ELSE\n"                                                                     \
    "    SELECT @was = Version FROM dbo.PostVersion WHERE PostId = @id;\n"               \
    "END\nCOMMIT;\n"                                                                     \
    "SELECT @was AS Was, @claimed AS Claimed;"
/* Comment events move the post's version too; Post is written before
 * Comment in every batch, so appliers lock in the same order. */
#define TOUCH_POST "UPDATE dbo.Post SET Version = @v WHERE Id = @id;\n"

static const char *const apply_sql[SM_EV_TYPE_COUNT] = {
    [SM_EV_POST_CREATED] = APPLY_HEAD
    "INSERT INTO dbo.Post (Id, Author, Message, DatePosted, Likes, Version, AuthorId)"
    " VALUES (@id, @author, @message, @at, 0, @v, @author_id);" APPLY_TAIL,
    [SM_EV_MESSAGE_UPDATED] = APPLY_HEAD
    "UPDATE dbo.Post SET Message = @message, Version = @v WHERE Id = @id;" APPLY_TAIL,
    [SM_EV_POST_LIKED] = APPLY_HEAD
    "UPDATE dbo.Post SET Likes = Likes + 1, Version = @v WHERE Id = @id;" APPLY_TAIL,
    [SM_EV_COMMENT_ADDED] = APPLY_HEAD TOUCH_POST
    "INSERT INTO dbo.Comment (CommentId, PostId, Username, Comment, CommentDate, Edited, EditedAt,"
    " UserId) VALUES (@cid, @id, @username, @comment, @at, 0, NULL, @user_id);" APPLY_TAIL,
    [SM_EV_COMMENT_UPDATED] = APPLY_HEAD TOUCH_POST
    "UPDATE dbo.Comment SET Comment = @comment, Edited = 1, EditedAt = @at"
    " WHERE CommentId = @cid AND PostId = @id;" APPLY_TAIL,
    [SM_EV_COMMENT_REMOVED] = APPLY_HEAD TOUCH_POST
    "DELETE FROM dbo.Comment WHERE CommentId = @cid AND PostId = @id;" APPLY_TAIL,
    [SM_EV_POST_REMOVED] = APPLY_HEAD
    "DELETE FROM dbo.Post WHERE Id = @id;" APPLY_TAIL, /* comments: ON DELETE CASCADE */
};

/* Every text is sent, never NULL: an event without one stores ''. */
static const char *str(const char *s) { return s ? s : ""; }

/* Owner ids are the exception: none is SQL NULL, not ''. */
static const char *owner(const char *s) { return s && *s ? s : NULL; }

static void bind_event(mssql_params *p, const sm_event *ev)
{
    mssql_params_uuid(p, "@id", ev->aggregate_id);
    mssql_params_int64(p, "@v", ev->version);
    switch (ev->type) {
    case SM_EV_POST_CREATED:
        mssql_params_text(p, "@author", str(ev->author), 0);
        mssql_params_text(p, "@message", str(ev->message), 0);
        mssql_params_time(p, "@at", ev->at_ms);
        mssql_params_text(p, "@author_id", owner(ev->author_id), 0);
        break;
    case SM_EV_MESSAGE_UPDATED:
        mssql_params_text(p, "@message", str(ev->message), 0);
        break;
    case SM_EV_COMMENT_ADDED:
        mssql_params_uuid(p, "@cid", ev->comment_id);
        mssql_params_text(p, "@username", str(ev->username), 0);
        mssql_params_text(p, "@comment", str(ev->comment), 0);
        mssql_params_time(p, "@at", ev->at_ms);
        mssql_params_text(p, "@user_id", owner(ev->user_id), 0);
        break;
    case SM_EV_COMMENT_UPDATED:
        mssql_params_uuid(p, "@cid", ev->comment_id);
        mssql_params_text(p, "@comment", str(ev->comment), 0);
        mssql_params_time(p, "@at", ev->at_ms);
        break;
    case SM_EV_COMMENT_REMOVED:
        mssql_params_uuid(p, "@cid", ev->comment_id);
        break;
    default: /* liked, removed: the post id and version say it all */
        break;
    }
}

/* A run of likes on one post, versions @v .. @v + @n - 1, as one claim:
 * the same version rule as one like (the post must be at @v - 1), one
 * UPDATE for all of them. */
static const char like_run_sql[] =
    "SET XACT_ABORT ON;\n"
    "DECLARE @was bigint = -1, @claimed int = 0;\n"
    "BEGIN TRAN;\n"
    "SELECT @was = Version FROM dbo.PostVersion WITH (UPDLOCK, HOLDLOCK) WHERE PostId = @id;\n"
    "IF @was >= 0 AND @v = @was + 1\nBEGIN\n"
    "  UPDATE dbo.PostVersion SET Version = @v + @n - 1 WHERE PostId = @id AND Version = @was;\n"
    "  SET @claimed = @@ROWCOUNT;\n"
    "  IF @claimed = 1\n"
    "    UPDATE dbo.Post SET Likes = Likes + @n, Version = @v + @n - 1 WHERE Id = @id;\n"
    "  ELSE\n"
    "    SELECT @was = Version FROM dbo.PostVersion WHERE PostId = @id;\n"
    "END\nCOMMIT;\n"
    "SELECT @was AS Was, @claimed AS Claimed;";

const char *mssql_like_run_statement(const sm_event *first, int64_t n, mssql_params *p)
{
    mssql_params_uuid(p, "@id", first->aggregate_id);
    mssql_params_int64(p, "@v", first->version);
    mssql_params_int64(p, "@n", n);
    return like_run_sql;
}

const char *mssql_apply_statement(const sm_event *ev, mssql_params *p)
{
    if ((int)ev->type <= SM_EV_NONE || (int)ev->type >= SM_EV_TYPE_COUNT)
        return NULL;
    bind_event(p, ev);
    return apply_sql[ev->type];
}

/* Babelfish types a CASE without ELSE as varchar and turns non-Latin-1 text
 * into '?': the typed NULL keeps it nvarchar. */
#define NO_TEXT "CAST(NULL AS nvarchar(max))"
/* datetime2(3) to UTC milliseconds, exactly */
#define MS(col) "DATEDIFF_BIG(millisecond, CAST('1970-01-01' AS datetime2(3)), " col ")"

/* Queries: one statement (one snapshot on Babelfish, one statement's view
 * on SQL Server), so a page and its comments agree: the page of posts
 * outer-applied to their newest @climit comments (TOP, so each post's are
 * a seek on IX_Comment_PostId and a walk back from its end, not a read of
 * every comment the post has), one row per comment or one row for a post
 * without any (or with @climit 0); Cnt counts all of them, from the same
 * index. Rn numbers a post's rows; author and message come only on
 * row 1, so a post with many comments does not repeat its text. Ties break
 * on the id's text, the port's order: SQL Server sorts uniqueidentifier by
 * its last bytes first, Babelfish by its bytes. No temp table or table
 * variable: on Babelfish 4.2 creating one breaks the session's later
 * foreign key checks (relation "smpost_smpost_dbo.post" does not exist). */
#define PAGE_HEAD                                                                          \
    "WITH page AS (SELECT p.Id, p.Author, p.Message, p.DatePosted, p.Likes, p.Version,"    \
    " p.AuthorId FROM dbo.Post p "
#define PAGE_TAIL                                                                          \
    " ORDER BY p.DatePosted DESC, CONVERT(char(36), p.Id)"                                 \
    " OFFSET @offset ROWS FETCH NEXT @limit ROWS ONLY),\n"                                 \
    "r AS (SELECT g.*, (SELECT COUNT(*) FROM dbo.Comment n WHERE n.PostId = g.Id) AS Cnt," \
    " c.CommentId, c.Username, c.Comment, c.CommentDate, c.Edited, c.EditedAt, c.UserId,"  \
    " ROW_NUMBER() OVER (PARTITION BY g.Id"                                                \
    " ORDER BY c.CommentDate, CONVERT(char(36), c.CommentId)) AS Rn"                       \
    " FROM page g OUTER APPLY (SELECT TOP (@climit) x.* FROM dbo.Comment x"                \
    " WHERE x.PostId = g.Id"                                                               \
    " ORDER BY x.CommentDate DESC, CONVERT(char(36), x.CommentId) DESC) c)\n"              \
    "SELECT Id, Rn, CASE WHEN Rn = 1 THEN Author ELSE " NO_TEXT " END,"                    \
    " CASE WHEN Rn = 1 THEN Message ELSE " NO_TEXT " END, "                                  \
    MS("DatePosted") ", Likes, Version, CommentId, Username, Comment, " MS("CommentDate")  \
    ", Edited, " MS("EditedAt") ", CASE WHEN Rn = 1 THEN AuthorId ELSE " NO_TEXT " END,"   \
    " UserId, Cnt FROM r ORDER BY DatePosted DESC, CONVERT(char(36), Id), Rn;"

static const char *const query_sql[] = {
    [RM_Q_ALL] = PAGE_HEAD PAGE_TAIL,
    [RM_Q_BY_ID] = PAGE_HEAD "WHERE p.Id = @id" PAGE_TAIL,
    /* = under the column's CI collation ignores case, as the port says, but
     * also trailing spaces (SQL pads the shorter side with blanks), so
     * "alice " would find alice's posts; equal byte lengths keep it exact.
     * The = still lets IX_Post_Author be sought. */
    [RM_Q_BY_AUTHOR] = PAGE_HEAD
    "WHERE p.Author = @author AND DATALENGTH(p.Author) = DATALENGTH(@author)" PAGE_TAIL,
    [RM_Q_WITH_COMMENTS] = PAGE_HEAD
    "WHERE EXISTS (SELECT 1 FROM dbo.Comment x WHERE x.PostId = p.Id)" PAGE_TAIL,
    [RM_Q_WITH_LIKES] = PAGE_HEAD "WHERE p.Likes >= @min_likes" PAGE_TAIL,
};

/* After the post (@after_at, @after_id) in the page's order (page_cursor.h).
 * The first term is a range on IX_Post_Order's first column (or
 * IX_Post_AuthorPage's second, after the author's =), so the page starts
 * with a seek whatever its depth; the second sorts out the posts of the
 * same millisecond by the id's text, the very expression the ORDER BY
 * uses, on both sides, so the two agree in any collation. That expression
 * is not the index's order: Babelfish (PostgreSQL 16) reads the index in
 * date order and sorts only within each millisecond (incremental sort), so
 * a deep cursor page costs what the first does (docs/performance.md); SQL
 * Server proper has no such sort and may sort every row the seek reaches,
 * which only an index on the id's text (a persisted computed column) would
 * avoid. Not measured there. */
#define AFTER                                                                              \
    "p.DatePosted <= @after_at AND (p.DatePosted < @after_at OR CONVERT(char(36), p.Id)"   \
    " > CONVERT(char(36), CONVERT(uniqueidentifier, @after_id)))"

static const char *const after_sql[] = {
    [RM_Q_ALL] = PAGE_HEAD "WHERE " AFTER PAGE_TAIL,
    [RM_Q_BY_ID] = PAGE_HEAD "WHERE p.Id = @id AND " AFTER PAGE_TAIL,
    [RM_Q_BY_AUTHOR] = PAGE_HEAD "WHERE p.Author = @author AND DATALENGTH(p.Author) ="
    " DATALENGTH(@author) AND " AFTER PAGE_TAIL,
    [RM_Q_WITH_COMMENTS] = PAGE_HEAD
    "WHERE EXISTS (SELECT 1 FROM dbo.Comment x WHERE x.PostId = p.Id) AND " AFTER PAGE_TAIL,
    [RM_Q_WITH_LIKES] = PAGE_HEAD "WHERE p.Likes >= @min_likes AND " AFTER PAGE_TAIL,
};

const char *mssql_query_statement(const rm_query *q, mssql_params *p)
{
    if ((int)q->kind < RM_Q_ALL || (int)q->kind > RM_Q_WITH_LIKES)
        return NULL;
    mssql_params_int64(p, "@offset", q->offset);
    mssql_params_int64(p, "@limit", q->limit);
    mssql_params_int64(p, "@climit", q->comments_capped ? q->comments_limit : INT64_MAX);
    if (q->kind == RM_Q_BY_ID)
        mssql_params_uuid(p, "@id", q->id);
    else if (q->kind == RM_Q_BY_AUTHOR) /* bounded, so IX_Post_Author can be sought */
        mssql_params_text(p, "@author", q->author, 4000);
    else if (q->kind == RM_Q_WITH_LIKES)
        mssql_params_int64(p, "@min_likes", q->min_likes);
    if (!q->after_id)
        return query_sql[q->kind];
    mssql_params_time(p, "@after_at", q->after_date_ms);
    mssql_params_uuid(p, "@after_id", q->after_id);
    return after_sql[q->kind];
}

/* A comment page: the post (one row whatever its comments, none if it
 * does not exist) outer-applied to its comments after the cursor, in the
 * columns of a list page so that the same reader takes them. The first
 * term of the cursor's condition is a range on IX_Comment_PostId's second
 * column after the post's =; the second sorts out one millisecond's
 * comments by the id's text, the expression both ORDER BYs use. */
#define COMMENT_PAGE_HEAD                                                                  \
    "SELECT p.Id, ROW_NUMBER() OVER (ORDER BY c.CommentDate,"                              \
    " CONVERT(char(36), c.CommentId)) AS Rn, " NO_TEXT ", " NO_TEXT ", 0, 0, 0,"           \
    " c.CommentId, c.Username, c.Comment, " MS("c.CommentDate") ", c.Edited, "             \
    MS("c.EditedAt") ", " NO_TEXT ", c.UserId, 0"                                          \
    " FROM dbo.Post p OUTER APPLY (SELECT TOP (@limit) x.* FROM dbo.Comment x"             \
    " WHERE x.PostId = p.Id"
#define COMMENT_PAGE_TAIL                                                                  \
    " ORDER BY x.CommentDate, CONVERT(char(36), x.CommentId)) c WHERE p.Id = @id"          \
    " ORDER BY Rn;"
#define COMMENT_AFTER                                                                      \
    " AND x.CommentDate >= @after_at AND (x.CommentDate > @after_at OR"                    \
    " CONVERT(char(36), x.CommentId) > CONVERT(char(36), CONVERT(uniqueidentifier,"        \
    " @after_id)))"

const char *mssql_comment_page_statement(const rm_comment_query *q, mssql_params *p)
{
    mssql_params_uuid(p, "@id", q->post_id);
    mssql_params_int64(p, "@limit", q->limit);
    if (!q->after_id)
        return COMMENT_PAGE_HEAD COMMENT_PAGE_TAIL;
    mssql_params_time(p, "@after_at", q->after_date_ms);
    mssql_params_uuid(p, "@after_id", q->after_id);
    return COMMENT_PAGE_HEAD COMMENT_AFTER COMMENT_PAGE_TAIL;
}

const char *mssql_version_statement(const char *post_id, mssql_params *p)
{
    mssql_params_uuid(p, "@id", post_id);
    return "SELECT Version FROM dbo.PostVersion WHERE PostId = @id;";
}

/* ---- the connection string --------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* FreeTDS reads a freetds.conf value up to ';' or '#', folds runs of
 * blanks into one and reads at most 255 bytes a line: a value that would
 * come back different is refused rather than written. */
static bool conf_value_ok(const char *v)
{
    for (const char *c = v; *c; c++)
        if (*c == ';' || *c == '#' || (unsigned char)*c < 0x20 || *c == 0x7f ||
            (*c == ' ' && c[1] == ' '))
            return false;
    return true;
}

/* Copies val into dst (cap bytes); false if it does not fit. */
static bool set_field(char *dst, size_t cap, const char *val)
{
    size_t n = strlen(val);
    if (n >= cap)
        return false;
    memcpy(dst, val, n + 1);
    return true;
}

/* One "key=value" pair; false (with why) if the value is unusable. */
static bool conninfo_pair(mssql_conninfo *ci, char *pair, bool *encrypt, char *why,
                          size_t why_len)
{
    char *eq = strchr(pair, '=');
    if (!eq)
        return true; /* not a pair: ignored like an unknown key */
    *eq = '\0';
    const char *key = trim(pair);
    char *val = trim(eq + 1);
    bool ok = true;
    if (!strcasecmp(key, "host"))
        ok = set_field(ci->host, sizeof ci->host, val);
    else if (!strcasecmp(key, "user"))
        ok = set_field(ci->user, sizeof ci->user, val);
    else if (!strcasecmp(key, "password"))
        ok = set_field(ci->password, sizeof ci->password, val);
    else if (!strcasecmp(key, "database"))
        ok = set_field(ci->database, sizeof ci->database, val);
    else if (!strcasecmp(key, "ca"))
        ok = set_field(ci->ca, sizeof ci->ca, val);
    else if (!strcasecmp(key, "encrypt")) {
        if (strcasecmp(val, "require") != 0) {
            snprintf(why, why_len, "encrypt must be require (or left out)");
            return false;
        }
        *encrypt = true;
    } else if (!strcasecmp(key, "port")) {
        bool digits = *val && strspn(val, "0123456789") == strlen(val) && strlen(val) <= 5;
        ci->port = digits ? atoi(val) : -1;
    }
    if (!ok)
        snprintf(why, why_len, "%s is too long", key);
    return ok;
}

bool mssql_conninfo_parse(const char *conn, mssql_conninfo *ci, char *why, size_t why_len)
{
    memset(ci, 0, sizeof *ci);
    ci->port = 1433;
    char *copy = strdup(conn ? conn : "");
    if (!copy) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    bool ok = true, encrypt = false;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); ok && tok; tok = strtok_r(NULL, ";", &save))
        ok = conninfo_pair(ci, tok, &encrypt, why, why_len);
    explicit_bzero(copy, strlen(conn ? conn : "")); /* it held the password */
    free(copy);
    if (ok && (!*ci->host || !*ci->user || !*ci->password || !*ci->database)) {
        snprintf(why, why_len, "the connection string needs host, user, password and database");
        ok = false;
    }
    if (ok && (ci->port < 1 || ci->port > 65535)) {
        snprintf(why, why_len, "port must be a number from 1 to 65535");
        ok = false;
    }
    if (ok && encrypt && !*ci->ca) {
        snprintf(why, why_len,
                 "encrypt=require needs the CA file (ca=PATH or SMPOST_MSSQL_TLS_CA)");
        ok = false;
    }
    if (ok && *ci->ca && !conf_value_ok(ci->ca)) {
        snprintf(why, why_len,
                 "the CA file's path (SMPOST_MSSQL_TLS_CA or ca=) holds '#', ';', a control"
                 " character or two blanks in a row, which freetds.conf cannot carry");
        ok = false;
    }
    if (ok && *ci->ca && !conf_value_ok(ci->host)) {
        snprintf(why, why_len, "host holds a character freetds.conf cannot carry");
        ok = false;
    }
    return ok;
}

bool mssql_freetds_conf(const mssql_conninfo *ci, const char *section, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "; written by query-api (rm_mssql.c) for the SQL Server read model\n"
                     "[%s]\n"
                     "\thost = %s\n"
                     "\tport = %d\n"
                     "\ttds version = 7.4\n"
                     "\tencryption = require\n"
                     "\tca file = %s\n"
                     "\tcheck certificate hostname = yes\n",
                     section, ci->host, ci->port, ci->ca);
    return n > 0 && (size_t)n < cap;
}
