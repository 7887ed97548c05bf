/*
 * The JSON rules of AWS IoT Device Shadow documents: merging a request's
 * state into a section (null deletes, objects merge, everything else — an
 * array included — replaces whole), the metadata mirror stamped with the
 * time each leaf was set, the delta between desired and reported with its
 * metadata, and the nesting depth a request may not exceed (6).
 *
 * Documents are written with single quotes for readability; js() turns
 * them into JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shadow/doc.h"

/* ---- helpers ---- */

static json_t *js(const char *text)
{
    char *s = strdup(text);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t err;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &err);
    if (!v)
        fail_msg("bad test JSON %s: %s", s, err.text);
    free(s);
    return v;
}

static void assert_json_is(const json_t *got, const char *want_text)
{
    json_t *want = js(want_text);
    if (!json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY) : strdup("(NULL)");
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("got  %s\nwant %s", g, w);
    }
    json_decref(want);
}

/* A section and its metadata, merged with patches at increasing times. */
typedef struct {
    json_t *state, *meta;
} section_t;

static section_t section(void)
{
    return (section_t){json_object(), json_object()};
}

static void merge(section_t *s, const char *patch, int64_t ts)
{
    json_t *p = js(patch);
    shadow_merge(s->state, s->meta, p, ts);
    json_decref(p);
}

static void section_free(section_t *s)
{
    json_decref(s->state);
    json_decref(s->meta);
}

static int depth_of(const char *text)
{
    json_t *v = js(text);
    int d = shadow_depth(v);
    json_decref(v);
    return d;
}

/* {"k1": {"k2": ... {"kN": 1}}}: N levels of objects. */
static json_t *nested(int levels)
{
    json_t *v = json_integer(1);
    for (int i = levels; i > 0; i--) {
        json_t *o = json_object();
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        json_object_set_new(o, key, v);
        v = o;
    }
    return v;
}

/* ---- depth ---- */

static void test_depth_counts_levels_of_objects_and_arrays(void **state)
{
    (void)state;
    assert_int_equal(depth_of("1"), 0);
    assert_int_equal(depth_of("'s'"), 0);
    assert_int_equal(depth_of("null"), 0);
    assert_int_equal(depth_of("{}"), 1);
    assert_int_equal(depth_of("[]"), 1);
    assert_int_equal(depth_of("{'a': 1}"), 1);
    assert_int_equal(depth_of("[1, 2]"), 1);
    assert_int_equal(depth_of("{'a': [1]}"), 2);
    assert_int_equal(depth_of("{'a': {'b': {}}}"), 3);
    assert_int_equal(depth_of("[[[]]]"), 3);
    /* The deepest branch counts, wherever it is. */
    assert_int_equal(depth_of("{'a': 1, 'b': {'c': {'d': [{}]}}, 'e': {}}"), 5);
    assert_int_equal(depth_of("[1, {'x': [2]}, []]"), 3);
}

static void test_depth_limit_boundary_is_six_levels(void **state)
{
    (void)state;
    json_t *six = nested(6), *seven = nested(7);
    assert_int_equal(shadow_depth(six), SHADOW_MAX_DEPTH);
    assert_int_equal(shadow_depth(seven), SHADOW_MAX_DEPTH + 1);
    assert_true(shadow_depth(six) <= SHADOW_MAX_DEPTH);
    assert_true(shadow_depth(seven) > SHADOW_MAX_DEPTH);
    json_decref(six);
    json_decref(seven);
    /* Arrays count as levels too. */
    assert_int_equal(depth_of("{'a': {'b': {'c': {'d': {'e': [1]}}}}}"), 6);
    assert_int_equal(depth_of("{'a': {'b': {'c': {'d': {'e': [[1]]}}}}}"), 7);
    /* The seventh level past a shallow sibling. */
    assert_int_equal(depth_of("{'x': 1, 'y': [{'a': {'b': {'c': {'d': {'e': 1}}}}}], 'z': {}}"), 7);
}

static void test_depth_of_very_deep_values_is_over_the_limit(void **state)
{
    (void)state;
    json_t *deep = nested(500);
    assert_true(shadow_depth(deep) > SHADOW_MAX_DEPTH);
    json_decref(deep);
}

/* ---- metadata ---- */

static void test_metadata_of_mirrors_every_leaf(void **state)
{
    (void)state;
    json_t *v = js("{'a': 1, 'b': {'c': 's', 'd': null}, 'e': [1, {'f': true}, []], 'g': {}}");
    json_t *m = shadow_metadata_of(v, 42);
    assert_json_is(m, "{'a': {'timestamp': 42},"
                      " 'b': {'c': {'timestamp': 42}, 'd': {'timestamp': 42}},"
                      " 'e': [{'timestamp': 42}, {'f': {'timestamp': 42}}, []],"
                      " 'g': {}}");
    json_decref(m);
    json_decref(v);

    json_t *leaf = json_integer(3);
    m = shadow_metadata_of(leaf, -5);
    assert_json_is(m, "{'timestamp': -5}");
    json_decref(m);
    json_decref(leaf);
    m = shadow_metadata_of(json_null(), 1700000000);
    assert_json_is(m, "{'timestamp': 1700000000}");
    json_decref(m);
}

/* ---- merge ---- */

static void test_merge_adds_and_replaces_keys(void **state)
{
    (void)state;
    section_t s = section();
    merge(&s, "{'color': 'red', 'on': true, 'level': 3}", 100);
    assert_json_is(s.state, "{'color': 'red', 'on': true, 'level': 3}");
    assert_json_is(s.meta, "{'color': {'timestamp': 100}, 'on': {'timestamp': 100},"
                           " 'level': {'timestamp': 100}}");
    merge(&s, "{'color': 'blue', 'mode': 'eco'}", 200);
    assert_json_is(s.state, "{'color': 'blue', 'on': true, 'level': 3, 'mode': 'eco'}");
    /* Only what the patch set gets the new time. */
    assert_json_is(s.meta, "{'color': {'timestamp': 200}, 'on': {'timestamp': 100},"
                           " 'level': {'timestamp': 100}, 'mode': {'timestamp': 200}}");
    /* The same value set again is set again. */
    merge(&s, "{'on': true}", 300);
    assert_json_is(json_object_get(s.meta, "on"), "{'timestamp': 300}");
    section_free(&s);
}

static void test_merge_null_deletes_a_key_and_its_metadata(void **state)
{
    (void)state;
    section_t s = section();
    merge(&s, "{'a': 1, 'b': {'c': 2}, 'd': [1]}", 1);
    merge(&s, "{'a': null, 'b': null, 'missing': null}", 2);
    assert_json_is(s.state, "{'d': [1]}");
    assert_json_is(s.meta, "{'d': [{'timestamp': 1}]}");
    section_free(&s);
}

static void test_merge_null_deletes_inside_nested_objects(void **state)
{
    (void)state;
    section_t s = section();
    merge(&s, "{'light': {'color': 'red', 'level': {'min': 1, 'max': 9}}, 'fan': 2}", 1);
    merge(&s, "{'light': {'color': null, 'level': {'max': null, 'step': 2}}}", 2);
    assert_json_is(s.state, "{'light': {'level': {'min': 1, 'step': 2}}, 'fan': 2}");
    assert_json_is(s.meta, "{'light': {'level': {'min': {'timestamp': 1},"
                           "                     'step': {'timestamp': 2}}},"
                           " 'fan': {'timestamp': 1}}");
    section_free(&s);
}

static void test_merge_objects_merge_recursively(void **state)
{
    (void)state;
    section_t s = section();
    merge(&s, "{'a': {'b': {'c': 1, 'd': 2}, 'e': 3}}", 1);
    merge(&s, "{'a': {'b': {'c': 10, 'x': 4}}}", 2);
    assert_json_is(s.state, "{'a': {'b': {'c': 10, 'd': 2, 'x': 4}, 'e': 3}}");
    assert_json_is(s.meta, "{'a': {'b': {'c': {'timestamp': 2}, 'd': {'timestamp': 1},"
                           "             'x': {'timestamp': 2}}, 'e': {'timestamp': 1}}}");
    /* An empty object changes nothing below it. */
    merge(&s, "{'a': {}}", 3);
    assert_json_is(s.state, "{'a': {'b': {'c': 10, 'd': 2, 'x': 4}, 'e': 3}}");
    section_free(&s);
}

static void test_merge_replaces_arrays_whole(void **state)
{
    (void)state;
    section_t s = section();
    merge(&s, "{'list': [1, 2, 3], 'objs': [{'a': 1}, {'b': 2}]}", 1);
    merge(&s, "{'list': [9], 'objs': [{'c': 3}]}", 2);
    assert_json_is(s.state, "{'list': [9], 'objs': [{'c': 3}]}");
    assert_json_is(s.meta, "{'list': [{'timestamp': 2}], 'objs': [{'c': {'timestamp': 2}}]}");
    /* Nulls inside an array are values, not deletions. */
    merge(&s, "{'list': [null, 1]}", 3);
    assert_json_is(json_object_get(s.state, "list"), "[null, 1]");
    assert_json_is(json_object_get(s.meta, "list"), "[{'timestamp': 3}, {'timestamp': 3}]");
    /* An empty array is a value too. */
    merge(&s, "{'list': []}", 4);
    assert_json_is(json_object_get(s.state, "list"), "[]");
    section_free(&s);
}

static void test_merge_a_scalar_replaces_an_object_and_back(void **state)
{
    (void)state;
    section_t s = section();
    merge(&s, "{'a': {'b': 1, 'c': {'d': 2}}}", 1);
    merge(&s, "{'a': 5}", 2);
    assert_json_is(s.state, "{'a': 5}");
    assert_json_is(s.meta, "{'a': {'timestamp': 2}}");
    /* An object over a scalar: its metadata is that of the object alone,
     * nothing left of the scalar's. */
    merge(&s, "{'a': {'x': 7}}", 3);
    assert_json_is(s.state, "{'a': {'x': 7}}");
    assert_json_is(s.meta, "{'a': {'x': {'timestamp': 3}}}");
    /* Even an empty object replaces a scalar. */
    merge(&s, "{'a': 'str'}", 4);
    merge(&s, "{'a': {}}", 5);
    assert_json_is(s.state, "{'a': {}}");
    assert_json_is(s.meta, "{'a': {}}");
    /* An object over an array. */
    merge(&s, "{'b': [1, 2]}", 6);
    merge(&s, "{'b': {'y': null, 'z': 1}}", 7);
    assert_json_is(json_object_get(s.state, "b"), "{'z': 1}");
    assert_json_is(json_object_get(s.meta, "b"), "{'z': {'timestamp': 7}}");
    section_free(&s);
}

static void test_merge_copies_the_patch(void **state)
{
    (void)state;
    section_t s = section();
    json_t *p = js("{'a': [1, {'b': 2}], 'c': {'d': 'x'}}");
    shadow_merge(s.state, s.meta, p, 1);
    json_array_append_new(json_object_get(p, "a"), json_integer(3));
    json_object_set_new(json_object_get(p, "c"), "d", json_string("changed"));
    json_decref(p);
    assert_json_is(s.state, "{'a': [1, {'b': 2}], 'c': {'d': 'x'}}");
    section_free(&s);
}

static void test_merge_a_user_key_named_timestamp(void **state)
{
    (void)state;
    section_t s = section();
    merge(&s, "{'a': {'timestamp': 5}}", 1);
    assert_json_is(s.meta, "{'a': {'timestamp': {'timestamp': 1}}}");
    merge(&s, "{'a': {'timestamp': null, 'b': 1}}", 2);
    assert_json_is(s.state, "{'a': {'b': 1}}");
    assert_json_is(s.meta, "{'a': {'b': {'timestamp': 2}}}");
    section_free(&s);
}

/* ---- delta ---- */

static void assert_delta(const char *desired, const char *reported, const char *want)
{
    json_t *d = js(desired), *r = reported ? js(reported) : NULL;
    json_t *delta = shadow_delta(d, r);
    if (!want) {
        if (delta) {
            char *g = json_dumps(delta, JSON_SORT_KEYS);
            fail_msg("expected no delta, got %s", g);
        }
    } else {
        assert_non_null(delta);
        assert_json_is(delta, want);
    }
    json_decref(delta);
    json_decref(d);
    json_decref(r);
}

static void test_delta_of_equal_sections_is_null(void **state)
{
    (void)state;
    assert_delta("{'a': 1, 'b': {'c': [1, 2]}}", "{'a': 1, 'b': {'c': [1, 2]}}", NULL);
    assert_delta("{}", "{'a': 1}", NULL);
    assert_delta("{}", NULL, NULL);
    /* Reported keys that desired does not name do not matter. */
    assert_delta("{'a': 1}", "{'a': 1, 'extra': {'x': 1}}", NULL);
    assert_delta("{'a': {'b': 1}}", "{'a': {'b': 1, 'c': 2}}", NULL);
}

static void test_delta_names_desired_keys_that_differ_or_are_absent(void **state)
{
    (void)state;
    assert_delta("{'a': 1, 'b': 2, 'c': 3}", "{'a': 1, 'b': 20}", "{'b': 2, 'c': 3}");
    assert_delta("{'a': 1}", NULL, "{'a': 1}");
    assert_delta("{'a': 1}", "{}", "{'a': 1}");
    assert_delta("{'a': 'x'}", "{'a': 1}", "{'a': 'x'}");
    assert_delta("{'a': true}", "{'a': false}", "{'a': true}");
    /* A non-object reported section is no help. */
    assert_delta("{'a': 1}", "[1]", "{'a': 1}");
}

static void test_delta_recurses_into_objects_present_in_both(void **state)
{
    (void)state;
    assert_delta("{'light': {'color': 'red', 'level': 3, 'more': {'x': 1, 'y': 2}}}",
                 "{'light': {'color': 'blue', 'level': 3, 'more': {'x': 1, 'y': 3}}}",
                 "{'light': {'color': 'red', 'more': {'y': 2}}}");
    assert_delta("{'a': {'b': {'c': 1}}, 'd': 1}", "{'a': {'b': {'c': 1}}, 'd': 2}", "{'d': 1}");
    /* Desired object over a reported scalar, or absent: the whole object. */
    assert_delta("{'a': {'b': 1, 'c': 2}}", "{'a': 5}", "{'a': {'b': 1, 'c': 2}}");
    assert_delta("{'a': {'b': 1, 'c': 2}}", "{'z': 5}", "{'a': {'b': 1, 'c': 2}}");
    /* A desired scalar over a reported object. */
    assert_delta("{'a': 5}", "{'a': {'b': 1}}", "{'a': 5}");
    /* An empty desired object over a reported one: nothing differs. */
    assert_delta("{'a': {}}", "{'a': {'b': 1}}", NULL);
}

static void test_delta_compares_arrays_whole(void **state)
{
    (void)state;
    assert_delta("{'l': [1, 2, 3]}", "{'l': [1, 2]}", "{'l': [1, 2, 3]}");
    assert_delta("{'l': [1, {'a': 1}]}", "{'l': [1, {'a': 2}]}", "{'l': [1, {'a': 1}]}");
    assert_delta("{'l': [{'a': 1}]}", "{'l': [{'a': 1}]}", NULL);
    assert_delta("{'l': [2, 1]}", "{'l': [1, 2]}", "{'l': [2, 1]}");
}

static void test_delta_of_a_non_object_desired_is_null(void **state)
{
    (void)state;
    assert_null(shadow_delta(NULL, NULL));
    json_t *arr = js("[1]"), *obj = js("{}");
    assert_null(shadow_delta(arr, obj));
    assert_null(shadow_delta(json_null(), obj));
    json_decref(arr);
    json_decref(obj);
}

static void test_delta_is_a_copy(void **state)
{
    (void)state;
    json_t *d = js("{'a': {'b': [1]}}");
    json_t *delta = shadow_delta(d, NULL);
    json_array_append_new(json_object_get(json_object_get(d, "a"), "b"), json_integer(2));
    assert_json_is(delta, "{'a': {'b': [1]}}");
    json_decref(delta);
    json_decref(d);
}

/* ---- delta metadata ---- */

static void test_delta_metadata_covers_exactly_the_delta(void **state)
{
    (void)state;
    section_t desired = section();
    merge(&desired,
          "{'color': 'red', 'level': 3, 'light': {'a': 1, 'b': {'c': 2, 'd': 3}},"
          " 'list': [1, {'x': 2}], 'whole': {'p': 1, 'q': {'r': 2}}}",
          10);
    merge(&desired, "{'light': {'b': {'d': 4}}}", 20);
    json_t *reported = js("{'color': 'red', 'level': 2, 'light': {'a': 1, 'b': {'c': 2, 'd': 3}},"
                          " 'list': [1], 'whole': 5}");
    json_t *delta = shadow_delta(desired.state, reported);
    assert_json_is(delta, "{'level': 3, 'light': {'b': {'d': 4}}, 'list': [1, {'x': 2}],"
                          " 'whole': {'p': 1, 'q': {'r': 2}}}");
    json_t *m = shadow_delta_metadata(delta, desired.meta);
    assert_json_is(m, "{'level': {'timestamp': 10}, 'light': {'b': {'d': {'timestamp': 20}}},"
                      " 'list': [{'timestamp': 10}, {'x': {'timestamp': 10}}],"
                      " 'whole': {'p': {'timestamp': 10}, 'q': {'r': {'timestamp': 10}}}}");
    json_decref(m);
    json_decref(delta);
    json_decref(reported);
    section_free(&desired);
}

static void test_delta_metadata_of_a_user_key_named_timestamp(void **state)
{
    (void)state;
    section_t desired = section();
    merge(&desired, "{'a': {'timestamp': 5, 'b': 1}}", 10);
    json_t *reported = js("{'a': {'timestamp': 6, 'b': 1}}");
    json_t *delta = shadow_delta(desired.state, reported);
    assert_json_is(delta, "{'a': {'timestamp': 5}}");
    json_t *m = shadow_delta_metadata(delta, desired.meta);
    assert_json_is(m, "{'a': {'timestamp': {'timestamp': 10}}}");
    json_decref(m);
    json_decref(delta);
    json_decref(reported);
    section_free(&desired);
}

static void test_delta_metadata_without_metadata_is_empty(void **state)
{
    (void)state;
    json_t *delta = js("{'a': 1, 'b': {'c': 2}}");
    json_t *m = shadow_delta_metadata(delta, NULL);
    assert_json_is(m, "{}");
    json_decref(m);
    json_t *partial = js("{'b': {'timestamp': 9}}");
    m = shadow_delta_metadata(delta, partial);
    assert_json_is(m, "{'b': {'timestamp': 9}}");
    json_decref(m);
    json_decref(partial);
    json_decref(delta);
}

/* Through the service's sequence: desired then reported catching up. */
static void test_delta_shrinks_as_reported_catches_up(void **state)
{
    (void)state;
    section_t desired = section(), reported = section();
    merge(&desired, "{'a': 1, 'b': {'c': 2, 'd': 3}}", 1);
    json_t *delta = shadow_delta(desired.state, reported.state);
    assert_json_is(delta, "{'a': 1, 'b': {'c': 2, 'd': 3}}");
    json_decref(delta);
    merge(&reported, "{'a': 1, 'b': {'c': 2}}", 2);
    delta = shadow_delta(desired.state, reported.state);
    assert_json_is(delta, "{'b': {'d': 3}}");
    json_decref(delta);
    merge(&reported, "{'b': {'d': 3}}", 3);
    assert_null(shadow_delta(desired.state, reported.state));
    merge(&desired, "{'b': {'d': null}}", 4);
    assert_null(shadow_delta(desired.state, reported.state));
    section_free(&desired);
    section_free(&reported);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_counts_levels_of_objects_and_arrays),
        cmocka_unit_test(test_depth_limit_boundary_is_six_levels),
        cmocka_unit_test(test_depth_of_very_deep_values_is_over_the_limit),
        cmocka_unit_test(test_metadata_of_mirrors_every_leaf),
        cmocka_unit_test(test_merge_adds_and_replaces_keys),
        cmocka_unit_test(test_merge_null_deletes_a_key_and_its_metadata),
        cmocka_unit_test(test_merge_null_deletes_inside_nested_objects),
        cmocka_unit_test(test_merge_objects_merge_recursively),
        cmocka_unit_test(test_merge_replaces_arrays_whole),
        cmocka_unit_test(test_merge_a_scalar_replaces_an_object_and_back),
        cmocka_unit_test(test_merge_copies_the_patch),
        cmocka_unit_test(test_merge_a_user_key_named_timestamp),
        cmocka_unit_test(test_delta_of_equal_sections_is_null),
        cmocka_unit_test(test_delta_names_desired_keys_that_differ_or_are_absent),
        cmocka_unit_test(test_delta_recurses_into_objects_present_in_both),
        cmocka_unit_test(test_delta_compares_arrays_whole),
        cmocka_unit_test(test_delta_of_a_non_object_desired_is_null),
        cmocka_unit_test(test_delta_is_a_copy),
        cmocka_unit_test(test_delta_metadata_covers_exactly_the_delta),
        cmocka_unit_test(test_delta_metadata_of_a_user_key_named_timestamp),
        cmocka_unit_test(test_delta_metadata_without_metadata_is_empty),
        cmocka_unit_test(test_delta_shrinks_as_reported_catches_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
