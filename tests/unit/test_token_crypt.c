/* Unit tests of token_crypt: AES-256-GCM sealing of stored tokens, bound to row and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/token_crypt.h"

#define KEY   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define OTHER "HxwdHhscGRoYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE="
#define ROW   "c0c0c0c0-0000-4000-8000-000000000001"

static void test_roundtrip_and_binding(void **state)
{
    (void)state;
    struct err e;
    err_clear(&e);
    struct token_crypt *t = token_crypt_new(KEY, &e);
    assert_non_null(t);
    char *sealed = token_crypt_seal(t, "APP_USR-secret-token", ROW, "access_token");
    assert_int_equal(strncmp(sealed, "enc:v1:", 7), 0);
    assert_null(strstr(sealed, "secret"));
    /* Two seals of one value differ (random nonce). */
    char *again = token_crypt_seal(t, "APP_USR-secret-token", ROW, "access_token");
    assert_string_not_equal(sealed, again);
    char *plain = token_crypt_open(t, sealed, ROW, "access_token", &e);
    assert_non_null(plain);
    assert_string_equal(plain, "APP_USR-secret-token");
    free(plain);
    /* Moved to another column or row: refused. */
    assert_null(token_crypt_open(t, sealed, ROW, "refresh_token", &e));
    assert_null(
        token_crypt_open(t, sealed, "c0c0c0c0-0000-4000-8000-000000000002", "access_token", &e));
    /* Tampered: refused. */
    char *bad = strdup(sealed);
    bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
    assert_null(token_crypt_open(t, bad, ROW, "access_token", &e));
    free(bad);
    /* Another key: refused. */
    struct token_crypt *o = token_crypt_new(OTHER, &e);
    assert_null(token_crypt_open(o, sealed, ROW, "access_token", &e));
    /* Plaintext (written before encryption was on) reads as is. */
    plain = token_crypt_open(t, "TG-plain", ROW, "refresh_token", &e);
    assert_string_equal(plain, "TG-plain");
    free(plain);
    token_crypt_free(o);
    free(sealed);
    free(again);
    token_crypt_free(t);
}

static void test_without_key(void **state)
{
    (void)state;
    struct err e;
    err_clear(&e);
    struct token_crypt *none = token_crypt_new(NULL, &e);
    char *s = token_crypt_seal(none, "x", ROW, "access_token");
    assert_string_equal(s, "x");
    free(s);
    /* A sealed value cannot be read without the key. */
    assert_null(token_crypt_open(none, "enc:v1:AAAA", ROW, "access_token", &e));
    assert_non_null(strstr(e.message, "TOKEN_ENCRYPTION_KEY"));
    token_crypt_free(none);
    assert_null(token_crypt_new("c2hvcnQ=", &e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_roundtrip_and_binding),
                                       cmocka_unit_test(test_without_key)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
