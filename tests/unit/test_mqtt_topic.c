/*
 * Topic rules of MQTT 3.1.1 / 5.0 chapter 4.7: which names and filters are
 * valid, how `$share/GROUP/FILTER` splits, and which filters match which
 * names, with the examples of the specifications.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

static bytes_t lit(const char *s)
{
    return bytes_of_cstr(s);
}

static bool matches(const char *filter, const char *topic)
{
    return mqtt_topic_matches(lit(filter), lit(topic));
}

/* ---- UTF-8 ---- */

static void test_utf8_accepts_well_formed_text(void **state)
{
    (void)state;
    static const uint8_t spec_example[] = {0x41, 0xF0, 0xAA, 0x9B, 0x94}; /* "A" U+2A6D4 */
    static const uint8_t edges[] = {0x7F,                                 /* U+007F */
                                    0xC2, 0x80,                           /* U+0080 */
                                    0xDF, 0xBF,                           /* U+07FF */
                                    0xE0, 0xA0, 0x80,                     /* U+0800 */
                                    0xED, 0x9F, 0xBF,                     /* U+D7FF */
                                    0xEE, 0x80, 0x80,                     /* U+E000 */
                                    0xEF, 0xBB, 0xBF,                     /* U+FEFF */
                                    0xF0, 0x90, 0x80, 0x80,               /* U+10000 */
                                    0xF4, 0x8F, 0xBF, 0xBF};              /* U+10FFFF */
    assert_true(mqtt_utf8_valid(spec_example, sizeof spec_example));
    assert_true(mqtt_utf8_valid(edges, sizeof edges));
    assert_true(mqtt_utf8_valid(NULL, 0));
    assert_true(mqtt_utf8_valid((const uint8_t *)"sport/tennis", 12));
}

static void test_utf8_rejects_nul_surrogates_overlong_and_broken(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t bytes[4];
        size_t n;
    } bad[] = {
        {"U+0000", {0x00}, 1},
        {"U+D800", {0xED, 0xA0, 0x80}, 3},
        {"U+DBFF", {0xED, 0xAF, 0xBF}, 3},
        {"U+DC00", {0xED, 0xB0, 0x80}, 3},
        {"U+DFFF", {0xED, 0xBF, 0xBF}, 3},
        {"overlong U+0000", {0xC0, 0x80}, 2},
        {"overlong '/'", {0xC0, 0xAF}, 2},
        {"overlong U+007F", {0xC1, 0xBF}, 2},
        {"overlong U+07FF", {0xE0, 0x9F, 0xBF}, 3},
        {"overlong U+FFFF", {0xF0, 0x8F, 0xBF, 0xBF}, 4},
        {"U+110000", {0xF4, 0x90, 0x80, 0x80}, 4},
        {"lead byte F5", {0xF5, 0x80, 0x80, 0x80}, 4},
        {"five-byte lead", {0xF8, 0x88, 0x80, 0x80}, 4},
        {"lone continuation", {0x80}, 1},
        {"truncated two-byte", {0xC2}, 1},
        {"truncated three-byte", {0xE2, 0x82}, 2},
        {"truncated four-byte", {0xF0, 0x9F, 0x98}, 3},
        {"bad continuation", {0xE2, 0x28, 0xA1}, 3},
        {"0xFF", {0xFF}, 1},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        uint8_t s[8] = {'o', 'k'};
        memcpy(s + 2, bad[i].bytes, bad[i].n);
        if (mqtt_utf8_valid(s, 2 + bad[i].n))
            fail_msg("accepted %s", bad[i].what);
    }
}

static void test_utf8_never_reads_past_the_length(void **state)
{
    (void)state;
    /* The bytes after `len` would complete each sequence; they are not part
     * of the string, so it ends in a truncated sequence. */
    static const uint8_t two[] = {'a', 0xC3, 0xA9};
    static const uint8_t three[] = {'a', 0xE2, 0x82, 0xAC};
    static const uint8_t four[] = {'a', 0xF0, 0x9F, 0x98, 0x80};
    assert_true(mqtt_utf8_valid(two, 3));
    assert_false(mqtt_utf8_valid(two, 2));
    assert_true(mqtt_utf8_valid(three, 4));
    assert_false(mqtt_utf8_valid(three, 3));
    assert_false(mqtt_utf8_valid(three, 2));
    assert_true(mqtt_utf8_valid(four, 5));
    assert_false(mqtt_utf8_valid(four, 4));
    assert_false(mqtt_utf8_valid(four, 3));
}

/* ---- topic names ---- */

static void test_topic_name_valid(void **state)
{
    (void)state;
    const char *good[] = {"a",
                          "a/b",
                          "/",
                          "//",
                          "/finance",
                          "sport/tennis/player1",
                          "$SYS/broker/load",
                          "with space",
                          "a//b",
                          "ACCOUNTS"};
    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        if (!mqtt_topic_name_valid(lit(good[i])))
            fail_msg("rejected name \"%s\"", good[i]);
}

static void test_topic_name_rejects_empty_wildcards_and_bad_utf8(void **state)
{
    (void)state;
    const char *bad[] = {"", "+", "#", "a/+", "a/#", "sport+", "a#b"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (mqtt_topic_name_valid(lit(bad[i])))
            fail_msg("accepted name \"%s\"", bad[i]);
    static const uint8_t nul[] = {'a', 0x00, 'b'};
    static const uint8_t surrogate[] = {'a', 0xED, 0xA0, 0x80};
    assert_false(mqtt_topic_name_valid((bytes_t){nul, sizeof nul}));
    assert_false(mqtt_topic_name_valid((bytes_t){surrogate, sizeof surrogate}));
}

static void test_topic_name_length_limit_is_65535(void **state)
{
    (void)state;
    uint8_t *s = malloc(MQTT_MAX_TOPIC_LEN + 1);
    assert_non_null(s);
    memset(s, 'a', MQTT_MAX_TOPIC_LEN + 1);
    assert_true(mqtt_topic_name_valid((bytes_t){s, MQTT_MAX_TOPIC_LEN}));
    assert_false(mqtt_topic_name_valid((bytes_t){s, MQTT_MAX_TOPIC_LEN + 1}));
    assert_true(mqtt_topic_filter_valid((bytes_t){s, MQTT_MAX_TOPIC_LEN}));
    assert_false(mqtt_topic_filter_valid((bytes_t){s, MQTT_MAX_TOPIC_LEN + 1}));
    free(s);
}

/* ---- topic filters ---- */

static void test_topic_filter_valid(void **state)
{
    (void)state;
    const char *good[] = {"#",     "+",  "sport/#",    "sport/tennis/#",  "sport/+",
                          "+/+",   "/+", "+/tennis/#", "sport/+/player1", "/",
                          "a//b",  "//", "+//+",       "$SYS/#",          "$SYS/+/x",
                          "a/b/c", "/#", "+/#"};
    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        if (!mqtt_topic_filter_valid(lit(good[i])))
            fail_msg("rejected filter \"%s\"", good[i]);
}

static void test_topic_filter_rejects_misplaced_wildcards(void **state)
{
    (void)state;
    /* Spec 4.7.1: "sport/tennis#" and "sport/tennis/#/ranking" are not
     * valid; "sport+" is not valid. */
    const char *bad[] = {"",
                         "sport/tennis#",
                         "sport/tennis/#/ranking",
                         "sport+",
                         "#/a",
                         "a#",
                         "++",
                         "+a",
                         "a+/b",
                         "a/b+",
                         "##",
                         "#+",
                         "+#"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (mqtt_topic_filter_valid(lit(bad[i])))
            fail_msg("accepted filter \"%s\"", bad[i]);
    static const uint8_t nul[] = {'a', '/', 0x00};
    assert_false(mqtt_topic_filter_valid((bytes_t){nul, sizeof nul}));
}

/* ---- shared subscriptions ---- */

static void test_shared_split_separates_group_and_filter(void **state)
{
    (void)state;
    bytes_t group, inner;
    assert_true(mqtt_shared_split(lit("$share/consumers/sport/tennis/+"), &group, &inner));
    assert_int_equal(group.len, 9);
    assert_memory_equal(group.data, "consumers", 9);
    assert_int_equal(inner.len, 14);
    assert_memory_equal(inner.data, "sport/tennis/+", 14);

    assert_true(mqtt_shared_split(lit("$share/g//a"), &group, &inner));
    assert_int_equal(group.len, 1);
    assert_int_equal(inner.len, 2); /* "/a": the filter's first level is empty */
    assert_memory_equal(inner.data, "/a", 2);

    assert_true(mqtt_shared_split(lit("$share/g"), &group, &inner));
    assert_int_equal(group.len, 1);
    assert_int_equal(inner.len, 0);
}

static void test_shared_split_refuses_plain_filters(void **state)
{
    (void)state;
    bytes_t group, inner;
    const char *plain[] = {"sport/#",     "$share", "$sharegroup/a", "$SHARE/g/a", "share/g/a",
                           "/$share/g/a", "#"};
    for (size_t i = 0; i < ARRAY_LEN(plain); i++)
        if (mqtt_shared_split(lit(plain[i]), &group, &inner))
            fail_msg("split \"%s\"", plain[i]);
}

static void test_shared_filter_validity(void **state)
{
    (void)state;
    const char *good[] = {"$share/g/a", "$share/g/#", "$share/g/+/b", "$share/g//",
                          "$share/group-1/$SYS/#"};
    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        if (!mqtt_topic_filter_valid(lit(good[i])))
            fail_msg("rejected shared filter \"%s\"", good[i]);
    /* The group must be non-empty without wildcards, and a filter must
     * follow [MQTT-4.8.2-1, 4.8.2-2]. */
    const char *bad[] = {"$share/g",   "$share/g/",   "$share//a",   "$share/",     "$share/+/a",
                         "$share/#/a", "$share/g+/a", "$share/g/a#", "$share/g/#/a"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (mqtt_topic_filter_valid(lit(bad[i])))
            fail_msg("accepted shared filter \"%s\"", bad[i]);
    static const uint8_t bad_group[] = {'$', 's', 'h', 'a', 'r', 'e', '/', 0xC0, 0x80, '/', 'a'};
    assert_false(mqtt_topic_filter_valid((bytes_t){bad_group, sizeof bad_group}));
}

/* ---- matching ---- */

static void test_match_multi_level_wildcard_spec_examples(void **state)
{
    (void)state;
    /* Spec 4.7.1.2. */
    assert_true(matches("sport/tennis/player1/#", "sport/tennis/player1"));
    assert_true(matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
    assert_true(matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
    assert_true(matches("sport/#", "sport"));
    assert_true(matches("#", "sport/tennis/player1"));
    assert_true(matches("#", "/"));
    assert_false(matches("sport/tennis/player1/#", "sport/tennis/player2"));
    assert_false(matches("sport/tennis/player1/#", "sport/tennis"));
}

static void test_match_parent_level_a_hash_matches_a(void **state)
{
    (void)state;
    assert_true(matches("a/#", "a"));
    assert_true(matches("a/#", "a/"));
    assert_true(matches("a/#", "a/b/c"));
    assert_true(matches("+/#", "a"));
    assert_false(matches("a/#", "ab"));
    assert_false(matches("a/#", "b"));
    assert_false(matches("a/b/#", "a"));
}

static void test_match_single_level_wildcard_spec_examples(void **state)
{
    (void)state;
    /* Spec 4.7.1.3. */
    assert_true(matches("sport/tennis/+", "sport/tennis/player1"));
    assert_true(matches("sport/tennis/+", "sport/tennis/player2"));
    assert_false(matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert_false(matches("sport/+", "sport"));
    assert_true(matches("sport/+", "sport/"));
    assert_true(matches("+/+", "/finance"));
    assert_true(matches("/+", "/finance"));
    assert_false(matches("+", "/finance"));
    assert_true(matches("+/tennis/#", "sport/tennis/player1"));
    assert_true(matches("sport/+/player1", "sport/tennis/player1"));
    assert_false(matches("sport/+/player1", "sport/tennis/player2"));
}

static void test_match_dollar_topics_not_matched_by_leading_wildcards(void **state)
{
    (void)state;
    /* Spec 4.7.2. */
    assert_false(matches("#", "$SYS/broker/load"));
    assert_false(matches("#", "$SYS"));
    assert_false(matches("+/monitor/Clients", "$SYS/monitor/Clients"));
    assert_false(matches("+", "$SYS"));
    assert_false(matches("+/#", "$SYS/x"));
    assert_true(matches("$SYS/#", "$SYS/monitor/Clients"));
    assert_true(matches("$SYS/#", "$SYS"));
    assert_true(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    assert_true(matches("$SYS", "$SYS"));
    /* Only a leading '$' is special. */
    assert_true(matches("+/$b", "a/$b"));
    assert_true(matches("a/+", "a/$b"));
    assert_true(matches("a/#", "a/$b/c"));
}

static void test_match_empty_levels(void **state)
{
    (void)state;
    assert_true(matches("a//b", "a//b"));
    assert_true(matches("a/+/b", "a//b"));
    assert_false(matches("a/b", "a//b"));
    assert_false(matches("a//b", "a/b"));
    assert_true(matches("+/+/+", "//"));
    assert_true(matches("/#", "/a"));
    assert_false(matches("/+", "a/b"));
    assert_true(matches("a/+/", "a/x/"));
    assert_false(matches("a/+/", "a/x"));
}

static void test_match_slash_alone(void **state)
{
    (void)state;
    assert_true(matches("/", "/"));
    assert_true(matches("+/+", "/"));
    assert_true(matches("/+", "/"));
    assert_true(matches("+/", "/"));
    assert_true(matches("/#", "/"));
    assert_true(matches("#", "/"));
    assert_false(matches("+", "/"));
    assert_false(matches("/", "a"));
    assert_false(matches("/", "//"));
}

static void test_match_is_exact_and_case_sensitive(void **state)
{
    (void)state;
    assert_true(matches("sport/tennis", "sport/tennis"));
    assert_false(matches("ACCOUNTS", "Accounts"));
    assert_false(matches("a", "ab"));
    assert_false(matches("ab", "a"));
    assert_false(matches("a/b", "a/b/c"));
    assert_false(matches("a/b/c", "a/b"));
    assert_false(matches("a/b", "a/bc"));
    assert_false(matches("a/bc", "a/b"));
    assert_false(matches("a/+", "a"));
    assert_false(matches("+/b", "a/c"));
    assert_true(matches("a/b c", "a/b c"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_accepts_well_formed_text),
        cmocka_unit_test(test_utf8_rejects_nul_surrogates_overlong_and_broken),
        cmocka_unit_test(test_utf8_never_reads_past_the_length),
        cmocka_unit_test(test_topic_name_valid),
        cmocka_unit_test(test_topic_name_rejects_empty_wildcards_and_bad_utf8),
        cmocka_unit_test(test_topic_name_length_limit_is_65535),
        cmocka_unit_test(test_topic_filter_valid),
        cmocka_unit_test(test_topic_filter_rejects_misplaced_wildcards),
        cmocka_unit_test(test_shared_split_separates_group_and_filter),
        cmocka_unit_test(test_shared_split_refuses_plain_filters),
        cmocka_unit_test(test_shared_filter_validity),
        cmocka_unit_test(test_match_multi_level_wildcard_spec_examples),
        cmocka_unit_test(test_match_parent_level_a_hash_matches_a),
        cmocka_unit_test(test_match_single_level_wildcard_spec_examples),
        cmocka_unit_test(test_match_dollar_topics_not_matched_by_leading_wildcards),
        cmocka_unit_test(test_match_empty_levels),
        cmocka_unit_test(test_match_slash_alone),
        cmocka_unit_test(test_match_is_exact_and_case_sensitive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
