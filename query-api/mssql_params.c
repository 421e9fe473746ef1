/* mssql_params.c — see mssql_params.h. Pure string and memory work: no
 * db-lib calls (only its type constants), so the unit test needs no server. */
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
