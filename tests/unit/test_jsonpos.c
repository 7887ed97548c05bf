/*
 * jsonpos: the line a config error names — the key at a path, not the
 * first key of that name; an array element's line; nothing for a path
 * that is not there, for text that is not JSON, or past the depth limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/jsonpos.h"

static const char CONFIG[] = "{ \"data_dir\": \"d\",\n"       /* 1 */
                             "  \"listeners\": [\n"           /* 2 */
                             "    { \"type\": \"tcp\",\n"     /* 3 */
                             "      \"bind\": \"x\" },\n"     /* 4 */
                             "    {\n"                        /* 5 */
                             "      \"bind\": \"a\\\"]}\",\n" /* 6: quotes and brackets */
                             "      \"type\": \"tls\" } ],\n" /* 7 */
                             "  \"limits\": { \"a\": [1, {\"type\": 2}],\n" /* 8 */
                             "    \"type\": 3 }\n"                          /* 9 */
                             "}\n";

static int at(const char *path)
{
    return jsonpos_line(CONFIG, strlen(CONFIG), path);
}

static void test_a_key_is_found_at_its_path_not_its_first_occurrence(void **state)
{
    (void)state;
    assert_int_equal(at("data_dir"), 1);
    assert_int_equal(at("listeners"), 2);
    assert_int_equal(at("listeners[0].type"), 3);
    assert_int_equal(at("listeners[1].type"), 7);
    assert_int_equal(at("listeners[1].bind"), 6);
    assert_int_equal(at("limits.type"), 9);
    assert_int_equal(at("limits.a[1].type"), 8);
}

static void test_an_element_is_found_at_its_line(void **state)
{
    (void)state;
    assert_int_equal(at("listeners[0]"), 3);
    assert_int_equal(at("listeners[1]"), 5);
    assert_int_equal(at("limits.a[0]"), 8);
}

static void test_what_is_not_there_is_line_0(void **state)
{
    (void)state;
    assert_int_equal(at("listeners[2]"), 0);
    assert_int_equal(at("listeners[1].crl_file"), 0);
    assert_int_equal(at("data_dir.x"), 0); /* a string has no keys */
    assert_int_equal(at("limits[0]"), 0);  /* an object has no elements */
    assert_int_equal(at(""), 0);
    assert_int_equal(at("a..b"), 0);
    assert_int_equal(at("listeners[x]"), 0);
    assert_int_equal(jsonpos_line(NULL, 0, "a"), 0);
}

/* The fuzzer's find: "\/ns" is the key "/ns" to jansson, so to us too. */
static void test_a_key_spelled_with_escapes_is_found(void **state)
{
    (void)state;
    static const char text[] = "{\"a\": 1,\n"
                               " \"\\/ns\": [],\n"
                               " \"t\\u00e9st\\\"q\": 2,\n"
                               " \"\\ud83d\\ude00\": 3,\n"
                               " \"\\ud83d\": 4}\n";
    assert_int_equal(jsonpos_line(text, strlen(text), "/ns"), 2);
    assert_int_equal(jsonpos_line(text, strlen(text), "t\xc3\xa9st\"q"), 3);
    assert_int_equal(jsonpos_line(text, strlen(text), "\xf0\x9f\x98\x80"), 4);
    assert_int_equal(jsonpos_line(text, strlen(text), "\\/ns"), 0); /* the raw spelling */
    assert_int_equal(jsonpos_line(text, strlen(text), "\xed\xa0\xbd"), 0); /* a lone surrogate */
}

/* The fuzzer's second find: jansson drops a NUL byte straight after a
 * number or a literal, and accepts the text. */
static void test_a_nul_after_a_number_is_read_as_jansson_reads_it(void **state)
{
    (void)state;
    static const char text[] = "{\"a\": 2\0,\n \"b\": true\0,\n \"c\": [1\0]}";
    size_t len = sizeof text - 1;
    json_t *doc = json_loadb(text, len, 0, NULL);
    assert_non_null(doc); /* what the scanner must follow */
    json_decref(doc);
    assert_int_equal(jsonpos_line(text, len, "b"), 2);
    assert_int_equal(jsonpos_line(text, len, "c"), 3);
    assert_int_equal(jsonpos_line(text, len, "c[0]"), 3);
}

static void test_broken_or_deep_text_is_line_0(void **state)
{
    (void)state;
    static const char *const broken[] = {
        "{\"a\" 1}", "{\"b\": [1, 2}, \"a\": 1}", "{\"a", "[", "{\"b\":1 \"a\":2}", "{\"a\\", ""};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++)
        assert_int_equal(jsonpos_line(broken[i], strlen(broken[i]), "a"), 0);
    char deep[400], path[400];
    size_t n = 0, m = 0;
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(deep + n, sizeof deep - n, "[");
        m += (size_t)snprintf(path + m, sizeof path - m, "[0]");
    }
    assert_int_equal(jsonpos_line(deep, n, path), 0);
    /* Within the limit it is found. */
    assert_int_equal(jsonpos_line("[[[\n1]]]", 8, "[0][0][0]"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_key_is_found_at_its_path_not_its_first_occurrence),
        cmocka_unit_test(test_an_element_is_found_at_its_line),
        cmocka_unit_test(test_what_is_not_there_is_line_0),
        cmocka_unit_test(test_a_key_spelled_with_escapes_is_found),
        cmocka_unit_test(test_a_nul_after_a_number_is_read_as_jansson_reads_it),
        cmocka_unit_test(test_broken_or_deep_text_is_line_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
