/* SPDX-License-Identifier: Apache-2.0 */
/* sm_secret.h — secrets in settings: read from files (Docker and Kubernetes
 * secrets), librdkafka properties from a key=value file, the example
 * passwords the repository documents refused, and secrets kept out of logs.
 *
 * Where a secret can hide in a setting:
 *  - a URL's user-info ("mongodb://user:PASS@host/db"),
 *  - a password= or pwd= field of a connection string
 *    ("mssql:host=h;user=u;password=PASS;database=d"),
 *  - a librdkafka property whose name says so (sm_secret_kafka_key:
 *    sasl.password, ssl.key.password, ...).
 * Every function here that reports an error names the setting (and the
 * line, for a file), never a value: the value may be the secret.
 *
 * All functions are pure or touch only the file they are given, and are
 * safe from any thread. */
#ifndef SM_SECRET_H
#define SM_SECRET_H

#include "sm_error.h"

#include <stdbool.h>
#include <stddef.h>

/* The environment variable that lets a service start with an example
 * password (tests and local scripts only): "1" allows them. */
#define SM_SECRET_ALLOW_EXAMPLES_ENV "SMPOST_ALLOW_EXAMPLE_SECRETS"

/* Reads the whole file at path as one setting's value, as Docker and
 * Kubernetes secrets are mounted: one trailing "\n" (or "\r\n") is
 * removed, everything else kept. A file holding a NUL byte or over 64 KiB
 * is refused. Returns a heap string the caller frees (and should wipe), or
 * NULL + err naming `setting` and path. */
char *sm_secret_read_file(const char *path, const char *setting, sm_error *err);

/* Parses librdkafka properties, one "key=value" per line: blank lines and
 * lines whose first non-blank character is '#' are skipped; whitespace
 * around the key and after the '=' is dropped; the value is the rest of
 * the line (a trailing '\r' removed), so it may hold ',', '=' and '#'.
 * Returns a NULL-terminated array of heap strings "key=value" (free with
 * sm_strv_free), or NULL + err "SOURCE line N: ..." for a line with no '='
 * or an empty key (the line's text is not repeated: it may be a secret).
 * An empty text gives an empty array. */
char **sm_kv_lines_parse(const char *text, const char *source, sm_error *err);

/* The extra librdkafka properties of a service: the lines of the file at
 * `file` (sm_kv_lines_parse; `file_setting` names it in errors), then the
 * comma-separated items of `list` (SMPOST_KAFKA_CONFIG), so an item of the
 * list overrides the same key in the file. Either may be NULL or "".
 * NULL-terminated array of heap strings (sm_strv_free), or NULL + err. */
char **sm_kafka_config_load(const char *file, const char *file_setting, const char *list,
                            sm_error *err);

/* Frees a NULL-terminated array of heap strings, wiping each first.
 * NULL is a no-op. */
void sm_strv_free(char **v);

/* True if the librdkafka property `key` holds a secret: a name containing
 * "password" or "secret", ssl.key.pem, ssl.keystore.location's password
 * and sasl.oauthbearer.config. */
bool sm_secret_kafka_key(const char *key, size_t len);

/* Copies a "key=value" property to buf (cap bytes, always NUL-terminated),
 * with the value replaced by "***" when the key is a secret
 * (sm_secret_kafka_key). Returns buf. */
char *sm_redact_kv(const char *kv, char *buf, size_t cap);

/* The next secret in the connection string text at or after offset
 * `from`: *start and *len get the span to hide (a URL's whole user-info,
 * or a password=/pwd= field's value) and *pass_off the offset within it
 * where the password begins (after "user:" in a user-info; 0 for a
 * field). False when there is none. sm_log_redact_url is built on it. */
bool sm_secret_next_span(const char *text, size_t from, size_t *start, size_t *len,
                         size_t *pass_off);

/* True if password (len bytes; percent-escapes decoded first) is one of the
 * example passwords the repository documents (compose/.env.example) or a
 * common placeholder (changeme, password, ...), compared ignoring case. */
bool sm_secret_is_example(const char *password, size_t len);

/* Refuses a connection-string setting (a URL or "k=v;..." string) whose
 * password is an example (sm_secret_is_example), unless `allow`: SM_OK, or
 * SM_ERR_INVALID + err "SETTING holds an example password from the
 * documentation; ..." naming the setting only. text may be NULL. */
sm_status sm_secret_refuse_example_url(const char *setting, const char *text, bool allow,
                                       sm_error *err);

/* The same for librdkafka properties ("key=value" items; secret keys as
 * sm_secret_kafka_key): err names the key and the setting. */
sm_status sm_secret_refuse_example_kv(const char *setting, char *const *kv, bool allow,
                                      sm_error *err);

/* The start-up check of a service's secret settings, the same in both
 * binaries: loads the Kafka properties (sm_kafka_config_load of
 * kafka_file, named SMPOST_KAFKA_CONFIG_FILE, and kafka_list) into
 * *kafka_extra, then refuses an example password in store_url (named
 * store_setting) or in those properties, unless
 * SMPOST_ALLOW_EXAMPLE_SECRETS allows them. SM_OK, or an error for a
 * one-line start-up message (and *kafka_extra NULL). */
sm_status sm_secret_check_settings(const char *store_setting, const char *store_url,
                                   const char *kafka_file, const char *kafka_list,
                                   char ***kafka_extra, sm_error *err);

/* True if SMPOST_ALLOW_EXAMPLE_SECRETS is "1" (or another yes: on, true,
 * yes). */
bool sm_secret_examples_allowed(void);

#endif
