/*
 * The image-classification connector's request reader and result writer
 * (connectors/image-classification/ic_request.c): every payload form, the
 * caps, ids that could break a result, and the top-k order.
 */
#include "ic_request.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PARSE(text, max, req, why)                                                                 \
    ic_request_parse((const uint8_t *)(text), strlen(text), (max), (req), (why), sizeof(why))

static void test_capture_forms(void **state)
{
    (void)state;
    ic_request_t r;
    char why[200];
    assert_true(ic_request_parse(NULL, 0, 100, &r, why, sizeof why));
    assert_int_equal(r.kind, IC_CAPTURE);
    assert_true(PARSE("{}", 100, &r, why));
    assert_int_equal(r.kind, IC_CAPTURE);
    assert_true(PARSE("{\"id\": \"cam-1\"}", 100, &r, why));
    assert_int_equal(r.kind, IC_CAPTURE);
    assert_string_equal(r.id, "cam-1");
    assert_true(PARSE("{\"id\": 42}", 100, &r, why));
    assert_string_equal(r.id, "42");
}

static void test_image_forms_and_caps(void **state)
{
    (void)state;
    ic_request_t r;
    char why[200];
    const char png[] = "\x89PNG\r\n\x1a\nrest";
    assert_true(ic_request_parse((const uint8_t *)png, sizeof png - 1, 100, &r, why, sizeof why));
    assert_int_equal(r.kind, IC_IMAGE);
    assert_ptr_equal(r.image, (const uint8_t *)png);
    assert_false(ic_request_parse((const uint8_t *)png, sizeof png - 1, 5, &r, why, sizeof why));
    assert_non_null(strstr(why, "over max_image_bytes (5)"));
    /* base64 of "\xff\xd8\xff\xe0" */
    assert_true(PARSE("{\"image\": \"/9j/4A==\", \"id\": \"x\"}", 100, &r, why));
    assert_int_equal(r.kind, IC_IMAGE);
    assert_int_equal(r.image_len, 4);
    assert_memory_equal(r.image, "\xff\xd8\xff\xe0", 4);
    ic_request_free(&r);
    assert_false(PARSE("{\"image\": \"/9j/4A==\"}", 3, &r, why));
    assert_false(PARSE("{\"image\": \"\"}", 100, &r, why));
}

static void test_refusals_say_why(void **state)
{
    (void)state;
    ic_request_t r;
    char why[200];
    struct {
        const char *payload, *why;
    } cases[] = {
        {"hello", "neither an image"},
        {"[1, 2]", "neither an image"},
        {"{\"image\": 7}", "must be a base64 string"},
        {"{\"image\": \"a!==\"}", "not valid base64"},
        {"{\"image\": \"abc\"}", "not valid base64"},
        {"{\"id\": \"a\\nb\"}", "control characters"},
        {"{\"id\": [1]}", "\"id\" must be"},
        {"{\"id\": \"x\", \"id\": \"y\"}", "neither an image"},
        {"{\"url\": \"http://x\"}", "unknown key \"url\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        why[0] = '\0';
        assert_false(PARSE(cases[i].payload, 100, &r, why));
        if (!strstr(why, cases[i].why))
            fail_msg("%s: %s", cases[i].payload, why);
        assert_null(r.owned);
    }
    char long_id[300] = "{\"id\": \"";
    memset(long_id + strlen(long_id), 'a', 200);
    strcat(long_id, "\"}");
    assert_false(PARSE(long_id, 100, &r, why));
}

static void test_top_k_is_best_first_above_the_threshold(void **state)
{
    (void)state;
    float scores[] = {0.1f, 0.7f, NAN, 0.05f, 0.15f};
    size_t order[5];
    assert_int_equal(ic_top_k(scores, 5, 3, 0.0f, order), 3);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 4);
    assert_int_equal(order[2], 0);
    assert_int_equal(ic_top_k(scores, 5, 5, 0.12f, order), 2);
    assert_int_equal(ic_top_k(scores, 5, 5, 0.9f, order), 0);
}

static void test_result_documents(void **state)
{
    (void)state;
    ic_label_score_t r[] = {{"burger", 0.75f}, {"salad", 0.25f}};
    json_t *doc = ic_result(r, 2, "req-1", 1.5, "abc");
    assert_string_equal(json_string_value(json_object_get(doc, "inference-type")),
                        "image-classification");
    json_t *list = json_object_get(doc, "inference-results");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "Label")),
                        "burger");
    assert_true(fabs(json_real_value(json_object_get(json_array_get(list, 0), "Score")) - 0.75) <
                1e-6);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "req-1");
    assert_string_equal(json_string_value(json_object_get(doc, "model_sha256")), "abc");
    assert_non_null(json_object_get(doc, "timestamp"));
    json_decref(doc);
    doc = ic_error_result("bad", NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "error")), "bad");
    assert_int_equal(json_array_size(json_object_get(doc, "inference-results")), 0);
    assert_null(json_object_get(doc, "id"));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_forms),
        cmocka_unit_test(test_image_forms_and_caps),
        cmocka_unit_test(test_refusals_say_why),
        cmocka_unit_test(test_top_k_is_best_first_above_the_threshold),
        cmocka_unit_test(test_result_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
