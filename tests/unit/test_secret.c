/* SPDX-License-Identifier: Apache-2.0 */
/* test_secret.c — secrets in settings (common/sm_secret.h and the NAME_FILE
 * rule of common/sm_config.h): a value read from a file, librdkafka
 * properties from key=value lines, the example passwords refused, and
 * redaction. Every error message is also checked not to carry the secret.
 * Files are written under a fresh temporary directory. */
#include "sm_config.h"
#include "sm_log.h"
#include "sm_secret.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static int make_dir(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/smpost-secret-XXXXXX", tmp ? tmp : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes n bytes of text to dir/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text, size_t n)
{
    static char path[320];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
    return path;
}

static void assert_no_marker(const char *text)
{
    if (strstr(text, "MARKER"))
        fail_msg("the secret leaked into: %s", text);
}

/* ---- sm_secret_read_file ---------------------------------------------------------------- */

static void test_secret_file_loses_one_trailing_newline_only(void **state)
{
    (void)state;
    sm_error err = {0};
    const char *cases[][2] = {{"s3cret\n", "s3cret"},     {"s3cret\r\n", "s3cret"},
                              {"s3cret\n\n", "s3cret\n"}, {"s3cret", "s3cret"},
                              {" sp ace \n", " sp ace "}, {"", ""}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = write_file("s", cases[i][0], strlen(cases[i][0]));
        char *v = sm_secret_read_file(path, "X_FILE", &err);
        assert_non_null(v);
        assert_string_equal(v, cases[i][1]);
        free(v);
    }
}

static void test_secret_file_missing_or_binary_names_setting_and_path(void **state)
{
    (void)state;
    sm_error err = {0};
    char path[320];
    snprintf(path, sizeof path, "%s/absent", dir);
    assert_null(sm_secret_read_file(path, "SMPOST_EVENT_STORE_FILE", &err));
    assert_non_null(strstr(err.message, "SMPOST_EVENT_STORE_FILE"));
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "No such file"));
    const char *bin = write_file("bin", "MARKER\0x", 8);
    assert_null(sm_secret_read_file(bin, "S_FILE", &err));
    assert_non_null(strstr(err.message, "NUL"));
    assert_no_marker(err.message);
}

/* ---- NAME_FILE in sm_config ------------------------------------------------------------- */

static char *store, *kcfg, *kcfg_file, *jwks;
static const sm_option opts[] = {
    {"store", "SMTEST_STORE", SM_OPT_STRING, "sqlite:x", 0, 0, "store", &store},
    {"kcfg", "SMTEST_KCFG", SM_OPT_STRING, NULL, 0, 0, "list", &kcfg},
    {"kcfg-file", "SMTEST_KCFG_FILE", SM_OPT_STRING, NULL, 0, 0, "file", &kcfg_file},
    {"jwks", "SMTEST_JWKS_FILE", SM_OPT_STRING, NULL, 0, 0, "path", &jwks},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static sm_config_result load(sm_error *err)
{
    char *argv[] = {"prog", NULL};
    return sm_config_load(opts, NOPTS, 1, argv, "prog", "s", stdout, err);
}

static void clear_env(void)
{
    const char *names[] = {"SMTEST_STORE", "SMTEST_STORE_FILE", "SMTEST_KCFG", "SMTEST_KCFG_FILE",
                           "SMTEST_JWKS_FILE", "SMTEST_JWKS_FILE_FILE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
}

static void test_config_name_file_gives_the_value_of_name(void **state)
{
    (void)state;
    clear_env();
    setenv("SMTEST_STORE_FILE", write_file("store", "mongodb://u:p%2C=@h/db\n", 23), 1);
    sm_error err = {0};
    assert_int_equal(load(&err), SM_CONFIG_RUN);
    assert_string_equal(store, "mongodb://u:p%2C=@h/db");
    sm_config_free(opts, NOPTS);
    clear_env();
}

static void test_config_name_and_name_file_together_are_refused_naming_both(void **state)
{
    (void)state;
    clear_env();
    setenv("SMTEST_STORE", "sqlite:MARKER", 1);
    setenv("SMTEST_STORE_FILE", write_file("store", "MARKER", 6), 1);
    sm_error err = {0};
    assert_int_equal(load(&err), SM_CONFIG_EXIT_ERROR);
    assert_non_null(strstr(err.message, "SMTEST_STORE and SMTEST_STORE_FILE"));
    assert_no_marker(err.message);
    sm_config_free(opts, NOPTS);
    clear_env();
}

static void test_config_name_file_that_cannot_be_read_stops_the_start(void **state)
{
    (void)state;
    clear_env();
    setenv("SMTEST_STORE_FILE", "/nonexistent/smpost/secret", 1);
    sm_error err = {0};
    assert_int_equal(load(&err), SM_CONFIG_EXIT_ERROR);
    assert_non_null(
        strstr(err.message, "SMTEST_STORE_FILE: cannot read /nonexistent/smpost/secret"));
    sm_config_free(opts, NOPTS);
    clear_env();
}

/* SMTEST_KCFG_FILE is an option of its own (a path, like
 * SMPOST_KAFKA_CONFIG_FILE), and SMTEST_JWKS_FILE's value is already a
 * path: neither is read as NAME_FILE. */
static void test_config_name_file_leaves_options_of_their_own_alone(void **state)
{
    (void)state;
    clear_env();
    const char *path = write_file("k", "a=1\n", 4);
    setenv("SMTEST_KCFG_FILE", path, 1);
    setenv("SMTEST_KCFG", "b=2", 1);
    setenv("SMTEST_JWKS_FILE_FILE", "/nonexistent", 1);
    sm_error err = {0};
    assert_int_equal(load(&err), SM_CONFIG_RUN);
    assert_string_equal(kcfg, "b=2");
    assert_string_equal(kcfg_file, path);
    assert_null(jwks);
    sm_config_free(opts, NOPTS);
    clear_env();
}

/* ---- key=value lines -------------------------------------------------------------------- */

static void test_kv_lines_keep_commas_equals_and_hashes_in_values(void **state)
{
    (void)state;
    sm_error err = {0};
    char **v = sm_kv_lines_parse("# SASL over TLS\n"
                                 "\n"
                                 "security.protocol=SASL_SSL\n"
                                 "  sasl.username = smpost \n"
                                 "sasl.password=a,b=c#d \r\n"
                                 "\t# indented comment\n"
                                 "ssl.ca.location=/etc/ca.pem",
                                 "F", &err);
    assert_non_null(v);
    assert_string_equal(v[0], "security.protocol=SASL_SSL");
    assert_string_equal(v[1], "sasl.username=smpost ");
    assert_string_equal(v[2], "sasl.password=a,b=c#d ");
    assert_string_equal(v[3], "ssl.ca.location=/etc/ca.pem");
    assert_null(v[4]);
    sm_strv_free(v);
    v = sm_kv_lines_parse("", "F", &err);
    assert_non_null(v);
    assert_null(v[0]);
    sm_strv_free(v);
}

static void test_kv_bad_line_is_named_by_number_without_its_text(void **state)
{
    (void)state;
    sm_error err = {0};
    assert_null(sm_kv_lines_parse("a=1\n# c\n\nsasl.password MARKER\n", "SMPOST_KAFKA_CONFIG_FILE",
                                  &err));
    assert_string_equal(err.message, "SMPOST_KAFKA_CONFIG_FILE line 4: not key=value (no '=')");
    assert_null(sm_kv_lines_parse("a=1\n  =MARKER\n", "F", &err));
    assert_string_equal(err.message, "F line 2: the key before '=' is empty");
}

static void test_kafka_config_file_comes_before_the_list(void **state)
{
    (void)state;
    sm_error err = {0};
    const char *path = write_file("kafka.properties", "linger.ms=5\nsasl.password=x,y\n", 30);
    char **v = sm_kafka_config_load(path, "SMPOST_KAFKA_CONFIG_FILE", "linger.ms=1,acks=all", &err);
    assert_non_null(v);
    assert_string_equal(v[0], "linger.ms=5");
    assert_string_equal(v[1], "sasl.password=x,y");
    assert_string_equal(v[2], "linger.ms=1");
    assert_string_equal(v[3], "acks=all");
    assert_null(v[4]);
    sm_strv_free(v);
    v = sm_kafka_config_load(NULL, "X", NULL, &err);
    assert_non_null(v);
    assert_null(v[0]);
    sm_strv_free(v);
    path = write_file("bad.properties", "a=1\nMARKER\n", 11);
    assert_null(sm_kafka_config_load(path, "SMPOST_KAFKA_CONFIG_FILE", NULL, &err));
    assert_non_null(strstr(err.message, "SMPOST_KAFKA_CONFIG_FILE"));
    assert_non_null(strstr(err.message, "line 2"));
    assert_no_marker(err.message);
}

/* ---- redaction -------------------------------------------------------------------------- */

static void test_kafka_secret_keys_are_redacted(void **state)
{
    (void)state;
    char buf[100];
    assert_string_equal(sm_redact_kv("sasl.password=MARKER", buf, sizeof buf), "sasl.password=***");
    assert_string_equal(sm_redact_kv("ssl.key.password=MARKER", buf, sizeof buf),
                        "ssl.key.password=***");
    assert_string_equal(sm_redact_kv("sasl.oauthbearer.client.secret=MARKER", buf, sizeof buf),
                        "sasl.oauthbearer.client.secret=***");
    assert_string_equal(sm_redact_kv("ssl.key.pem=MARKER", buf, sizeof buf), "ssl.key.pem=***");
    assert_string_equal(sm_redact_kv("MARKER", buf, sizeof buf), "***");
    assert_string_equal(sm_redact_kv("sasl.username=smpost", buf, sizeof buf),
                        "sasl.username=smpost");
}

static void test_url_redaction_stops_at_the_field_end_of_its_kind(void **state)
{
    (void)state;
    char buf[200];
    /* in a connection string only ';' ends a value: '&' may be in the password */
    assert_string_equal(sm_log_redact_url("mssql:host=h;password=MAR&KER;database=d", buf,
                                          sizeof buf),
                        "mssql:host=h;password=***;database=d");
    assert_string_equal(sm_log_redact_url("mongodb://u:MA:R@KER@h:1/db?pwd=MARKER&w=1", buf,
                                          sizeof buf),
                        "mongodb://***@h:1/db?pwd=***&w=1");
    /* a MongoDB URI's client key password (es_mongo_tls.c), whatever the case */
    assert_string_equal(
        sm_log_redact_url("mongodb://u:MARKER@h/db?tls=true&tlsCertificateKeyFile=/k.pem&"
                          "tlsCertificateKeyFilePassword=MARKER&tlsCAFile=/ca.pem", buf,
                          sizeof buf),
        "mongodb://***@h/db?tls=true&tlsCertificateKeyFile=/k.pem&"
        "tlsCertificateKeyFilePassword=***&tlsCAFile=/ca.pem");
    assert_string_equal(sm_log_redact_url("mongodb://h/db?TLSCERTIFICATEKEYFILEPASSWORD=MARKER",
                                          buf, sizeof buf),
                        "mongodb://h/db?TLSCERTIFICATEKEYFILEPASSWORD=***");
    /* a key that only contains the word is not a password */
    assert_string_equal(sm_log_redact_url("mongodb://h/db?passwordless=1", buf, sizeof buf),
                        "mongodb://h/db?passwordless=1");
}

/* ---- example passwords ------------------------------------------------------------------ */

static void test_documented_example_passwords_are_refused_naming_the_setting(void **state)
{
    (void)state;
    sm_error err = {0};
    const char *refused[] = {
        "mongodb://smpost:Change-Me-Smpost-2024@mongo:27017/socialMedia",
        "mongodb://smpost:CHANGEME@mongo/socialMedia",
        "mongodb://smpost:change%2Dme@mongo/socialMedia", /* percent-encoded */
        "mssql:host=mssql;port=1433;user=smpost;password=Change-Me-Smpost-2024;database=smpost",
        "mssql:host=mssql;user=sa;Password=Change-Me-Sa-2024;database=smpost",
        "mssql:host=mssql;user=sa;password= changeme ;database=smpost", /* trimmed by mssql: */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(sm_secret_refuse_example_url("SMPOST_X", refused[i], false, &err),
                         SM_ERR_INVALID);
        assert_non_null(strstr(err.message, "SMPOST_X holds an example password"));
        assert_null(strstr(err.message, "hange"));
        assert_null(strstr(err.message, "HANGE"));
        assert_int_equal(sm_secret_refuse_example_url("SMPOST_X", refused[i], true, &err), SM_OK);
    }
    const char *accepted[] = {
        "mongodb://smpost:Xq7-long-own-password@mongo/socialMedia",
        "mongodb://changeme@mongo/socialMedia", /* a user name, no password */
        "mssql:host=h;user=changeme;password=Own-Pass-99;database=d",
        "mssql:host=h;user=u;password=Smpost-test-1;database=d", /* the CI stand-in's */
        "sqlite:var/password=changeme", NULL,
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
        assert_int_equal(sm_secret_refuse_example_url("SMPOST_X", accepted[i], false, &err), SM_OK);
}

static void test_example_kafka_password_is_refused_naming_key_and_setting(void **state)
{
    (void)state;
    sm_error err = {0};
    char a[] = "sasl.username=changeme", b[] = "sasl.password=changeme";
    char *kv[] = {a, b, NULL};
    assert_int_equal(sm_secret_refuse_example_kv("SMPOST_KAFKA_CONFIG_FILE", kv, false, &err),
                     SM_ERR_INVALID);
    assert_non_null(strstr(err.message, "sasl.password in SMPOST_KAFKA_CONFIG_FILE holds"));
    assert_null(strstr(err.message, "changeme"));
    assert_int_equal(sm_secret_refuse_example_kv("SMPOST_KAFKA_CONFIG_FILE", kv, true, &err),
                     SM_OK);
    char c[] = "sasl.password=Own,Pass=99";
    char *ok[] = {a, c, NULL};
    assert_int_equal(sm_secret_refuse_example_kv("S", ok, false, &err), SM_OK);
}

static void test_allow_flag_is_read_from_the_environment(void **state)
{
    (void)state;
    unsetenv(SM_SECRET_ALLOW_EXAMPLES_ENV);
    assert_false(sm_secret_examples_allowed());
    setenv(SM_SECRET_ALLOW_EXAMPLES_ENV, "0", 1);
    assert_false(sm_secret_examples_allowed());
    setenv(SM_SECRET_ALLOW_EXAMPLES_ENV, "1", 1);
    assert_true(sm_secret_examples_allowed());
    unsetenv(SM_SECRET_ALLOW_EXAMPLES_ENV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_file_loses_one_trailing_newline_only),
        cmocka_unit_test(test_secret_file_missing_or_binary_names_setting_and_path),
        cmocka_unit_test(test_config_name_file_gives_the_value_of_name),
        cmocka_unit_test(test_config_name_and_name_file_together_are_refused_naming_both),
        cmocka_unit_test(test_config_name_file_that_cannot_be_read_stops_the_start),
        cmocka_unit_test(test_config_name_file_leaves_options_of_their_own_alone),
        cmocka_unit_test(test_kv_lines_keep_commas_equals_and_hashes_in_values),
        cmocka_unit_test(test_kv_bad_line_is_named_by_number_without_its_text),
        cmocka_unit_test(test_kafka_config_file_comes_before_the_list),
        cmocka_unit_test(test_kafka_secret_keys_are_redacted),
        cmocka_unit_test(test_url_redaction_stops_at_the_field_end_of_its_kind),
        cmocka_unit_test(test_documented_example_passwords_are_refused_naming_the_setting),
        cmocka_unit_test(test_example_kafka_password_is_refused_naming_key_and_setting),
        cmocka_unit_test(test_allow_flag_is_read_from_the_environment),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
