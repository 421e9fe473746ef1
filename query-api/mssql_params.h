/* SPDX-License-Identifier: Apache-2.0 */
/* mssql_params.h — what the SQL Server read model (rm_mssql.c) sends to the
 * server, built without one so that it can be unit-tested
 * (tests/unit/test_mssql_params.c): the T-SQL statement for each event and
 * query with its typed parameters bound, and the login fields read from the
 * connection string. rm_mssql.c only carries them over the wire.
 *
 * Every value reaches SQL Server as a parameter, never as SQL text. A call
 * is sp_executesql(@stmt, @params, @p1, @p2, ...): @params is the
 * declaration built here ("@id nvarchar(36), @v bigint, ...") from the same
 * list as the values, so the two cannot disagree; @stmt is one of the fixed
 * statements below, preceded at most by a prologue built from parameter
 * names.
 *
 * How each kind of value travels (the db-lib type given to dbrpcparam):
 *   text  SYBNTEXT, UTF-8 in the buffer; FreeTDS converts it to UTF-16 and
 *         sends nvarchar(max). SYBVARCHAR would go in the server's code page
 *         (CP1252): characters outside it fail once the text is over 4000
 *         bytes, and anything over 8000 bytes is silently cut to 8000.
 *   int64 SYBINT8, 8 bytes in host order.
 *   time  SYBVARCHAR holding "YYYY-MM-DDTHH:MM:SS.mmm" (UTC, no zone),
 *         declared datetime2(3): the ISO form converts the same whatever
 *         the session's language or DATEFORMAT, and keeps milliseconds.
 *   uuid  SYBVARCHAR holding the canonical 36 characters, declared
 *         nvarchar(36); the statements compare and insert it into
 *         uniqueidentifier columns, which converts it implicitly (on SQL
 *         Server the parameter side is converted, so index seeks remain).
 *         Not declared uniqueidentifier because Babelfish 4.2 then keeps a
 *         dangling pointer to the converted value: after a `SELECT @x = ...`
 *         in the batch, @id reads as garbage such as
 *         480DF902-0A56-0000-0000-000000000000 and the statements after it
 *         silently match no row.
 *
 * db-lib sends a parameter with datalen 0 as NULL, so an empty string
 * cannot be sent as such: an empty text is sent as NULL and restored by a
 * prologue, "SET @name = N'';", that mssql_params_statement() puts before
 * the statement.
 *
 * A mssql_params is a plain value on the caller's stack; text values are
 * borrowed and must outlive the call. Nothing here is shared between
 * threads; the statements are constants. */
#ifndef MSSQL_PARAMS_H
#define MSSQL_PARAMS_H

#include "read_model.h"
#include "sm_event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSSQL_PARAMS_MAX 10
#define MSSQL_PARAM_NAME_MAX 32 /* including '@' and NUL */
#define MSSQL_DECL_MAX 512
#define MSSQL_TIME_LEN 23       /* "YYYY-MM-DDTHH:MM:SS.mmm" */

/* ---- typed parameters -------------------------------------------------- */

typedef enum { MSSQL_P_TEXT, MSSQL_P_INT64, MSSQL_P_TIME, MSSQL_P_UUID } mssql_param_kind;

typedef struct mssql_param {
    char name[MSSQL_PARAM_NAME_MAX]; /* "@author" */
    mssql_param_kind kind;
    int type;          /* db-lib type given to dbrpcparam (SYBNTEXT, SYBINT8, SYBVARCHAR) */
    bool is_null;      /* sent as SQL NULL (len 0) */
    int len;           /* bytes sent; 0 for NULL */
    const char *text;  /* MSSQL_P_TEXT: borrowed UTF-8 */
    int64_t i64;       /* MSSQL_P_INT64 */
    char ascii[40];    /* MSSQL_P_TIME, MSSQL_P_UUID: the text sent */
} mssql_param;

typedef struct mssql_params {
    mssql_param items[MSSQL_PARAMS_MAX];
    size_t n;
    char decl[MSSQL_DECL_MAX];     /* the @params argument */
    char prologue[MSSQL_DECL_MAX]; /* "SET @x = N'';" for each empty text */
    bool bad;                      /* a value or name was refused; see why */
    char why[128];
} mssql_params;

void mssql_params_init(mssql_params *p);

/* A text parameter declared nvarchar(max_chars) for 1..4000, else
 * nvarchar(max). Values written to columns use nvarchar(max), so that an
 * over-long value fails on the column instead of being cut silently by the
 * parameter's declared size. NULL value: SQL NULL. */
void mssql_params_text(mssql_params *p, const char *name, const char *utf8, int max_chars);

void mssql_params_int64(mssql_params *p, const char *name, int64_t v);

/* datetime2(3) from UTC milliseconds since the epoch (clamped to
 * 0001..9999 like sm_time_format); mssql_params_null_time sends NULL. */
void mssql_params_time(mssql_params *p, const char *name, int64_t ms);
void mssql_params_null_time(mssql_params *p, const char *name);

/* A UUID for uniqueidentifier columns (declared nvarchar(36), see above);
 * any form sm_uuid_parse accepts, sent canonical (lower case). Anything
 * else marks the list bad ("@id is not a UUID"). */
void mssql_params_uuid(mssql_params *p, const char *name, const char *uuid);

/* False if any add was refused (too many parameters, bad name, bad UUID,
 * text over INT32_MAX bytes); p->why says which (the first). */
bool mssql_params_ok(const mssql_params *p);

/* The buffer dbrpcparam should send for item (NULL for SQL NULL). Computed
 * on demand, so a copied mssql_params stays valid. */
const void *mssql_param_value(const mssql_param *item);

/* prologue + sql as a new string (caller frees), or NULL on OOM. */
char *mssql_params_statement(const mssql_params *p, const char *sql);

/* ms as "YYYY-MM-DDTHH:MM:SS.mmm" (UTC, no zone), the datetime2(3) text. */
void mssql_time_format(int64_t ms, char out[MSSQL_TIME_LEN + 1]);

/* ---- the read model's statements ---------------------------------------- */

/* The batch that applies ev in one transaction, with ev's values bound
 * into p (initialised by the caller); NULL for an unknown event type. It
 * returns one row: Was (bigint, the post's version before: -1 if never
 * seen) and Claimed (1 if this batch applied ev). Check mssql_params_ok. */
const char *mssql_apply_statement(const sm_event *ev, mssql_params *p);

/* The batch that applies n likes of one post at once: first's version
 * and the n - 1 after it, all PostLikedEvent (the caller checks). One row
 * as above: Claimed 1 if it applied all n (the post was at first's version
 * - 1), else nothing changed and Was tells why (duplicates, a gap, or
 * another applier in between). */
const char *mssql_like_run_statement(const sm_event *first, int64_t n, mssql_params *p);

/* ---- several apply batches in one call ----------------------------------- */

/* Apply batches joined into one sp_executesql, so that a batch of events
 * costs one round trip instead of one per event. Each part keeps its own
 * statement, prologue and values; every variable and parameter of part i
 * is renamed @name_i (@@functions are left alone), so the parts cannot see
 * each other's, and part i's one-row result set is the call's i-th. With
 * XACT_ABORT the first failing part ends the call: the result sets read
 * before it tell which part failed. Parameters: at most MSSQL_MULTI_MAX
 * parts of MSSQL_PARAMS_MAX each, under SQL Server's 2,100 per call. */
#define MSSQL_MULTI_MAX 64

typedef struct mssql_multi {
    char *stmt;          /* the joined statements */
    char *decl;          /* the joined declarations */
    mssql_param *items;  /* copies with renamed names; values as before */
    size_t n, nparts;
} mssql_multi;

void mssql_multi_init(mssql_multi *m);
/* Adds one apply batch (sql and p as from mssql_apply_statement, p ok) as
 * the next part. False on OOM or when the call is full (nparts ==
 * MSSQL_MULTI_MAX); m is unchanged then. */
bool mssql_multi_add(mssql_multi *m, const mssql_params *p, const char *sql);
void mssql_multi_free(mssql_multi *m);

/* The page of posts q asks for, with its comments, q's values bound into
 * p (with q->after_id, also @after_at and @after_id: a keyset page that
 * starts with an index seek; @climit: the newest comments each post
 * carries, INT64_MAX when q does not cap them); NULL for an unknown kind.
 * One row per comment, or one row for a post without any, in page order;
 * the columns are numbered below (db-lib counts from 1). Author, message
 * and the author's id are NULL except on a post's row 1; the owner ids are
 * NULL too when none was recorded. COMMENT_COUNT is the post's number of
 * comments, on every row. */
const char *mssql_query_statement(const rm_query *q, mssql_params *p);

enum {
    MSSQL_COL_ID = 1, MSSQL_COL_ROW, MSSQL_COL_AUTHOR, MSSQL_COL_MESSAGE,
    MSSQL_COL_DATE_POSTED, MSSQL_COL_LIKES, MSSQL_COL_VERSION, MSSQL_COL_COMMENT_ID,
    MSSQL_COL_USERNAME, MSSQL_COL_COMMENT, MSSQL_COL_COMMENT_DATE, MSSQL_COL_EDITED,
    MSSQL_COL_EDITED_AT, MSSQL_COL_AUTHOR_ID, MSSQL_COL_USER_ID, MSSQL_COL_COMMENT_COUNT
};

/* The comment page q asks for, in the same columns (the post's own are
 * NULL or 0 but its id): no row if the post does not exist, one row with a
 * NULL comment id if it has no comment on this page, else one per comment
 * in page order, Rn from 1. */
const char *mssql_comment_page_statement(const rm_comment_query *q, mssql_params *p);

/* A post's last applied version: one row (Version) or none. */
const char *mssql_version_statement(const char *post_id, mssql_params *p);

/* ---- the connection string ---------------------------------------------- */

/* The part of the read model URL after "mssql:", in the form babelfish.sh
 * prints: "host=127.0.0.1;port=14330;user=u;password=p;database=d". Keys in
 * any case, unknown keys ignored, blanks around keys and values dropped; no
 * quoting, so a value cannot hold ';'. Port defaults to 1433.
 *
 * TLS: "ca=PATH" (query-api's SMPOST_MSSQL_TLS_CA appends it) requires an
 * encrypted session whose certificate chains to the CA in PATH (PEM) and
 * names the host as given (a DNS name or IP address in its subjectAltName).
 * "encrypt=require" may be written too, and is refused without ca= (FreeTDS
 * would encrypt without checking the certificate). Without ca= nothing
 * changes: FreeTDS's default applies (see mssql_freetds_conf). */
#define MSSQL_CA_MAX 200 /* freetds.conf lines are read in 256-byte buffers */

typedef struct mssql_conninfo {
    char host[256];
    int port;
    char user[129];     /* SQL Server names are at most 128 characters */
    char password[129];
    char database[129];
    char ca[MSSQL_CA_MAX + 1]; /* "" unless TLS is required */
} mssql_conninfo;

/* Fills ci; false if host, user, password or database is missing, a value
 * is too long, the port is not 1..65535, encrypt is not "require" or comes
 * without ca, or ca or host holds what freetds.conf cannot carry ('#', ';',
 * a control character, two blanks in a row) (why says which; it never
 * quotes a value). */
bool mssql_conninfo_parse(const char *conn, mssql_conninfo *ci, char *why, size_t why_len);

/* The freetds.conf text that makes db-lib connect to ci's server under the
 * name `section` with TLS required (ci->ca set): host, port, TDS 7.4,
 * "encryption = require", "ca file" and "check certificate hostname = yes".
 * It holds no user or password (those go in the login record). Without
 * this file FreeTDS 1.3 uses its default, "encryption = request": TLS only
 * if the server offers it, and no certificate check (no CA file).
 * False if it does not fit in cap bytes. */
bool mssql_freetds_conf(const mssql_conninfo *ci, const char *section, char *out, size_t cap);

#endif
