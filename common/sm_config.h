/* SPDX-License-Identifier: Apache-2.0 */
/* sm_config.h — configuration from environment variables, overridden by
 * command-line options, with --help generated from the same table.
 *
 * Each binary declares its options as a table of sm_option; precedence is
 * built-in default < environment variable < command-line flag. Values are
 * validated here (ranges, log levels), so a bad setting stops the program at
 * start with a message naming the variable or flag, never later.
 *
 * Secrets from files (Docker and Kubernetes secrets): a string option whose
 * variable is NAME also takes NAME_FILE, the path of a file whose contents
 * (one trailing newline removed) are the value; setting both is an error
 * naming both. Not for a NAME that itself ends in _FILE (its value is
 * already a path), nor when the table has an option of its own whose
 * variable is NAME_FILE (SMPOST_KAFKA_CONFIG_FILE). */
#ifndef SM_CONFIG_H
#define SM_CONFIG_H

#include "sm_error.h"
#include "sm_log.h"

#include <stdio.h>

/* SM_OPT_BOOL takes on/off, true/false, yes/no or 1/0 (any case). */
typedef enum { SM_OPT_STRING, SM_OPT_INT, SM_OPT_LOG_LEVEL, SM_OPT_BOOL } sm_opt_kind;

typedef struct sm_option {
    const char *flag;   /* long option without dashes, e.g. "port" */
    const char *env;    /* environment variable, e.g. "SMPOST_PORT" */
    sm_opt_kind kind;
    const char *def;    /* default as text; NULL for "unset" (strings only) */
    long min, max;      /* bounds for SM_OPT_INT */
    const char *help;
    void *target;       /* char ** (owned, strdup'd), long *, sm_log_level * or bool * */
} sm_option;

typedef enum { SM_CONFIG_RUN, SM_CONFIG_EXIT_OK, SM_CONFIG_EXIT_ERROR } sm_config_result;

/* Fills each option's target: default, then env, then argv ("--flag value"
 * or "--flag=value"). "--help"/"-h" prints usage to out and returns
 * SM_CONFIG_EXIT_OK, and so does "--version" after printing
 * "PROG VERSION (commit COMMIT)" (sm_version.h); an unknown flag or invalid value fills err and returns
 * SM_CONFIG_EXIT_ERROR. String targets are heap copies the caller releases
 * with sm_config_free(). */
sm_config_result sm_config_load(const sm_option *opts, size_t nopts, int argc, char **argv,
                                const char *prog, const char *summary, FILE *out,
                                sm_error *err);

/* The start of every smpost main(): loads the options and, for --help or a
 * bad value, prints (usage to stdout, "prog: error" to stderr), frees them
 * and returns the exit code (0 or 2). Returns -1 when the program should
 * run. */
int sm_config_start(const sm_option *opts, size_t nopts, int argc, char **argv,
                    const char *prog, const char *summary);

/* Blocks SIGINT and SIGTERM (plus extra, 0 for none) in the calling thread,
 * before any other thread starts, so every thread inherits the mask and
 * only the main thread's sigwait() on *set sees them; ignores SIGPIPE. */
#include <signal.h>
void sm_block_stop_signals(sigset_t *set, int extra1, int extra2);

/* Frees the strings sm_config_load stored. */
void sm_config_free(const sm_option *opts, size_t nopts);

/* This process's instance id (logs, /health, /metrics, the relay lease):
 * `given` if set, else "<hostname>-<port>", which is stable across restarts
 * of one instance and distinct between instances on one host (containers
 * have distinct hostnames). It must be 1..96 characters of [A-Za-z0-9._:-]
 * (it goes into log lines and metric labels unquoted): false + err if not. */
bool sm_config_instance_id(const char *given, long port, char *out, size_t cap, sm_error *err);

/* Writes the usage text for opts to out. */
void sm_config_usage(const sm_option *opts, size_t nopts, const char *prog, const char *summary,
                     FILE *out);

#endif
