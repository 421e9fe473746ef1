/* SPDX-License-Identifier: Apache-2.0 */
/* rm_mssql.c — the SQL Server read model adapter, through FreeTDS db-lib.
 *
 * db-lib rather than ct-lib: its RPC interface is three calls
 * (dbrpcinit/dbrpcparam/dbrpcsend) and the client charset goes in the
 * login record (UTF-8), whereas ct-lib only honours `client charset` from
 * freetds.conf, a file outside the binary, and turns non-ASCII into '?'
 * without it. Every statement that carries a value is one RPC to
 * sp_executesql with typed parameters (mssql_params.c says how each value
 * travels); only fixed SQL (session settings, the schema, a rollback) goes
 * as a plain batch, and no user data is ever part of SQL text.
 *
 * The statements and their parameters live in mssql_params.c, which also
 * says why they look as they do: one batch and one transaction per event,
 * its version claimed by compare-and-set (safe on Babelfish, which ignores
 * the UPDLOCK/HOLDLOCK hints SQL Server honours); one statement per page
 * of posts with their comments. This file carries them over the wire and
 * reads the rows back.
 *
 * Threads: a DBPROCESS must not be used by two threads at once, so the
 * store keeps MSSQL_POOL_SIZE of them, opened lazily, and lends one per
 * call. db-lib's error and message handlers are process-wide; they record
 * the first error of the current call in the connection's diag, found
 * through dbsetuserdata. A connection found dead is dropped and the call
 * runs once more on a new one (everything here is idempotent or rolled
 * back); a server that is down fails fast with SM_ERR_UNAVAILABLE (login
 * timeout 5 s, query timeout 10 s, lock timeout 5 s). A call that finds
 * every connection lent waits no longer than a lock is waited for, nor past
 * the calling thread's deadline (sm_deadline.h), then fails with
 * SM_ERR_UNAVAILABLE.
 *
 * TLS (ca= in the connection string, SMPOST_MSSQL_TLS_CA): db-lib 1.3
 * ignores DBSETLENCRYPT; encryption is a property of a server entry in a
 * freetds.conf. So the store writes its own, a section named smpost_rm_N
 * in TMPDIR/smpost-freetds-XXXXXX/freetds.conf (directory 0700, file 0600,
 * no user or password: those stay in the login record; removed on close),
 * and opens its connections by that name with the file set as db-lib's
 * interfaces file (dbsetifile), which FreeTDS reads first, before
 * FREETDSCONF and ~/.freetds.conf. That setting is process-wide, so TLS
 * logins take a lock around dbsetifile + dbopen, and once one has, so do
 * the others (FreeTDS reads the file's name in every dbopen). A CA file that cannot be
 * read, a server that does not encrypt and a certificate that does not
 * chain to the CA or name the host all fail rm_mssql_open with
 * SM_ERR_INVALID (a start-up error, not retried); a server that refuses
 * the TCP connection stays SM_ERR_UNAVAILABLE. */
#include "read_model.h"

#include "mssql_params.h"
#include "sm_deadline.h"
#include "sm_log.h"
#include "sm_time.h"
#include "sm_uuid.h"

#include <sybfront.h>
#include <sybdb.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char sm_sql_read_model_mssql[]; /* sql/read_model.mssql.sql */

#define MSSQL_POOL_SIZE 8
#define MSSQL_LOGIN_TIMEOUT_S 5
#define MSSQL_QUERY_TIMEOUT_S 10
#define MSSQL_LOCK_TIMEOUT_MS 5000
#define MSSQL_STR_(x) #x
#define MSSQL_STR(x) MSSQL_STR_(x)

/* Per session: XACT_ABORT so an error anywhere in a batch rolls back its
 * transaction; a lock timeout shorter than the client's query timeout, so
 * a lock wait ends as a server error on a live connection instead of a
 * client timeout that kills it; TEXTSIZE so nvarchar(max) is never cut. */
static const char session_sql[] =
    "SET XACT_ABORT ON; SET NOCOUNT ON; SET LOCK_TIMEOUT " MSSQL_STR(MSSQL_LOCK_TIMEOUT_MS)
    "; SET TEXTSIZE 2147483647;";

/* The first error of the call in progress, written by the handlers. */
typedef struct mssql_diag {
    int msgno;            /* server error (severity > 10), 0 if none */
    int dberr;            /* db-lib error, 0 if none */
    bool dead;            /* the connection broke or timed out */
    bool timed_out;       /* no reply within MSSQL_QUERY_TIMEOUT_S */
    bool raced;           /* another applier moved a post under a batch */
    bool tcp_up;          /* a failed login got past the TCP connect */
    char server_text[200];
    char dblib_text[200];
} mssql_diag;

typedef struct mssql_conn {
    DBPROCESS *db; /* NULL until connected, and after being dropped */
    mssql_diag diag;
} mssql_conn;

typedef struct rm_mssql {
    mssql_conninfo ci;
    char server[300]; /* "host:port", as logs and errors name it */
    char dbname[300]; /* what dbopen() takes: server, or the freetds.conf section */
    char conf_dir[256]; /* TLS: the private freetds.conf's directory, else "" */
    char conf_path[300];
    pthread_mutex_t lock;
    pthread_cond_t freed;
    mssql_conn conns[MSSQL_POOL_SIZE];
    bool busy[MSSQL_POOL_SIZE];
} rm_mssql;

/* ---- db-lib setup and handlers ---------------------------------------- */

/* During dbopen() the DBPROCESS has no user data yet, so the connecting
 * thread points this at the diag of the slot it is filling. */
static _Thread_local mssql_diag *login_diag;

/* dbsetifile is process-wide: held from it to the end of dbopen */
static pthread_mutex_t ifile_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool ifile_used;

static pthread_once_t dblib_once = PTHREAD_ONCE_INIT;
static bool dblib_ready;

static mssql_diag *diag_of(DBPROCESS *db)
{
    mssql_diag *d = db ? (mssql_diag *)dbgetuserdata(db) : NULL;
    return d ? d : login_diag;
}

static int on_dblib_error(DBPROCESS *db, int severity, int dberr, int oserr, char *text,
                          char *ostext)
{
    char q[256];
    sm_log(SM_LOG_DEBUG, "mssql_dblib_error", "dberr=%d severity=%d oserr=%d text=%s", dberr,
           severity, oserr, sm_log_quote(text ? text : "", q, sizeof q));
    mssql_diag *d = diag_of(db);
    if (!d)
        return INT_CANCEL;
    /* a timeout leaves the session mid-request: treat it as broken too */
    if (dberr == SYBETIME || dberr == SYBESEOF || dberr == SYBEREAD || dberr == SYBEWRIT ||
        dberr == SYBEDDNE || (db && DBDEAD(db)))
        d->dead = true;
    if (dberr == SYBETIME)
        d->timed_out = true;
    /* SYBEFCON, "connection failed" (SYBECONN is a refused TCP connect): what a
     * failed TLS handshake or a server that will not encrypt gives */
    if (dberr == SYBEFCON)
        d->tcp_up = true;
    if (dberr != SYBESMSG && !d->dberr) { /* SYBESMSG only says "see the server message" */
        bool os = oserr > 0 && ostext && *ostext;
        d->dberr = dberr;
        snprintf(d->dblib_text, sizeof d->dblib_text, "%s%s%s", text ? text : "db-lib error",
                 os ? ": " : "", os ? ostext : "");
    }
    return INT_CANCEL; /* fail the db-lib call; never exit the process */
}

static int on_server_message(DBPROCESS *db, DBINT msgno, int state, int severity, char *text,
                             char *server, char *proc, int line)
{
    char q[256];
    sm_log(SM_LOG_DEBUG, "mssql_server_message", "msgno=%d severity=%d state=%d text=%s",
           (int)msgno, severity, state, sm_log_quote(text ? text : "", q, sizeof q));
    mssql_diag *d = diag_of(db);
    if (severity > 10 && d && !d->msgno) { /* 10 and below: "changed database context"... */
        d->msgno = (int)msgno;
        snprintf(d->server_text, sizeof d->server_text, "Msg %d: %s", (int)msgno,
                 text ? text : "");
    }
    return 0;
}

static void dblib_init(void)
{
    if (dbinit() == FAIL)
        return;
    dberrhandle(on_dblib_error);
    dbmsghandle(on_server_message);
    dbsetlogintime(MSSQL_LOGIN_TIMEOUT_S);
    dbsettime(MSSQL_QUERY_TIMEOUT_S);
    dblib_ready = true;
}

static const char *diag_text(const mssql_diag *d)
{
    if (d->msgno)
        return d->server_text;
    return d->dberr ? d->dblib_text : "no reply";
}

static sm_status oom(sm_error *err)
{
    return sm_fail(err, SM_ERR_INTERNAL, "read model (mssql): out of memory");
}

/* ---- connections and the pool ----------------------------------------- */

static void conn_close(mssql_conn *c)
{
    if (c->db)
        dbclose(c->db);
    c->db = NULL;
}

/* Runs SQL without parameters (session settings, schema, rollback) and
 * drains its results; false if anything failed. */
static bool exec_plain(mssql_conn *c, const char *sql)
{
    memset(&c->diag, 0, sizeof c->diag);
    if (dbcmd(c->db, sql) == FAIL || dbsqlexec(c->db) == FAIL) {
        if (!DBDEAD(c->db))
            dbcancel(c->db);
        return false;
    }
    RETCODE rc;
    while ((rc = dbresults(c->db)) == SUCCEED)
        while (dbnextrow(c->db) == REG_ROW)
            ;
    if (rc == FAIL && !DBDEAD(c->db))
        dbcancel(c->db);
    return rc == NO_MORE_RESULTS && !c->diag.msgno && !c->diag.dberr;
}

static sm_status conn_open(rm_mssql *s, mssql_conn *c, sm_error *err)
{
    memset(&c->diag, 0, sizeof c->diag);
    LOGINREC *login = dblogin();
    if (!login)
        return oom(err);
    DBSETLUSER(login, s->ci.user);
    DBSETLPWD(login, s->ci.password);
    DBSETLDBNAME(login, s->ci.database);
    DBSETLAPP(login, "smpost-query-api");
    DBSETLCHARSET(login, "UTF-8"); /* what FreeTDS converts nvarchar to and from */
    DBSETLVERSION(login, DBVERSION_74);
    login_diag = &c->diag;
    /* once a file was set, every login reads it: all take the lock */
    bool lock = *s->conf_path || atomic_load(&ifile_used);
    if (lock)
        pthread_mutex_lock(&ifile_lock);
    if (*s->conf_path) {
        atomic_store(&ifile_used, true);
        dbsetifile(s->conf_path);
    }
    c->db = dbopen(login, s->dbname);
    if (lock)
        pthread_mutex_unlock(&ifile_lock);
    login_diag = NULL;
    dbloginfree(login);
    if (!c->db && *s->conf_path && c->diag.tcp_up)
        /* connected, then no encrypted session: no TLS on the server, or a
         * certificate that does not chain to the CA or name the host */
        return sm_fail(err, SM_ERR_INVALID,
                       "read model (mssql): no TLS session with %s that the CA file of"
                       " SMPOST_MSSQL_TLS_CA (ca= in SMPOST_READ_MODEL) verifies for host %s"
                       " (the server must encrypt, its certificate chain to that CA and name"
                       " that host): %s",
                       s->server, s->ci.host, diag_text(&c->diag));
    /* a refused login (wrong password, database not created yet) is
     * reported as unavailable too: in a compose start-up it is transient */
    if (!c->db)
        return sm_fail(err, SM_ERR_UNAVAILABLE, "read model (mssql) cannot connect to %s: %s",
                       s->server, diag_text(&c->diag));
    dbsetuserdata(c->db, (BYTE *)&c->diag);
    if (!exec_plain(c, session_sql)) {
        sm_fail(err, SM_ERR_UNAVAILABLE, "read model (mssql) session setup on %s failed: %s",
                s->server, diag_text(&c->diag));
        conn_close(c);
        return SM_ERR_UNAVAILABLE;
    }
    return SM_OK;
}

/* Lends a connection. With every one lent (each may be waiting out a
 * lock), waits no longer than a lock would be waited for, nor past the
 * calling thread's deadline: NULL and SM_ERR_UNAVAILABLE then. */
static mssql_conn *checkout(rm_mssql *s, sm_error *err)
{
    int64_t until = sm_deadline_cap(sm_mono_ms() + MSSQL_LOCK_TIMEOUT_MS);
    pthread_mutex_lock(&s->lock);
    int i;
    for (;;) {
        for (i = 0; i < MSSQL_POOL_SIZE && s->busy[i]; i++)
            ;
        if (i < MSSQL_POOL_SIZE)
            break;
        if (sm_cond_wait_until(&s->freed, &s->lock, until) == ETIMEDOUT) {
            pthread_mutex_unlock(&s->lock);
            sm_fail(err, SM_ERR_UNAVAILABLE, "read model (mssql): every connection is busy");
            return NULL;
        }
    }
    s->busy[i] = true;
    pthread_mutex_unlock(&s->lock);
    return &s->conns[i];
}

static void checkin(rm_mssql *s, mssql_conn *c)
{
    pthread_mutex_lock(&s->lock);
    s->busy[c - s->conns] = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

/* ---- one RPC ------------------------------------------------------------ */

/* Called for each row of each result set that has columns (set 0, 1...). */
typedef sm_status (*row_fn)(DBPROCESS *db, int set, void *arg, sm_error *err);

static bool rpc_param(DBPROCESS *db, const char *name, int type, int len, const void *value)
{
    /* db-lib copies the value at dbrpcsend; it never writes through it */
    return dbrpcparam(db, name, 0, type, -1, len, (BYTE *)value) == SUCCEED;
}

static bool send_rpc_items(DBPROCESS *db, const char *stmt, const char *decl,
                           const mssql_param *items, size_t n)
{
    if (dbrpcinit(db, "sp_executesql", 0) == FAIL)
        return false;
    bool ok = rpc_param(db, "@stmt", SYBNTEXT, (int)strlen(stmt), stmt);
    if (ok && n)
        ok = rpc_param(db, "@params", SYBNTEXT, (int)strlen(decl), decl);
    for (size_t i = 0; ok && i < n; i++)
        ok = rpc_param(db, items[i].name, items[i].type, items[i].len,
                       mssql_param_value(&items[i]));
    if (!ok) {
        dbrpcinit(db, "", DBRPCRESET);
        return false;
    }
    return dbrpcsend(db) == SUCCEED && dbsqlok(db) == SUCCEED;
}

static bool send_rpc(DBPROCESS *db, const char *stmt, const mssql_params *p)
{
    return send_rpc_items(db, stmt, p->decl, p->items, p->n);
}

/* Reads every result set; stops at the first failure (with XACT_ABORT a
 * failed statement ends the batch anyway). *st is the row callback's. */
static bool read_results(DBPROCESS *db, row_fn on_row, void *arg, sm_status *st, sm_error *err)
{
    int set = 0;
    RETCODE rc;
    while ((rc = dbresults(db)) == SUCCEED) {
        if (dbnumcols(db) == 0)
            continue;
        STATUS row;
        while ((row = dbnextrow(db)) == REG_ROW)
            if (on_row && (*st = on_row(db, set, arg, err)) != SM_OK)
                return false;
        if (row != NO_MORE_ROWS)
            return false;
        set++;
    }
    return rc == NO_MORE_RESULTS;
}

/* Maps the diag of a failed call to a status: a broken connection, a lock
 * timeout, a deadlock, or another process creating the schema at the same
 * moment (Msg 2714) are worth retrying later; anything else is a bug or a
 * schema problem. */
static sm_status call_fail(mssql_conn *c, const char *op, sm_error *err)
{
    mssql_diag *d = &c->diag;
    if (c->db && DBDEAD(c->db))
        d->dead = true;
    /* Babelfish reports these under a generic msgno, hence the texts */
    bool transient = d->dead || d->msgno == 1205 || d->msgno == 1222 || d->msgno == 2714 ||
                     strcasestr(d->server_text, "lock timeout") ||
                     strcasestr(d->server_text, "deadlock") ||
                     strcasestr(d->server_text, "already exists");
    bool said = d->msgno || d->dberr;
    return sm_fail(err, transient ? SM_ERR_UNAVAILABLE : SM_ERR_INTERNAL,
                   "read model (mssql) %s failed: %s%s%s", op, d->dead ? "connection lost" : "",
                   d->dead && said ? ": " : "", said || !d->dead ? diag_text(d) : "");
}

/* sp_executesql(prologue + sql, p); on_row sees the rows. */
static sm_status call(mssql_conn *c, const char *sql, const mssql_params *p, row_fn on_row,
                      void *arg, const char *op, sm_error *err)
{
    memset(&c->diag, 0, sizeof c->diag);
    char *stmt = mssql_params_statement(p, sql);
    if (!stmt)
        return oom(err);
    bool ok = send_rpc(c->db, stmt, p);
    free(stmt);
    sm_status st = SM_OK;
    if (ok)
        ok = read_results(c->db, on_row, arg, &st, err);
    if (ok && !c->diag.msgno && !c->diag.dberr)
        return SM_OK;
    if (!DBDEAD(c->db))
        dbcancel(c->db); /* discard what is left, keeping the session in step */
    return st ? st : call_fail(c, op, err);
}

typedef sm_status (*conn_op)(mssql_conn *c, void *arg, sm_error *err);

/* Runs op on a pooled connection, connecting it first if needed. A
 * connection found dead (server restarted, network cut) is dropped and op
 * runs once more on a new one; so does an apply that lost a first-insert
 * race (duplicate key). A server still down fails the reconnect quickly;
 * after a timeout there is no second try, so a hung server costs one
 * MSSQL_QUERY_TIMEOUT_S, not two. */
static sm_status with_conn(rm_mssql *s, conn_op op, void *arg, sm_error *err)
{
    mssql_conn *c = checkout(s, err);
    if (!c)
        return SM_ERR_UNAVAILABLE;
    sm_status st = SM_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!c->db && (st = conn_open(s, c, err)) != SM_OK)
            break;
        memset(&c->diag, 0, sizeof c->diag);
        if ((st = op(c, arg, err)) == SM_OK || st == SM_ERR_INVALID)
            break; /* INVALID: refused before anything was sent */
        bool dead = c->diag.dead || DBDEAD(c->db), slow = c->diag.timed_out;
        bool race = c->diag.msgno == 2627 || c->diag.msgno == 2601 || c->diag.raced;
        if (dead) {
            char q[SM_ERROR_MAX + 8];
            sm_log(SM_LOG_WARN, "read_model_reconnect", "adapter=mssql server=%s error=%s",
                   s->server, sm_log_quote(err ? err->message : "", q, sizeof q));
            conn_close(c);
        } else if (!exec_plain(c, "IF @@TRANCOUNT > 0 ROLLBACK;")) {
            conn_close(c); /* XACT_ABORT already rolled back; this is belt and braces */
        }
        if (slow || (!dead && !race))
            break;
    }
    checkin(s, c);
    return st;
}

/* ---- columns -------------------------------------------------------------- */

/* Integers, bits and NULL (0). A failed conversion raises a db-lib error,
 * which fails the call. */
static int64_t col_int64(DBPROCESS *db, int col)
{
    BYTE *data = dbdata(db, col);
    DBBIGINT v = 0;
    if (data)
        dbconvert(db, dbcoltype(db, col), data, dbdatlen(db, col), SYBINT8, (BYTE *)&v,
                  sizeof v);
    return v;
}

/* nvarchar arrives as UTF-8 bytes (the login's charset), not terminated. */
static char *col_text(DBPROCESS *db, int col)
{
    BYTE *data = dbdata(db, col);
    DBINT len = data ? dbdatlen(db, col) : 0;
    char *s = malloc((size_t)len + 1);
    if (s) {
        if (len > 0)
            memcpy(s, data, (size_t)len);
        s[len] = '\0';
    }
    return s;
}

/* A nullable text column: *out NULL for SQL NULL. False on OOM. */
static bool col_text_or_null(DBPROCESS *db, int col, char **out)
{
    *out = dbdata(db, col) ? col_text(db, col) : NULL;
    return *out || !dbdata(db, col);
}

static bool col_uuid(DBPROCESS *db, int col, sm_uuid_str out)
{
    BYTE *data = dbdata(db, col);
    char buf[64];
    DBINT n = data ? dbconvert(db, dbcoltype(db, col), data, dbdatlen(db, col), SYBCHAR,
                               (BYTE *)buf, (DBINT)sizeof buf - 1)
                   : -1;
    if (n < 0)
        return false;
    buf[n] = '\0';
    return sm_uuid_parse(buf, out); /* upper case on the wire; canonical here */
}

static sm_status bad_row(const char *what, sm_error *err)
{
    return sm_fail(err, SM_ERR_INTERNAL, "read model (mssql): bad %s in a result row", what);
}

/* ---- apply ---------------------------------------------------------------- */

typedef struct apply_args {
    const sm_event *ev;
    int64_t was;  /* the post's version before this event (-1: never seen) */
    bool claimed; /* this batch moved the version and made the change */
    bool got;
} apply_args;

static sm_status read_was(DBPROCESS *db, int set, void *arg, sm_error *err)
{
    apply_args *a = arg;
    a->was = col_int64(db, 1);
    a->claimed = col_int64(db, 2) == 1;
    a->got = true;
    return SM_OK;
}

static sm_status apply_op(mssql_conn *c, void *arg, sm_error *err)
{
    apply_args *a = arg;
    mssql_params p;
    mssql_params_init(&p);
    const char *sql = mssql_apply_statement(a->ev, &p);
    if (!sql)
        return sm_fail(err, SM_ERR_INVALID, "read model: unknown event type");
    if (!mssql_params_ok(&p))
        return sm_fail(err, SM_ERR_INVALID, "read model (mssql): %s", p.why);
    a->got = false;
    sm_status st = call(c, sql, &p, read_was, a, "apply", err);
    if (!st && !a->got)
        st = sm_fail(err, SM_ERR_INTERNAL, "read model (mssql): apply returned no version");
    return st;
}

/* The outcome of an apply batch from the version it found and its claim. */
static sm_status outcome_of(const apply_args *a, rm_outcome *outcome, sm_error *err)
{
    const sm_event *ev = a->ev;
    if (a->claimed)
        *outcome = RM_APPLIED;
    else if (ev->version <= a->was)
        *outcome = RM_DUPLICATE;
    else if (ev->version > a->was + 1)
        *outcome = RM_GAP;
    else /* the next version, yet not claimed: never report that as applied */
        return sm_fail(err, SM_ERR_INTERNAL, "read model (mssql): %s at version %lld was not "
                       "applied (post at %lld)", sm_event_type_name(ev->type),
                       (long long)ev->version, (long long)a->was);
    return SM_OK;
}

static sm_status mssql_apply(void *impl, const sm_event *ev, rm_outcome *outcome, sm_error *err)
{
    apply_args a = {ev, -1, false, false};
    sm_status st = with_conn(impl, apply_op, &a, err);
    return st ? st : outcome_of(&a, outcome, err);
}

/* The versions the read model holds for a batch's posts, read in one
 * round trip before the batch's calls: an event at or below its post's
 * version is a duplicate whatever happens next (versions only grow), so
 * it needs no call of its own. A replay (RestoreReadDb, a redelivery after
 * a rebalance) is nearly all duplicates, and on Babelfish each call is a
 * millisecond or two: 42,000 replayed events took 74 s one call each. */
typedef struct known_post {
    sm_uuid_str id;
    int64_t version; /* -1: not in the read model (or not read) */
} known_post;

typedef struct known_set {
    known_post *items;
    size_t n;
} known_set;

static known_post *known_find(known_set *k, const char *id)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->items[i].id, id) == 0)
            return &k->items[i];
    return NULL;
}

static sm_status read_known(DBPROCESS *db, int set, void *arg, sm_error *err)
{
    (void)set;
    sm_uuid_str id;
    if (!col_uuid(db, 1, id))
        return bad_row("post id", err);
    known_post *p = known_find(arg, id);
    if (p)
        p->version = col_int64(db, 2);
    return SM_OK;
}

/* Fills k with the batch's distinct posts and their versions. The ids are
 * canonical UUIDs (hex and dashes, checked again here), so they go into
 * the statement as literals: one parameter each would hit the RPC's limit
 * of 2,100 on a large batch. */
static sm_status load_known(mssql_conn *c, const sm_event *const *evs, size_t n, known_set *k,
                            sm_error *err)
{
    size_t cap = strlen("SELECT PostId, Version FROM dbo.PostVersion WHERE PostId IN ();") +
                 n * (SM_UUID_LEN + 3) + 1;
    char *sql = malloc(cap);
    if (!sql)
        return oom(err);
    size_t len = (size_t)sprintf(sql, "SELECT PostId, Version FROM dbo.PostVersion WHERE PostId IN (");
    for (size_t i = 0; i < n; i++) {
        const char *id = evs[i]->aggregate_id;
        if (known_find(k, id) || !sm_uuid_parse(id, NULL) || strlen(id) != SM_UUID_LEN)
            continue;
        known_post *p = &k->items[k->n++];
        memcpy(p->id, id, sizeof p->id);
        p->version = -1;
        len += (size_t)sprintf(sql + len, "%s'%s'", k->n > 1 ? "," : "", id);
    }
    memcpy(sql + len, ");", 3);
    sm_status st = SM_OK;
    if (k->n > 0) {
        mssql_params none;
        mssql_params_init(&none);
        st = call(c, sql, &none, read_known, k, "read versions", err);
    }
    free(sql);
    return st;
}

typedef struct batch_args {
    const sm_event *const *evs;
    size_t n;
    rm_outcome *outcomes;
    size_t at; /* the event being applied; n: the commit */
} batch_args;

/* A unit of a batch's call: one event, or a run of likes on one post
 * (consecutive versions, no other event of that post between them in the
 * batch) applied as one claim. members[0..n) index the batch. */
typedef struct unit {
    size_t *members;
    size_t n;
    apply_args res; /* res.ev: the first member's event */
} unit;

/* One call for a chunk of a batch (mssql_multi): part i's result row is
 * the i-th. */
typedef struct chunk_args {
    unit *units;
    size_t n, seen; /* seen: result rows read, i.e. parts that ran */
} chunk_args;

static sm_status read_part(DBPROCESS *db, int set, void *arg, sm_error *err)
{
    chunk_args *k = arg;
    if ((size_t)set >= k->n)
        return sm_fail(err, SM_ERR_INTERNAL, "read model (mssql): more results than events");
    read_was(db, set, &k->units[set].res, err);
    k->seen = (size_t)set + 1;
    return SM_OK;
}

/* The outcomes of a run of likes from its one claim. Claimed: all applied.
 * Not: as each like alone would have found the post at Was, unless Was
 * falls inside the run, which only another applier moving the post
 * between the batch's read of versions and this call can make; the batch
 * is then run again from the start (c->diag.raced), with fresh versions. */
static sm_status run_outcomes(mssql_conn *c, const batch_args *b, const unit *u, sm_error *err)
{
    if (u->n == 1)
        return outcome_of(&u->res, &b->outcomes[u->members[0]], err);
    int64_t first = u->res.ev->version, last = first + (int64_t)u->n - 1, was = u->res.was;
    rm_outcome o;
    if (u->res.claimed)
        o = RM_APPLIED;
    else if (was >= last)
        o = RM_DUPLICATE;
    else if (was < first - 1)
        o = RM_GAP;
    else {
        c->diag.raced = true;
        return sm_fail(err, SM_ERR_UNAVAILABLE, "read model (mssql): post %s moved to version "
                       "%lld during a batch; the batch runs again", u->res.ev->aggregate_id,
                       (long long)was);
    }
    for (size_t i = 0; i < u->n; i++)
        b->outcomes[u->members[i]] = o;
    return SM_OK;
}

/* Applies units[0..n) in one call; on failure b->at names the event that
 * failed (the first of the first unit whose result did not come back). */
static sm_status apply_chunk(mssql_conn *c, batch_args *b, unit *units, size_t n, sm_error *err)
{
    mssql_multi m;
    mssql_multi_init(&m);
    sm_status st = SM_OK;
    for (size_t i = 0; !st && i < n; i++) {
        mssql_params p;
        mssql_params_init(&p);
        unit *u = &units[i];
        u->res = (apply_args){b->evs[u->members[0]], -1, false, false};
        const char *sql = u->n > 1 ? mssql_like_run_statement(u->res.ev, (int64_t)u->n, &p)
                                   : mssql_apply_statement(u->res.ev, &p);
        if (!sql)
            st = sm_fail(err, SM_ERR_INVALID, "read model: unknown event type");
        else if (!mssql_params_ok(&p))
            st = sm_fail(err, SM_ERR_INVALID, "read model (mssql): %s", p.why);
        else if (!mssql_multi_add(&m, &p, sql))
            st = oom(err);
        if (st)
            b->at = u->members[0];
    }
    chunk_args k = {units, n, 0};
    if (!st) {
        memset(&c->diag, 0, sizeof c->diag);
        bool ok = send_rpc_items(c->db, m.stmt, m.decl, m.items, m.n) &&
                  read_results(c->db, read_part, &k, &st, err);
        if (!ok || c->diag.msgno || c->diag.dberr) {
            if (!DBDEAD(c->db))
                dbcancel(c->db);
            if (!st)
                st = call_fail(c, "apply", err);
        } else if (k.seen != n) {
            st = sm_fail(err, SM_ERR_INTERNAL, "read model (mssql): %zu results for %zu calls",
                         k.seen, n);
        }
        if (st)
            b->at = units[k.seen < n ? k.seen : n - 1].members[0];
    }
    mssql_multi_free(&m);
    for (size_t i = 0; !st && i < n; i++)
        if ((st = run_outcomes(c, b, &units[i], err)) != SM_OK)
            b->at = units[i].members[0];
    return st;
}

/* Splits the batch's events that are new by the versions read (pending,
 * in batch order) into units: a like starts a run that takes each later
 * like of its post with the next version, up to the first other event of
 * that post. Returns the number of units; members points into one array
 * of pending's length. */
static size_t make_units(const batch_args *b, const size_t *pending, size_t np, bool *used,
                         size_t *members, unit *units)
{
    size_t nu = 0, nm = 0;
    for (size_t i = 0; i < np; i++) {
        if (used[i])
            continue;
        const sm_event *ev = b->evs[pending[i]];
        unit *u = &units[nu++];
        u->members = &members[nm];
        u->n = 0;
        members[nm++] = pending[i];
        u->n++;
        used[i] = true;
        if (ev->type != SM_EV_POST_LIKED)
            continue;
        int64_t next = ev->version + 1;
        for (size_t j = i + 1; j < np; j++) {
            const sm_event *e = b->evs[pending[j]];
            if (used[j] || strcmp(e->aggregate_id, ev->aggregate_id) != 0)
                continue;
            if (e->type != SM_EV_POST_LIKED || e->version != next)
                break;
            members[nm++] = pending[j];
            u->n++;
            used[j] = true;
            next++;
        }
    }
    return nu;
}

/* A batch: BEGIN TRAN, the posts' versions (load_known), the events that
 * are not duplicates by them in units (make_units: a run of likes on one
 * post is one claim and one UPDATE) sent in calls of up to MSSQL_MULTI_MAX
 * apply batches each (their BEGIN TRAN and COMMIT nest inside ours and
 * only move @@TRANCOUNT), then one COMMIT, so the server flushes its log
 * once per batch. XACT_ABORT rolls the whole transaction back on any
 * error, and with_conn rolls back whatever is left and runs the batch once
 * more from the start on a connection found dead, a first-insert race or
 * another applier moving a post under a run. Round trips: 3 plus one per
 * 64 units, where one call per event took a millisecond or two each on
 * Babelfish (BEGIN and COMMIT cannot ride on the calls: a transaction left
 * open or closed across sp_executesql is error 266). Units of one post
 * run in batch order, as do the calls. */
static sm_status batch_op(mssql_conn *c, void *arg, sm_error *err)
{
    batch_args *b = arg;
    b->at = 0;
    if (!exec_plain(c, "BEGIN TRAN;"))
        return call_fail(c, "begin", err);
    size_t n = b->n ? b->n : 1;
    known_set k = {calloc(n, sizeof *k.items), 0};
    size_t *pending = calloc(n, sizeof *pending), *members = calloc(n, sizeof *members);
    bool *used = calloc(n, sizeof *used);
    unit *units = calloc(n, sizeof *units);
    sm_status st = k.items && pending && members && used && units ? SM_OK : oom(err);
    if (!st)
        st = load_known(c, b->evs, b->n, &k, err);
    size_t np = 0;
    for (size_t i = 0; !st && i < b->n; i++) {
        const sm_event *ev = b->evs[i];
        known_post *kp = known_find(&k, ev->aggregate_id);
        if (kp && ev->version <= kp->version)
            b->outcomes[i] = RM_DUPLICATE;
        else
            pending[np++] = i;
    }
    size_t nu = st ? 0 : make_units(b, pending, np, used, members, units);
    for (size_t u = 0; !st && u < nu; u += MSSQL_MULTI_MAX)
        st = apply_chunk(c, b, &units[u], nu - u < MSSQL_MULTI_MAX ? nu - u : MSSQL_MULTI_MAX,
                         err);
    free(k.items);
    free(pending);
    free(members);
    free(used);
    free(units);
    if (st)
        return st; /* with_conn rolls back */
    b->at = b->n;
    if (!exec_plain(c, "COMMIT;"))
        return call_fail(c, "commit", err);
    return SM_OK;
}

static sm_status mssql_apply_batch(void *impl, const sm_event *const *evs, size_t n,
                                   rm_outcome *outcomes, size_t *failed, sm_error *err)
{
    batch_args b = {evs, n, outcomes, 0};
    sm_status st = with_conn(impl, batch_op, &b, err);
    if (st && failed)
        *failed = b.at;
    return st;
}

/* ---- queries -------------------------------------------------------------- */

typedef struct query_args {
    const rm_query *q;
    rm_post_list *out;
    size_t start; /* out->len before the call; a retry starts over from here */
} query_args;

/* Frees the posts a failed attempt added after start. */
static void truncate_list(rm_post_list *l, size_t start)
{
    for (size_t i = start; i < l->len; i++) {
        rm_post *p = &l->items[i];
        free(p->author);
        free(p->author_id);
        free(p->message);
        for (size_t j = 0; j < p->ncomments; j++) {
            free(p->comments[j].username);
            free(p->comments[j].user_id);
            free(p->comments[j].comment);
        }
        free(p->comments);
    }
    l->len = start;
}

/* Row 1 of a post: the post itself. */
static sm_status read_post(DBPROCESS *db, query_args *a, sm_error *err)
{
    rm_post *p = rm_post_list_push(a->out);
    if (!p)
        return oom(err);
    if (!(p->author = col_text(db, MSSQL_COL_AUTHOR)) ||
        !(p->message = col_text(db, MSSQL_COL_MESSAGE)) ||
        !col_text_or_null(db, MSSQL_COL_AUTHOR_ID, &p->author_id))
        return oom(err);
    p->date_posted_ms = col_int64(db, MSSQL_COL_DATE_POSTED);
    p->likes = col_int64(db, MSSQL_COL_LIKES);
    p->version = col_int64(db, MSSQL_COL_VERSION);
    p->comment_count = col_int64(db, MSSQL_COL_COMMENT_COUNT);
    return col_uuid(db, MSSQL_COL_ID, p->id) ? SM_OK : bad_row("post id", err);
}

static sm_status read_comment(DBPROCESS *db, rm_post *p, sm_error *err)
{
    rm_comment *cm = rm_post_add_comment(p);
    if (!cm)
        return oom(err);
    memcpy(cm->post_id, p->id, sizeof cm->post_id);
    if (!(cm->username = col_text(db, MSSQL_COL_USERNAME)) ||
        !(cm->comment = col_text(db, MSSQL_COL_COMMENT)) ||
        !col_text_or_null(db, MSSQL_COL_USER_ID, &cm->user_id))
        return oom(err);
    cm->comment_date_ms = col_int64(db, MSSQL_COL_COMMENT_DATE);
    cm->edited = col_int64(db, MSSQL_COL_EDITED) != 0;
    cm->edited_at_ms = col_int64(db, MSSQL_COL_EDITED_AT); /* NULL reads as 0, as wanted */
    return col_uuid(db, MSSQL_COL_COMMENT_ID, cm->comment_id) ? SM_OK : bad_row("comment id", err);
}

static sm_status read_page_row(DBPROCESS *db, int set, void *arg, sm_error *err)
{
    query_args *a = arg;
    sm_status st = SM_OK;
    if (col_int64(db, MSSQL_COL_ROW) == 1)
        st = read_post(db, a, err);
    else if (a->out->len == a->start)
        st = bad_row("comment row before its post", err);
    if (!st && dbdata(db, MSSQL_COL_COMMENT_ID)) /* NULL: a post without comments */
        st = read_comment(db, &a->out->items[a->out->len - 1], err);
    return st;
}

static sm_status query_op(mssql_conn *c, void *arg, sm_error *err)
{
    query_args *a = arg;
    const rm_query *q = a->q;
    truncate_list(a->out, a->start);
    mssql_params p;
    mssql_params_init(&p);
    const char *sql = mssql_query_statement(q, &p);
    if (!sql)
        return sm_fail(err, SM_ERR_INVALID, "read model: unknown query");
    if (!mssql_params_ok(&p))
        return sm_fail(err, SM_ERR_INVALID, "read model (mssql): %s", p.why);
    sm_status st = call(c, sql, &p, read_page_row, a, "query", err);
    if (st)
        truncate_list(a->out, a->start);
    return st;
}

typedef struct comment_page_args {
    query_args a;
    const rm_comment_query *q;
} comment_page_args;

static sm_status comment_page_op(mssql_conn *c, void *arg, sm_error *err)
{
    comment_page_args *k = arg;
    truncate_list(k->a.out, k->a.start);
    mssql_params p;
    mssql_params_init(&p);
    const char *sql = mssql_comment_page_statement(k->q, &p);
    if (!mssql_params_ok(&p))
        return sm_fail(err, SM_ERR_INVALID, "read model (mssql): %s", p.why);
    sm_status st = call(c, sql, &p, read_page_row, &k->a, "comment page", err);
    if (st)
        truncate_list(k->a.out, k->a.start);
    return st;
}

static sm_status mssql_comment_page(void *impl, const rm_comment_query *q, rm_post_list *out,
                                    sm_error *err)
{
    comment_page_args k = {{NULL, out, out->len}, q};
    return with_conn(impl, comment_page_op, &k, err);
}

static sm_status mssql_query(void *impl, const rm_query *q, rm_post_list *out, sm_error *err)
{
    /* @author is nvarchar(4000); a longer value (UTF-16 never needs more
     * units than UTF-8 needs bytes) cannot match a 64-unit column */
    if (q->kind == RM_Q_BY_AUTHOR && strlen(q->author) > 4000)
        return SM_OK;
    query_args a = {q, out, out->len};
    return with_conn(impl, query_op, &a, err);
}

/* ---- post_version, ping, close, open -------------------------------------- */

typedef struct version_args {
    const char *post_id;
    int64_t version;
} version_args;

static sm_status read_version(DBPROCESS *db, int set, void *arg, sm_error *err)
{
    ((version_args *)arg)->version = col_int64(db, 1);
    return SM_OK;
}

static sm_status version_op(mssql_conn *c, void *arg, sm_error *err)
{
    version_args *a = arg;
    a->version = -1;
    mssql_params p;
    mssql_params_init(&p);
    const char *sql = mssql_version_statement(a->post_id, &p);
    if (!mssql_params_ok(&p))
        return sm_fail(err, SM_ERR_INVALID, "read model (mssql): %s", p.why);
    return call(c, sql, &p, read_version, a, "post version", err);
}

static sm_status mssql_post_version(void *impl, const char *post_id, int64_t *version,
                                    sm_error *err)
{
    version_args a = {post_id, -1};
    sm_status st = with_conn(impl, version_op, &a, err);
    if (!st)
        *version = a.version;
    return st;
}

static sm_status ping_op(mssql_conn *c, void *arg, sm_error *err)
{
    mssql_params p;
    mssql_params_init(&p);
    return call(c, "SELECT 1;", &p, NULL, NULL, "ping", err);
}

static sm_status mssql_ping(void *impl, sm_error *err)
{
    return with_conn(impl, ping_op, NULL, err);
}

static void mssql_close(void *impl)
{
    rm_mssql *s = impl;
    for (int i = 0; i < MSSQL_POOL_SIZE; i++)
        conn_close(&s->conns[i]);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->freed);
    explicit_bzero(s->ci.password, sizeof s->ci.password);
    if (*s->conf_path)
        unlink(s->conf_path);
    if (*s->conf_dir)
        rmdir(s->conf_dir);
    free(s);
}

/* The private freetds.conf of a TLS store (see the top of this file). */
static sm_status write_freetds_conf(rm_mssql *s, sm_error *err)
{
    static atomic_int next_section;
    FILE *ca = fopen(s->ci.ca, "r");
    if (!ca)
        return sm_fail(err, SM_ERR_INVALID,
                       "read model (mssql): cannot read the CA file %s (SMPOST_MSSQL_TLS_CA, or"
                       " ca= in SMPOST_READ_MODEL): %s",
                       s->ci.ca, strerror(errno));
    fclose(ca);
    snprintf(s->dbname, sizeof s->dbname, "smpost_rm_%d", atomic_fetch_add(&next_section, 1));
    char text[1024];
    if (!mssql_freetds_conf(&s->ci, s->dbname, text, sizeof text))
        return sm_fail(err, SM_ERR_INVALID, "read model (mssql): the freetds.conf is too long");
    const char *tmp = getenv("TMPDIR");
    snprintf(s->conf_dir, sizeof s->conf_dir, "%s/smpost-freetds-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->conf_dir)) { /* mode 0700 */
        int e = errno;
        *s->conf_dir = '\0';
        return sm_fail(err, SM_ERR_INVALID,
                       "read model (mssql): cannot create a directory for freetds.conf in %s"
                       " (TMPDIR): %s",
                       tmp && *tmp ? tmp : "/tmp", strerror(e));
    }
    snprintf(s->conf_path, sizeof s->conf_path, "%s/freetds.conf", s->conf_dir);
    int fd = open(s->conf_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;
    int e = errno;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok) {
        if (fd < 0)
            *s->conf_path = '\0';
        return sm_fail(err, SM_ERR_INVALID, "read model (mssql): cannot write %s/freetds.conf: %s",
                       s->conf_dir, strerror(e));
    }
    return SM_OK;
}

static const rm_ops mssql_ops = {
    .name = "mssql",
    .apply = mssql_apply,
    .apply_batch = mssql_apply_batch,
    .query = mssql_query,
    .comment_page = mssql_comment_page,
    .post_version = mssql_post_version,
    .ping = mssql_ping,
    .close = mssql_close,
};

/* The schema batch is idempotent, but two processes creating the tables at
 * the same moment make the loser fail with a duplicate (Msg 2714 on SQL
 * Server; 2627 or 219 from Babelfish's catalog); run again, it finds them. */
static sm_status apply_schema(mssql_conn *c, sm_error *err)
{
    for (int attempt = 1;; attempt++) {
        if (exec_plain(c, sm_sql_read_model_mssql))
            return SM_OK;
        int no = c->diag.msgno;
        bool duplicate = no == 2714 || no == 2627 || no == 219;
        if (c->diag.dead || !duplicate || attempt == 3)
            return call_fail(c, "schema", err);
        exec_plain(c, "IF @@TRANCOUNT > 0 ROLLBACK;");
    }
}

sm_status rm_mssql_open(const char *conn, rm_store **out, sm_error *err)
{
    *out = NULL;
    pthread_once(&dblib_once, dblib_init);
    if (!dblib_ready)
        return sm_fail(err, SM_ERR_INTERNAL, "read model (mssql): db-lib failed to initialise");
    rm_mssql *s = calloc(1, sizeof *s);
    if (!s)
        return oom(err);
    pthread_mutex_init(&s->lock, NULL);
    sm_cond_init(&s->freed);
    char why[256];
    sm_status st = SM_OK;
    if (!mssql_conninfo_parse(conn, &s->ci, why, sizeof why))
        st = sm_fail(err, SM_ERR_INVALID, "read model (mssql): %s", why);
    else
        snprintf(s->server, sizeof s->server, "%s:%d", s->ci.host, s->ci.port);
    snprintf(s->dbname, sizeof s->dbname, "%s", s->server);
    if (!st && *s->ci.ca)
        st = write_freetds_conf(s, err);
    /* the first connection applies the schema; the others open on demand */
    if (!st)
        st = conn_open(s, &s->conns[0], err);
    if (!st)
        st = apply_schema(&s->conns[0], err);
    if (st) {
        mssql_close(s);
        return st;
    }
    *out = rm_store_new(&mssql_ops, s);
    if (!*out)
        return oom(err);
    sm_log(SM_LOG_INFO, "read_model_open", "adapter=mssql server=%s database=%s user=%s tls=%s",
           s->server, s->ci.database, s->ci.user, *s->ci.ca ? "verified" : "freetds-default");
    return SM_OK;
}
