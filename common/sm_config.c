/* SPDX-License-Identifier: Apache-2.0 */
/* sm_config.c — see sm_config.h. */
#include "sm_config.h"

#include "sm_secret.h"
#include "sm_version.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The spellings a switch accepts: operators write on/off in env files,
 * true/false in YAML, 1/0 in scripts. */
static bool parse_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static sm_status set_value(const sm_option *o, const char *value, const char *source,
                           sm_error *err)
{
    switch (o->kind) {
    case SM_OPT_STRING: {
        char **dst = o->target;
        char *copy = value ? strdup(value) : NULL;
        if (value && !copy)
            return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        free(*dst);
        *dst = copy;
        return SM_OK;
    }
    case SM_OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max)
            return sm_fail(err, SM_ERR_INVALID, "%s: '%s' is not an integer in [%ld, %ld]",
                           source, value, o->min, o->max);
        *(long *)o->target = v;
        return SM_OK;
    }
    case SM_OPT_LOG_LEVEL:
        if (!sm_log_parse_level(value, o->target))
            return sm_fail(err, SM_ERR_INVALID,
                           "%s: '%s' is not a log level (debug, info, warn, error)", source,
                           value);
        return SM_OK;
    case SM_OPT_BOOL:
        if (!parse_bool(value, o->target))
            return sm_fail(err, SM_ERR_INVALID,
                           "%s: '%s' is not a switch (on, off, true, false, yes, no, 1, 0)",
                           source, value);
        return SM_OK;
    }
    return sm_fail(err, SM_ERR_INTERNAL, "bad option kind");
}

void sm_config_usage(const sm_option *opts, size_t nopts, const char *prog, const char *summary,
                     FILE *out)
{
    fprintf(out, "Usage: %s [OPTIONS]\n%s\n\nOptions (flag, environment variable, default):\n",
            prog, summary);
    for (size_t i = 0; i < nopts; i++) {
        const sm_option *o = &opts[i];
        fprintf(out, "  --%-20s %s\n  %-22s env %s, default %s\n", o->flag, o->help, "",
                o->env, o->def ? o->def : "(unset)");
    }
    fprintf(out, "  --%-20s %s\n", "help", "print this text and exit");
    fprintf(out, "  --%-20s %s\n", "version", "print the version and commit and exit");
}

static const sm_option *find_flag(const sm_option *opts, size_t nopts, const char *name,
                                  size_t len)
{
    for (size_t i = 0; i < nopts; i++)
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    return NULL;
}

static sm_config_result parse_argv(const sm_option *opts, size_t nopts, int argc, char **argv,
                                   const char *prog, const char *summary, FILE *out,
                                   sm_error *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            sm_config_usage(opts, nopts, prog, summary, out);
            return SM_CONFIG_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            fprintf(out, "%s %s (commit %s)\n", prog, sm_version(), sm_commit());
            return SM_CONFIG_EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            sm_fail(err, SM_ERR_INVALID, "unexpected argument '%s' (try --help)", a);
            return SM_CONFIG_EXIT_ERROR;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const sm_option *o = find_flag(opts, nopts, name, len);
        if (!o) {
            sm_fail(err, SM_ERR_INVALID, "unknown option '%s' (try --help)", a);
            return SM_CONFIG_EXIT_ERROR;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) {
            sm_fail(err, SM_ERR_INVALID, "option --%s needs a value", o->flag);
            return SM_CONFIG_EXIT_ERROR;
        }
        char source[64];
        snprintf(source, sizeof source, "--%s", o->flag);
        if (set_value(o, value, source, err) != SM_OK)
            return SM_CONFIG_EXIT_ERROR;
    }
    return SM_CONFIG_RUN;
}

/* NAME_FILE for a string option whose variable is NAME (sm_config.h):
 * the file's contents are the value. */
static sm_status load_env_file(const sm_option *opts, size_t nopts, const sm_option *o,
                               bool env_set, sm_error *err)
{
    char name[128];
    size_t n = o->env ? strlen(o->env) : 0;
    if (o->kind != SM_OPT_STRING || n == 0 || n + 6 > sizeof name ||
        (n >= 5 && strcmp(o->env + n - 5, "_FILE") == 0))
        return SM_OK;
    snprintf(name, sizeof name, "%s_FILE", o->env);
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].env && strcmp(opts[i].env, name) == 0)
            return SM_OK; /* an option of its own, e.g. SMPOST_KAFKA_CONFIG_FILE */
    const char *path = getenv(name);
    if (!path || !*path)
        return SM_OK;
    if (env_set)
        return sm_fail(err, SM_ERR_INVALID, "%s and %s are both set: set one of them", o->env,
                       name);
    char *value = sm_secret_read_file(path, name, err);
    if (!value)
        return err->status;
    sm_status st = set_value(o, value, name, err);
    memset(value, 0, strlen(value));
    free(value);
    return st;
}

sm_config_result sm_config_load(const sm_option *opts, size_t nopts, int argc, char **argv,
                                const char *prog, const char *summary, FILE *out,
                                sm_error *err)
{
    for (size_t i = 0; i < nopts; i++) {
        const sm_option *o = &opts[i];
        if (o->kind == SM_OPT_STRING)
            *(char **)o->target = NULL;
        if (o->def && set_value(o, o->def, "default", err) != SM_OK)
            return SM_CONFIG_EXIT_ERROR;
        const char *env = o->env ? getenv(o->env) : NULL;
        if (env && *env && set_value(o, env, o->env, err) != SM_OK)
            return SM_CONFIG_EXIT_ERROR;
        if (load_env_file(opts, nopts, o, env && *env, err) != SM_OK)
            return SM_CONFIG_EXIT_ERROR;
    }
    return parse_argv(opts, nopts, argc, argv, prog, summary, out, err);
}

void sm_config_free(const sm_option *opts, size_t nopts)
{
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].kind == SM_OPT_STRING) {
            free(*(char **)opts[i].target);
            *(char **)opts[i].target = NULL;
        }
}

int sm_config_start(const sm_option *opts, size_t nopts, int argc, char **argv,
                    const char *prog, const char *summary)
{
    sm_error err = {0};
    sm_config_result cr = sm_config_load(opts, nopts, argc, argv, prog, summary, stdout, &err);
    if (cr == SM_CONFIG_RUN)
        return -1;
    if (cr == SM_CONFIG_EXIT_ERROR)
        fprintf(stderr, "%s: %s\n", prog, err.message);
    sm_config_free(opts, nopts);
    return cr == SM_CONFIG_EXIT_OK ? 0 : 2;
}

void sm_block_stop_signals(sigset_t *set, int extra1, int extra2)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    if (extra1)
        sigaddset(set, extra1);
    if (extra2)
        sigaddset(set, extra2);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool sm_config_instance_id(const char *given, long port, char *out, size_t cap, sm_error *err)
{
    char host[64] = "";
    if (given && *given) {
        snprintf(out, cap, "%s", given);
    } else {
        if (gethostname(host, sizeof host - 1) != 0 || !host[0])
            snprintf(host, sizeof host, "localhost");
        snprintf(out, cap, "%s-%ld", host, port);
    }
    size_t n = strlen(out);
    bool ok = n > 0 && n <= 96 && (!given || strlen(given) < cap);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)out[i]) || strchr("._:-", out[i]);
    if (!ok)
        sm_fail(err, SM_ERR_INVALID,
                "instance id '%.100s' must be 1 to 96 characters of letters, digits, '.', '_', "
                "':' and '-'", given && *given ? given : out);
    return ok;
}
