/*
 * The group document: what a valid document gives the rest of Sedge (names,
 * routes with their endpoints, revocations, the checksum) and how an
 * invalid one is refused — every problem at once, one per line, each line
 * starting with the JSON path of what is wrong.
 *
 * Documents are written with single quotes for readability; doc() turns
 * them into JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "group/group.h"

/* ---- helpers ---- */

/* A malloc'd copy of `text` with every ' turned into ". */
static char *doc(const char *text)
{
    char *s = strdup(text);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static group_t *parse_ok(const char *text)
{
    char *json = doc(text);
    group_t *g = NULL;
    buf_t errors = {0};
    sedge_err err = group_parse(json, strlen(json), GROUP_MAX_BYTES_DEFAULT, &g, &errors);
    if (err != SEDGE_OK)
        print_message("unexpected problems:\n%.*s", (int)errors.len, (const char *)errors.data);
    assert_int_equal(err, SEDGE_OK);
    assert_non_null(g);
    assert_int_equal(errors.len, 0);
    buf_free(&errors);
    free(json);
    return g;
}

/* The problems of a refused document, NUL-terminated; the caller frees. */
static char *parse_refused(const char *json, size_t len, size_t max, sedge_err want)
{
    group_t *g = (group_t *)1;
    buf_t errors = {0};
    assert_int_equal(group_parse(json, len, max, &g, &errors), want);
    assert_null(g);
    assert_true(errors.len > 0);
    assert_int_equal(errors.data[errors.len - 1], '\n');
    assert_int_equal(buf_append(&errors, "", 1), SEDGE_OK);
    return (char *)errors.data;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        if ((size_t)(end - p) == len && memcmp(p, line, len) == 0)
            return true;
        p = end + 1;
    }
    return false;
}

/* The document is refused with exactly these problems, in any order. */
static void assert_problems(const char *text, const char *const *want, size_t n)
{
    char *json = doc(text);
    char *errors = parse_refused(json, strlen(json), GROUP_MAX_BYTES_DEFAULT, SEDGE_ERR_INVALID);
    for (size_t i = 0; i < n; i++)
        if (!has_line(errors, want[i]))
            fail_msg("missing problem: %s\ngot:\n%s", want[i], errors);
    if (count_lines(errors) != n)
        fail_msg("expected %zu problems, got:\n%s", n, errors);
    free(errors);
    free(json);
}

#define ASSERT_PROBLEMS(text, ...)                                                                 \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__};                                                 \
        assert_problems((text), want_, ARRAY_LEN(want_));                                          \
    } while (0)

static void assert_endpoint(const endpoint_t *e, endpoint_kind_t kind, const char *name)
{
    assert_int_equal(e->kind, kind);
    if (!name) {
        assert_null(e->name);
        return;
    }
    assert_string_equal(e->name, name);
    assert_int_equal(e->name_len, strlen(name));
}

/* Things, functions and connectors the route tests refer to. */
#define NAMES                                                                                      \
    "'things': [{'name': 'lamp'}, {'name': 'switch'}],"                                            \
    "'functions': [{'name': 'alarm', 'exec': ['/bin/alarm']}],"                                    \
    "'connectors': [{'name': 'modbus', 'type': 'metrics'}]"

/* ---- valid documents ---- */

static void test_minimal_document_has_a_name_and_nothing_else(void **state)
{
    (void)state;
    group_t *g = parse_ok("{'group': 'kitchen'}");
    assert_string_equal(g->name, "kitchen");
    assert_int_equal(g->thing_count, 0);
    assert_int_equal(g->route_count, 0);
    assert_int_equal(g->revoked_count, 0);
    assert_null(group_functions(g));
    assert_false(group_has_thing(g, BYTES_LIT("kitchen")));
    group_free(g);
}

static void test_full_document_parses_every_section(void **state)
{
    (void)state;
    group_t *g = parse_ok(
        "{'group': 'plant-1', 'description': 'the plant',"
        " 'things': [{'name': 'lamp', 'description': 'x', 'attributes': {'floor': 2}},"
        "            {'name': 'switch'}, {'name': 'old.sensor:7'}],"
        " 'functions': [{'name': 'alarm', 'exec': ['/usr/bin/alarm', '--loud'],"
        "   'lifecycle': 'long-lived', 'timeout_s': 2.5, 'memory_mb': 64, 'max_instances': 4,"
        "   'max_queue': 100, 'max_processes': 16, 'idle_timeout_s': 60, 'run_as': '1000:1000',"
        "   'isolation': 'sandbox', 'env': {'LEVEL': 'high'}, 'encoding': 'binary',"
        "   'sysfs': false, 'network': true, 'config': {'any': ['thing']},"
        "   'resources': [{'type': 'device', 'path': '/dev/ttyUSB0', 'access': 'rw'},"
        "                 {'type': 'volume', 'source': '/var/data', 'dest': '/data',"
        "                  'access': 'ro'}]},"
        "  {'name': 'logger', 'exec': ['/bin/log'], 'lifecycle': 'on-demand',"
        "   'isolation': 'none', 'encoding': 'json'}],"
        " 'resources': [{'id': 'usb0', 'type': 'device', 'path': '/dev/ttyUSB0',"
        "                'owner': {'group': 'auto'}}],"
        " 'connectors': [{'name': 'modbus', 'type': 'modbus', 'description': 'the PLC',"
        "                 'parameters': {'transport': 'tcp', 'host': 'plc.local'}}],"
        " 'revoked': ['old.sensor:7'],"
        " 'shadows': {'sync': [{'thing': 'lamp', 'names': ['cfg'], 'classic': true,"
        "                       'direction': 'device_to_cloud'},"
        "                      {'thing': 'elsewhere', 'direction': 'cloud_to_device'},"
        "                      {'thing': 'switch', 'direction': 'between_device_and_cloud'}]},"
        " 'routes': ["
        "  {'source': 'thing:lamp', 'filter': 'lamp/status', 'target': 'cloud', 'qos': 1},"
        "  {'source': 'thing:*', 'filter': 'alarm/#', 'target': 'function:alarm', 'qos': 0},"
        "  {'source': 'function:alarm', 'filter': 'siren/+', 'target': 'thing:switch'},"
        "  {'source': 'connector:modbus', 'filter': 'mb/#', 'target': 'thing:*',"
        "   'description': 'fan out'},"
        "  {'source': 'cloud', 'filter': 'cmd/lamp', 'target': 'connector:modbus'},"
        "  {'source': 'thing:lamp', 'filter': '$aws/things/lamp/shadow/#', 'target': 'shadow'},"
        "  {'source': 'shadow', 'filter': '$aws/things/+/shadow/update/delta',"
        "   'target': 'thing:*'}]}");
    assert_string_equal(g->name, "plant-1");
    assert_int_equal(g->thing_count, 3);
    assert_true(group_has_thing(g, BYTES_LIT("lamp")));
    assert_true(group_has_thing(g, BYTES_LIT("switch")));
    assert_true(group_has_thing(g, BYTES_LIT("old.sensor:7")));
    assert_false(group_has_thing(g, BYTES_LIT("lam")));
    assert_false(group_has_thing(g, BYTES_LIT("lamps")));
    assert_false(group_has_thing(g, BYTES_LIT("alarm")));
    assert_int_equal(g->revoked_count, 1);
    assert_true(group_is_revoked(g, BYTES_LIT("old.sensor:7")));
    assert_false(group_is_revoked(g, BYTES_LIT("lamp")));

    json_t *functions = group_functions(g);
    assert_true(json_is_array(functions));
    assert_int_equal(json_array_size(functions), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(functions, 1), "name")),
                        "logger");

    assert_int_equal(g->route_count, 7);
    const route_t *r = g->routes;
    assert_endpoint(&r[0].source, ENDPOINT_THING, "lamp");
    assert_endpoint(&r[0].target, ENDPOINT_CLOUD, NULL);
    assert_string_equal(r[0].filter, "lamp/status");
    assert_int_equal(r[0].filter_len, strlen("lamp/status"));
    assert_int_equal(r[0].qos, 1);
    assert_endpoint(&r[1].source, ENDPOINT_ANY_THING, NULL);
    assert_endpoint(&r[1].target, ENDPOINT_FUNCTION, "alarm");
    assert_int_equal(r[1].qos, 0);
    assert_endpoint(&r[2].source, ENDPOINT_FUNCTION, "alarm");
    assert_endpoint(&r[2].target, ENDPOINT_THING, "switch");
    assert_int_equal(r[2].qos, -1);
    assert_endpoint(&r[3].source, ENDPOINT_CONNECTOR, "modbus");
    assert_endpoint(&r[3].target, ENDPOINT_ANY_THING, NULL);
    assert_endpoint(&r[4].source, ENDPOINT_CLOUD, NULL);
    assert_endpoint(&r[4].target, ENDPOINT_CONNECTOR, "modbus");
    assert_endpoint(&r[5].target, ENDPOINT_SHADOW, NULL);
    assert_endpoint(&r[6].source, ENDPOINT_SHADOW, NULL);
    assert_string_equal(r[6].filter, "$aws/things/+/shadow/update/delta");
    group_free(g);
}

static void test_route_text_names_source_filter_and_target(void **state)
{
    (void)state;
    group_t *g = parse_ok("{'group': 'g'," NAMES ", 'routes': ["
                          "{'source': 'thing:lamp', 'filter': 'a/+', 'target': 'function:alarm'},"
                          "{'source': 'cloud', 'filter': '#', 'target': 'thing:*'},"
                          "{'source': 'connector:modbus', 'filter': 'x', 'target': 'shadow'}]}");
    assert_int_equal(g->route_count, 3);
    assert_string_equal(g->routes[0].text, "thing:lamp -> a/+ -> function:alarm");
    assert_string_equal(g->routes[1].text, "cloud -> # -> thing:*");
    assert_string_equal(g->routes[2].text, "connector:modbus -> x -> shadow");
    char buf[64];
    endpoint_format(&g->routes[0].source, buf, sizeof buf);
    assert_string_equal(buf, "thing:lamp");
    endpoint_format(&g->routes[2].source, buf, sizeof buf);
    assert_string_equal(buf, "connector:modbus");
    endpoint_format(&g->routes[2].target, buf, sizeof buf);
    assert_string_equal(buf, "shadow");
    endpoint_format(&g->routes[0].source, buf, 6); /* truncated, still terminated */
    assert_string_equal(buf, "thing");
    group_free(g);
}

static void test_routes_may_name_things_and_functions_declared_after_them(void **state)
{
    (void)state;
    group_t *g = parse_ok("{'routes': [{'source': 'thing:late', 'filter': 'a',"
                          "             'target': 'function:later'}],"
                          " 'group': 'g', 'functions': [{'name': 'later', 'exec': ['x']}],"
                          " 'things': [{'name': 'late'}]}");
    assert_int_equal(g->route_count, 1);
    group_free(g);
}

static void test_checksum_is_the_sha256_of_the_text(void **state)
{
    (void)state;
    static const char text[] = "{\"group\": \"kitchen\"}";
    group_t *g = NULL;
    assert_int_equal(group_parse(text, strlen(text), GROUP_MAX_BYTES_DEFAULT, &g, NULL), SEDGE_OK);
    /* python3 -c 'import hashlib; print(hashlib.sha256(b"{\"group\": \"kitchen\"}").hexdigest())'
     */
    assert_string_equal(g->checksum,
                        "f51a7c6da8c77177f84a44fad13ae577626ea9f84484365b7bd37927d558847b");
    group_free(g);

    /* The same document spelt differently is a different text. */
    static const char spaced[] = "{ \"group\":\"kitchen\" }\n";
    assert_int_equal(group_parse(spaced, strlen(spaced), GROUP_MAX_BYTES_DEFAULT, &g, NULL),
                     SEDGE_OK);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    assert_true(EVP_Digest(spaced, strlen(spaced), md, &mdlen, EVP_sha256(), NULL));
    assert_int_equal(mdlen, 32);
    char hex[65];
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(g->checksum, hex);
    group_free(g);
}

static void test_only_len_bytes_of_the_text_are_read(void **state)
{
    (void)state;
    static const char text[] = "{\"group\": \"kitchen\"}garbage";
    group_t *g = NULL;
    assert_int_equal(group_parse(text, 20, GROUP_MAX_BYTES_DEFAULT, &g, NULL), SEDGE_OK);
    assert_string_equal(g->checksum,
                        "f51a7c6da8c77177f84a44fad13ae577626ea9f84484365b7bd37927d558847b");
    group_free(g);
}

static void test_name_length_limit_is_128(void **state)
{
    (void)state;
    char name[130];
    memset(name, 'n', sizeof name);
    name[128] = '\0';
    char text[512];
    snprintf(text, sizeof text, "{'group': '%s', 'things': [{'name': '%s'}]}", name, name);
    group_t *g = parse_ok(text);
    assert_int_equal(strlen(g->name), 128);
    assert_true(group_has_thing(g, bytes_of_cstr(name)));
    group_free(g);

    name[128] = 'n';
    name[129] = '\0';
    snprintf(text, sizeof text, "{'group': '%s', 'things': [{'name': '%s'}]}", name, name);
    char line[256];
    snprintf(line, sizeof line, "things[0].name: invalid name \"%s\"", name);
    ASSERT_PROBLEMS(text, "group: expected a name of 1 to 128 of a-z A-Z 0-9 - _ : .", line);
}

static void test_valid_thing_names(void **state)
{
    (void)state;
    assert_true(group_valid_thing_name("lamp", 4));
    assert_true(group_valid_thing_name("A-z_0.9:x", 9));
    assert_false(group_valid_thing_name("", 0));
    assert_false(group_valid_thing_name("a b", 3));
    assert_false(group_valid_thing_name("a/b", 3));
    assert_false(group_valid_thing_name("a+", 2));
    assert_false(group_valid_thing_name("#", 1));
    assert_false(group_valid_thing_name("*", 1));
    assert_false(group_valid_thing_name("caf\xc3\xa9", 5));
    assert_false(group_valid_thing_name("a\0b", 3)); /* the length counts, not the NUL */
}

/* ---- refused documents ---- */

static void test_over_the_size_limit_is_too_large(void **state)
{
    (void)state;
    static const char text[] = "{\"group\": \"kitchen\"}";
    size_t len = strlen(text);
    char *errors = parse_refused(text, len, len - 1, SEDGE_ERR_TOO_LARGE);
    assert_string_equal(errors, "document: 20 bytes, over the limit of 19\n");
    free(errors);

    group_t *g = NULL;
    assert_int_equal(group_parse(text, len, len, &g, NULL), SEDGE_OK); /* at the limit */
    group_free(g);

    /* The size is checked before the text is even read. */
    errors = parse_refused("", (size_t)GROUP_MAX_BYTES_DEFAULT + 1, GROUP_MAX_BYTES_DEFAULT,
                           SEDGE_ERR_TOO_LARGE);
    assert_string_equal(errors, "document: 4194305 bytes, over the limit of 4194304\n");
    free(errors);
}

static void test_invalid_json_names_line_and_column(void **state)
{
    (void)state;
    static const char text[] = "{\n  \"group\": \"g\",\n  oops\n}";
    char *errors = parse_refused(text, strlen(text), GROUP_MAX_BYTES_DEFAULT, SEDGE_ERR_INVALID);
    assert_int_equal(count_lines(errors), 1);
    assert_non_null(strstr(errors, "document: invalid JSON at line 3, column "));
    assert_ptr_equal(strstr(errors, "document: "), errors);
    free(errors);

    errors = parse_refused("", 0, GROUP_MAX_BYTES_DEFAULT, SEDGE_ERR_INVALID);
    assert_ptr_equal(strstr(errors, "document: invalid JSON at line "), errors);
    free(errors);

    static const char cut[] = "{\"group\": \"g\", \"things\": [";
    errors = parse_refused(cut, strlen(cut), GROUP_MAX_BYTES_DEFAULT, SEDGE_ERR_INVALID);
    assert_ptr_equal(strstr(errors, "document: invalid JSON at line 1, column "), errors);
    free(errors);
}

static void test_duplicate_json_keys_are_invalid_json(void **state)
{
    (void)state;
    static const char text[] = "{\"group\": \"a\", \"group\": \"b\"}";
    char *errors = parse_refused(text, strlen(text), GROUP_MAX_BYTES_DEFAULT, SEDGE_ERR_INVALID);
    assert_ptr_equal(strstr(errors, "document: invalid JSON at line 1, column "), errors);
    assert_non_null(strstr(errors, "duplicate object key"));
    free(errors);
}

static void test_nul_in_a_string_is_invalid_json(void **state)
{
    (void)state;
    static const char text[] = "{\"group\": \"a\\u0000b\"}";
    char *errors = parse_refused(text, strlen(text), GROUP_MAX_BYTES_DEFAULT, SEDGE_ERR_INVALID);
    assert_ptr_equal(strstr(errors, "document: invalid JSON"), errors);
    free(errors);
}

static void test_document_must_be_an_object(void **state)
{
    (void)state;
    static const char *const arrays[] = {"[]", "[{\"group\": \"g\"}]"};
    for (size_t i = 0; i < ARRAY_LEN(arrays); i++) {
        char *errors =
            parse_refused(arrays[i], strlen(arrays[i]), GROUP_MAX_BYTES_DEFAULT, SEDGE_ERR_INVALID);
        assert_string_equal(errors, "document: expected a JSON object\n");
        free(errors);
    }
    /* A bare scalar is not even a JSON text to the parser. */
    static const char *const scalars[] = {"\"group\"", "1", "null"};
    for (size_t i = 0; i < ARRAY_LEN(scalars); i++) {
        char *errors = parse_refused(scalars[i], strlen(scalars[i]), GROUP_MAX_BYTES_DEFAULT,
                                     SEDGE_ERR_INVALID);
        assert_ptr_equal(strstr(errors, "document: invalid JSON at line 1, column "), errors);
        assert_int_equal(count_lines(errors), 1);
        free(errors);
    }
}

static void test_group_name_missing_or_invalid(void **state)
{
    (void)state;
    ASSERT_PROBLEMS("{}", "group: missing (the group's name)");
    ASSERT_PROBLEMS("{'group': ''}", "group: expected a name of 1 to 128 of a-z A-Z 0-9 - _ : .");
    ASSERT_PROBLEMS("{'group': 'a b'}",
                    "group: expected a name of 1 to 128 of a-z A-Z 0-9 - _ : .");
    ASSERT_PROBLEMS("{'group': 7}", "group: expected a name of 1 to 128 of a-z A-Z 0-9 - _ : .");
}

static void test_unknown_keys_are_named_with_their_path(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': 'g', 'rotues': [], 'things': [{'name': 'lamp', 'colour': 'red'}],"
        " 'functions': [{'name': 'f', 'exec': ['x'], 'memory': 64,"
        "   'resources': [{'type': 'device', 'path': '/dev/x', 'mode': 'rw'}]}],"
        " 'routes': [{'source': 'cloud', 'filter': 'a', 'target': 'shadow', 'priority': 1}],"
        " 'shadows': {'sync': [{'thing': 'lamp', 'every': 5}], 'mode': 'x'}}",
        "rotues: unknown key", "things[0].colour: unknown key", "functions[0].memory: unknown key",
        "functions[0].resources[0].mode: unknown key", "routes[0].priority: unknown key",
        "shadows.mode: unknown key", "shadows.sync[0].every: unknown key");
}

static void test_sections_must_be_arrays(void **state)
{
    (void)state;
    ASSERT_PROBLEMS("{'group': 'g', 'things': {}, 'routes': 'none', 'functions': 1,"
                    " 'resources': null, 'connectors': true, 'revoked': 'lamp',"
                    " 'shadows': []}",
                    "things: expected an array", "routes: expected an array",
                    "functions: expected an array", "resources: expected an array",
                    "connectors: expected an array", "revoked: expected an array",
                    "shadows: expected an object");
}

static void test_thing_problems(void **state)
{
    (void)state;
    ASSERT_PROBLEMS("{'group': 'g', 'things': [{'name': 'lamp'}, 'switch', {}, {'name': 5},"
                    " {'name': 'lamp'}, {'name': 'a/b'}, {'name': 'ok'}]}",
                    "things[1]: expected an object", "things[2].name: missing",
                    "things[3].name: expected a non-empty string",
                    "things[4].name: duplicate name \"lamp\"",
                    "things[5].name: invalid name \"a/b\"");
}

static void test_duplicate_names_in_every_section(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': 'g', 'things': [{'name': 'x'}, {'name': 'x'}],"
        " 'functions': [{'name': 'f', 'exec': ['a']}, {'name': 'f', 'exec': ['b']}],"
        " 'connectors': [{'name': 'c', 'type': 'metrics'}, {'name': 'c', 'type': 'metrics'},"
        "                {'name': 'c', 'type': 'metrics'}],"
        " 'resources': [{'id': 'r', 'type': 'secret', 'value': 'a'},"
        "               {'id': 'r', 'type': 'secret', 'value': 'b'}]}",
        "things[1].name: duplicate name \"x\"", "functions[1].name: duplicate name \"f\"",
        "connectors[1].name: duplicate name \"c\"", "connectors[2].name: duplicate name \"c\"",
        "resources[1].id: duplicate id \"r\"");
}

static void test_names_the_same_across_sections_are_not_duplicates(void **state)
{
    (void)state;
    group_t *g =
        parse_ok("{'group': 'x', 'things': [{'name': 'x'}],"
                 " 'functions': [{'name': 'x', 'exec': ['a']}],"
                 " 'connectors': [{'name': 'x', 'type': 'metrics'}], 'resources': [{'id': 'x',"
                 " 'type': 'secret', 'value': 'v'}],"
                 " 'routes': [{'source': 'thing:x', 'filter': 'a', 'target': 'function:x'},"
                 "            {'source': 'connector:x', 'filter': 'a', 'target': 'thing:x'}]}");
    assert_int_equal(g->route_count, 2);
    group_free(g);
}

static void test_connector_types_and_parameters(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': 'g', 'connectors': ["
        " {'name': 'a', 'type': 'modbus', 'parameters': {'transport': 'rtu', 'baud_rate': 7,"
        "   'poll': {'interval_ms': 5, 'registers': [{'table': 'coils', 'address': 65535,"
        "   'count': 2}]}}},"
        " {'name': 'b', 'type': 'serial', 'parameters': {'serial_port': 'COM1',"
        "   'polling_read': true}},"
        " {'name': 'c', 'type': 'gpio', 'parameters': {'input_gpios': '5,5', 'output_gpios': '6X'}},"
        " {'name': 'd', 'type': 'metrics', 'parameters': {'topic': 'a/#', 'interval_ms': 0}},"
        " {'name': 'e', 'type': 'http-sink', 'parameters': {'url': 'ftp://x',"
        "   'headers': {'X-A': 'a\\r\\nb'}, 'retry_initial_ms': 9, 'retry_max_ms': 8}},"
        " {'name': 'f', 'type': 'toaster', 'memory_mb': 0}]}",
        "connectors[0].parameters.baud_rate: expected an integer from 50 to 4000000",
        "connectors[0].parameters.serial_port: missing (the RTU line's device, e.g. /dev/ttyUSB0)",
        "connectors[0].parameters.poll.interval_ms: expected an integer from 10 to 86400000",
        "connectors[0].parameters.poll.registers[0]: the range goes past address 65535",
        "connectors[1].parameters.serial_port: \"COM1\" is not a device under /dev",
        "connectors[1].parameters.polling_read_length: missing (polling_read needs a length to "
        "read)",
        "connectors[2].parameters.input_gpios: \"5,5\" is not a list of distinct line numbers, "
        "each with an optional U (pull-up) or D (pull-down), e.g. \"5,6U,7D\"",
        "connectors[2].parameters.output_gpios: \"6X\" is not a list of line numbers, each with "
        "an optional H or L (initial value), e.g. \"8H,9,27L\", none of them an input",
        "connectors[3].parameters.interval_ms: expected an integer from 100 to 86400000",
        "connectors[3].parameters.topic: expected an MQTT topic name (no wildcards)",
        "connectors[4].parameters.url: \"ftp://x\" is not an http:// or https:// URL",
        "connectors[4].parameters.headers.X-A: expected a header name without ':' or spaces, "
        "and a string value on one line",
        "connectors[4].parameters.retry_initial_ms: above retry_max_ms",
        "connectors[5].type: unknown connector type \"toaster\" (Sedge ships modbus, serial, "
        "gpio, metrics, http-sink, image-classification)",
        "connectors[5].memory_mb: expected an integer from 1 to 1048576");
}

static void test_connector_and_resource_entries(void **state)
{
    (void)state;
    ASSERT_PROBLEMS("{'group': 'g', 'connectors': [1, {'type': 'metrics'},"
                    " {'name': 'bad.name', 'type': 'metrics'}],"
                    " 'resources': [[], {'id': 3, 'type': 'secret', 'value': ''},"
                    "  {'id': 'a b', 'type': 'secret', 'value': ''}, {'type': 'secret', 'value': ''}]}",
                    "connectors[0]: expected an object", "connectors[1].name: missing",
                    "connectors[2].name: invalid name \"bad.name\"",
                    "resources[0]: expected an object",
                    "resources[1].id: expected 1 to 128 of a-z A-Z 0-9 : _ -",
                    "resources[2].id: expected 1 to 128 of a-z A-Z 0-9 : _ -",
                    "resources[3].id: missing");
}

static void test_route_problems_each_name_their_route(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': 'g'," NAMES ", 'routes': ["
        " {'source': 'thing:lamp', 'filter': 'a', 'target': 'function:alarm'},"
        " {'source': 'thing:lamp', 'filter': 'a', 'target': 'function:siren'},"
        " {'source': 'thing:ghost', 'filter': 'a', 'target': 'cloud'},"
        " {'source': 'connector:opcua', 'filter': 'a', 'target': 'cloud'},"
        " {'source': 'lamp', 'filter': 'a', 'target': 'cloud'},"
        " {'filter': 'a'},"
        " {'source': 'cloud', 'filter': '', 'target': 'shadow'},"
        " {'source': 'cloud', 'filter': 'a/#/b', 'target': 'shadow'},"
        " {'source': 'shadow', 'filter': 'a', 'target': 'shadow'},"
        " {'source': 'cloud', 'filter': 'a', 'target': 'shadow', 'qos': 2},"
        " {'source': 'cloud', 'filter': 'a', 'target': 'shadow', 'qos': '1'},"
        " {'source': 'cloud', 'filter': 'a', 'target': 'shadow', 'qos': -1},"
        " 'cloud -> a -> shadow',"
        " {'source': 1, 'filter': 'a', 'target': 'thing:'},"
        " {'source': 'function:lamp', 'filter': 'a', 'target': 'thing:alarm'}]}",
        "routes[1].target: unknown function \"siren\"", "routes[2].source: unknown thing \"ghost\"",
        "routes[3].source: unknown connector \"opcua\"",
        "routes[4].source: unknown endpoint \"lamp\" (expected thing:NAME, thing:*, "
        "function:NAME, connector:NAME, cloud or shadow)",
        "routes[5].source: missing", "routes[5].target: missing",
        "routes[6].filter: expected a non-empty string",
        "routes[7].filter: \"a/#/b\" is not a valid MQTT topic filter",
        "routes[8]: a route from shadow to shadow goes nowhere", "routes[9].qos: expected 0 or 1",
        "routes[10].qos: expected 0 or 1", "routes[11].qos: expected 0 or 1",
        "routes[12]: expected an object", "routes[13].source: expected a non-empty string",
        "routes[13].target: unknown thing \"\"", "routes[14].source: unknown function \"lamp\"",
        "routes[14].target: unknown thing \"alarm\"");
}

static void test_shared_subscription_is_not_a_route_filter(void **state)
{
    (void)state;
    ASSERT_PROBLEMS("{'group': 'g'," NAMES ", 'routes': ["
                    " {'source': 'thing:lamp', 'filter': '$share/grp/a/b', 'target': 'cloud'},"
                    " {'source': 'cloud', 'filter': '$share/grp/#', 'target': 'thing:*'},"
                    " {'source': 'cloud', 'filter': '$share/grp', 'target': 'thing:*'}]}",
                    "routes[0].filter: \"$share/grp/a/b\" is a shared subscription, not a route "
                    "filter",
                    "routes[1].filter: \"$share/grp/#\" is a shared subscription, not a route "
                    "filter",
                    "routes[2].filter: \"$share/grp\" is a shared subscription, not a route "
                    "filter");
    /* A '$' filter that is not a shared subscription is fine. */
    group_t *g = parse_ok("{'group': 'g'," NAMES ", 'routes': ["
                          " {'source': 'thing:lamp', 'filter': '$shared/a', 'target': 'cloud'},"
                          " {'source': 'thing:lamp', 'filter': '$SYS/#', 'target': 'cloud'}]}");
    assert_int_equal(g->route_count, 2);
    group_free(g);
}

static void test_function_problems(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': 'g', 'functions': ["
        " {'exec': ['x']},"
        " {'name': 'nox'},"
        " {'name': 'a', 'exec': []},"
        " {'name': 'b', 'exec': 'run'},"
        " {'name': 'c', 'exec': ['ok', 3]},"
        " {'name': 'd', 'exec': ['x'], 'lifecycle': 'forever', 'isolation': 'vm',"
        "  'encoding': 'xml'},"
        " {'name': 'e', 'exec': ['x'], 'timeout_s': 0, 'memory_mb': 0, 'max_instances': 1001,"
        "  'max_queue': 0, 'max_processes': 65537, 'idle_timeout_s': 'long'},"
        " {'name': 'f', 'exec': ['x'], 'timeout_s': 86401, 'memory_mb': 1.5},"
        " {'name': 'g', 'exec': ['x'], 'run_as': 'root'},"
        " {'name': 'h', 'exec': ['x'], 'run_as': '1000:1000:1'},"
        " {'name': 'i', 'exec': ['x'], 'env': ['A=1']},"
        " {'name': 'j', 'exec': ['x'], 'env': {'A': 1, 'B=C': 'x', '': 'y'}},"
        " {'name': 'k', 'exec': ['x'], 'sysfs': 'yes', 'network': 1},"
        " {'name': 'bad.name', 'exec': ['x']},"
        " 'function']}",
        "functions[0].name: missing", "functions[1].exec: missing (the program and its arguments)",
        "functions[2].exec: expected a non-empty array of strings",
        "functions[3].exec: expected a non-empty array of strings",
        "functions[4].exec[1]: expected a string",
        "functions[5].lifecycle: \"forever\" is not on-demand or long-lived",
        "functions[5].isolation: \"vm\" is not sandbox or none",
        "functions[5].encoding: \"xml\" is not json or binary",
        "functions[6].timeout_s: expected a number of seconds, above 0 and at most 86400",
        "functions[6].memory_mb: expected an integer from 1 to 1048576",
        "functions[6].max_instances: expected an integer from 1 to 1000",
        "functions[6].max_queue: expected an integer from 1 to 1000000",
        "functions[6].max_processes: expected an integer from 1 to 65536",
        "functions[6].idle_timeout_s: expected an integer from 1 to 86400",
        "functions[7].timeout_s: expected a number of seconds, above 0 and at most 86400",
        "functions[7].memory_mb: expected an integer from 1 to 1048576",
        "functions[8].run_as: \"root\" is not UID:GID",
        "functions[9].run_as: \"1000:1000:1\" is not UID:GID",
        "functions[10].env: expected an object of strings",
        "functions[11].env.A: expected a string",
        "functions[11].env: invalid variable name \"B=C\"",
        "functions[11].env: invalid variable name \"\"",
        "functions[12].sysfs: expected true or false",
        "functions[12].network: expected true or false",
        "functions[13].name: invalid name \"bad.name\"", "functions[14]: expected an object");
}

static void test_function_limits_accept_their_bounds(void **state)
{
    (void)state;
    group_t *g = parse_ok("{'group': 'g', 'functions': ["
                          " {'name': 'lo', 'exec': ['x'], 'timeout_s': 0.001, 'memory_mb': 1,"
                          "  'max_instances': 1, 'max_queue': 1, 'max_processes': 1,"
                          "  'idle_timeout_s': 1, 'run_as': '0:0'},"
                          " {'name': 'hi', 'exec': ['x'], 'timeout_s': 86400,"
                          "  'memory_mb': 1048576, 'max_instances': 1000, 'max_queue': 1000000,"
                          "  'max_processes': 65536, 'idle_timeout_s': 86400,"
                          "  'run_as': '4294967294:4294967294'}]}");
    group_free(g);
}

static void test_run_as_takes_only_decimal_ids(void **state)
{
    (void)state;
    ASSERT_PROBLEMS("{'group': 'g', 'functions': ["
                    " {'name': 'a', 'exec': ['x'], 'run_as': '-1:-1'},"
                    " {'name': 'b', 'exec': ['x'], 'run_as': ' 1000:1000'},"
                    " {'name': 'c', 'exec': ['x'], 'run_as': '+1:+1'},"
                    " {'name': 'd', 'exec': ['x'], 'run_as': '1000:'},"
                    " {'name': 'e', 'exec': ['x'], 'run_as': '99999999999:0'},"
                    " {'name': 'f', 'exec': ['x'], 'run_as': '1000: 1000'}]}",
                    "functions[0].run_as: \"-1:-1\" is not UID:GID",
                    "functions[1].run_as: \" 1000:1000\" is not UID:GID",
                    "functions[2].run_as: \"+1:+1\" is not UID:GID",
                    "functions[3].run_as: \"1000:\" is not UID:GID",
                    "functions[4].run_as: \"99999999999:0\" is not UID:GID",
                    "functions[5].run_as: \"1000: 1000\" is not UID:GID");
}

static void test_function_resource_problems(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': 'g', 'functions': ["
        " {'name': 'a', 'exec': ['x'], 'resources': {}},"
        " {'name': 'b', 'exec': ['x'], 'resources': ["
        "   'usb', {}, {'type': 'gpio'},"
        "   {'type': 'device'}, {'type': 'device', 'path': '/etc/passwd', 'access': 'rwx'},"
        "   {'type': 'volume'}, {'type': 'volume', 'source': 'data', 'dest': 'data'},"
        "   {'type': 'volume', 'source': '/a', 'dest': '/proc/self'},"
        "   {'type': 'volume', 'source': '/a', 'dest': '/'},"
        "   {'type': 'volume', 'source': '/a', 'dest': '/sys'}]}]}",
        "functions[0].resources: expected an array",
        "functions[1].resources[0]: expected an object", "functions[1].resources[1].type: missing",
        "functions[1].resources[2].type: \"gpio\" is not device or volume",
        "functions[1].resources[3].path: missing",
        "functions[1].resources[4].path: a device must be under /dev, not \"/etc/passwd\"",
        "functions[1].resources[4].access: \"rwx\" is not ro or rw",
        "functions[1].resources[5].source: missing", "functions[1].resources[5].dest: missing",
        "functions[1].resources[6].source: must be an absolute path",
        "functions[1].resources[6].dest: must be an absolute path",
        "functions[1].resources[7].dest: \"/proc/self\" may not be used as a destination",
        "functions[1].resources[8].dest: \"/\" may not be used as a destination",
        "functions[1].resources[9].dest: \"/sys\" may not be used as a destination");
}

static void test_resource_paths_may_not_climb_out(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': 'g', 'functions': [{'name': 'a', 'exec': ['x'], 'resources': ["
        "   {'type': 'device', 'path': '/dev/../etc/shadow'},"
        "   {'type': 'volume', 'source': '/data/../etc', 'dest': '/x/../proc'},"
        "   {'type': 'volume', 'source': '/a', 'dest': '//proc'},"
        "   {'type': 'volume', 'source': '/a', 'dest': '/./sys'}]}]}",
        "functions[0].resources[0].path: \"/dev/../etc/shadow\" may not contain \".\", \"..\" or "
        "empty levels",
        "functions[0].resources[1].source: \"/data/../etc\" may not contain \".\", \"..\" or "
        "empty levels",
        "functions[0].resources[1].dest: \"/x/../proc\" may not contain \".\", \"..\" or empty "
        "levels",
        "functions[0].resources[2].dest: \"//proc\" may not contain \".\", \"..\" or empty levels",
        "functions[0].resources[3].dest: \"/./sys\" may not contain \".\", \"..\" or empty "
        "levels");
    /* A destination merely starting with the letters of a forbidden one is fine. */
    group_t *g = parse_ok("{'group': 'g', 'functions': [{'name': 'a', 'exec': ['x'], 'resources': ["
                          "   {'type': 'volume', 'source': '/srv/p', 'dest': '/processing'},"
                          "   {'type': 'volume', 'source': '/srv/d', 'dest': '/devices/'},"
                          "   {'type': 'volume', 'source': '/srv/s', 'dest': '/system/..data'},"
                          "   {'type': 'device', 'path': '/dev/input/event0'}]}]}");
    group_free(g);
}

#define SHA64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_at_most_twenty_resources_per_function(void **state)
{
    (void)state;
    char text[4096] = "{'group': 'g', 'functions': [{'name': 'f', 'exec': ['x'], 'resources': [";
    for (int i = 0; i < 21; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 "%s{'type': 'device', 'path': '/dev/tty%d'}", i ? ", " : "", i + 10);
    strcat(text, "]}]}");
    ASSERT_PROBLEMS(text, "functions[0].resources: at most 20 resources per function");
    /* Twenty is fine. */
    char *cut = strstr(text, ", {'type': 'device', 'path': '/dev/tty30'}");
    assert_non_null(cut);
    memmove(cut, cut + strlen(", {'type': 'device', 'path': '/dev/tty30'}"),
            strlen(cut) - strlen(", {'type': 'device', 'path': '/dev/tty30'}") + 1);
    group_free(parse_ok(text));
}

/* Issue 17: the group's resources, Greengrass v1's rules, and references
 * to them by id. */
static void test_group_resources_and_their_rules(void **state)
{
    (void)state;
    group_t *g = parse_ok(
        "{'group': 'g', 'resources': ["
        " {'id': 'serial', 'type': 'device', 'path': '/dev/ttyUSB0', 'owner': {'group': 'auto'}},"
        " {'id': 'shm', 'type': 'volume', 'source': '/dev/shm/x', 'dest': '/shm',"
        "  'owner': {'group': 'dialout'}},"
        " {'id': 'proc', 'type': 'volume', 'source': '/proc/cpuinfo', 'dest': '/cpu',"
        "  'owner': {'group': 20}},"
        " {'id': 'food-model', 'type': 'model', 'url': 'file:///srv/food.tar.gz',"
        "  'sha256': '" SHA64 "', 'dest': '/models/food'},"
        " {'id': 'web:model_2', 'type': 'model', 'url': 'https://example.net/m.zip',"
        "  'sha256': '" SHA64 "', 'dest': '/m'},"
        " {'id': 'api-key', 'type': 'secret', 'value': 's3cr3t'}],"
        " 'functions': [{'name': 'f', 'exec': ['x'], 'resources': ["
        "  {'id': 'serial', 'access': 'rw'}, {'id': 'food-model'}, {'id': 'api-key'},"
        "  {'id': 'proc', 'access': 'ro'}, {'type': 'volume', 'source': '/var/x', 'dest': '/x'}]}],"
        " 'connectors': [{'name': 'c', 'type': 'metrics', 'resources': [{'id': 'shm'}]}]}");
    assert_non_null(group_resource(g, "web:model_2"));
    assert_null(group_resource(g, "nope"));
    group_free(g);
    ASSERT_PROBLEMS(
        "{'group': 'g', 'resources': ["
        " {'id': 'a', 'type': 'volume', 'source': '/sys/class', 'dest': '/s'},"
        " {'id': 'b', 'type': 'volume', 'source': '/var/lib/x', 'dest': '/v'},"
        " {'id': 'c', 'type': 'volume', 'source': '/dev/sda', 'dest': '/d'},"
        " {'id': 'd', 'type': 'model', 'url': 'ftp://x/m.tgz', 'sha256': 'abc', 'dest': '/proc/m'},"
        " {'id': 'e', 'type': 'model', 'url': 'file:///srv/../etc/m.tgz'},"
        " {'id': 'f', 'type': 'secret'},"
        " {'id': 'g', 'type': 'device', 'path': '/dev/x', 'owner': {'group': 0}},"
        " {'id': 'h', 'type': 'device', 'path': '/dev/y', 'owner': {'grp': 'x'}},"
        " {'id': 'i', 'type': 'gpu'},"
        " {'id': 'j', 'type': 'secret', 'value': 'v', 'url': 'x'},"
        " {'id': 'k', 'type': 'secret', 'value': 'v', 'cloud_topic': 'a/b'},"
        " {'id': 'l', 'type': 'secret', 'cloud_topic': 'a/#'},"
        " {'id': 'q', 'type': 'secret', 'cloud_topic': 'secrets/q'},"
        " {'id': 'p', 'type': 'volume', 'source': '/proc/cpuinfo', 'dest': '/cpu'}],"
        " 'functions': [{'name': 'f', 'exec': ['x'], 'resources': ["
        "  {'id': 'zz'}, {'id': 'f', 'access': 'rw'}, {'id': 'p', 'access': 'rw'},"
        "  {'id': 'j'}, {'id': 'j'}, {'id': 'g', 'path': '/dev/z'}]}]}",
        "resources[0].source: \"/sys/class\" may not be a volume (not /, nor under /sys, /var or "
        "/dev but /dev/shm; a device node is a \"device\" resource)",
        "resources[1].source: \"/var/lib/x\" may not be a volume (not /, nor under /sys, /var or "
        "/dev but /dev/shm; a device node is a \"device\" resource)",
        "resources[2].source: \"/dev/sda\" may not be a volume (not /, nor under /sys, /var or "
        "/dev but /dev/shm; a device node is a \"device\" resource)",
        "resources[3].url: \"ftp://x/m.tgz\" is not an absolute path, a file:///, http:// or "
        "https:// URL",
        "resources[3].sha256: expected the archive's SHA-256 as 64 hex digits",
        "resources[3].dest: \"/proc/m\" may not be used as a destination",
        "resources[4].url: \"file:///srv/../etc/m.tgz\" may not contain \".\", \"..\" or empty "
        "levels",
        "resources[4].sha256: missing", "resources[4].dest: missing",
        "resources[5].value: missing (the secret, or a cloud_topic it comes on)",
        "resources[6].owner.group: expected \"auto\", a group name or a group id above 0",
        "resources[7].owner.grp: unknown key",
        "resources[7].owner.group: missing (\"auto\": the file's group, or a group name or id)",
        "resources[8].type: \"gpu\" is not device, volume, model or secret",
        "resources[9].url: unknown key",
        "resources[10]: give one of value (the core seals it) and cloud_topic",
        "resources[11].cloud_topic: expected an MQTT topic name (no wildcards)",
        "functions[0].resources[0].id: no resource \"zz\" in the group's resources",
        "functions[0].resources[1].access: a secret is read-only",
        "functions[0].resources[2].access: a volume from /proc is read-only",
        "functions[0].resources[4].id: resource \"j\" listed twice",
        "functions[0].resources[5].path: unknown key");
}

static void test_image_classification_parameters(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': 'g', 'resources': [{'id': 'k', 'type': 'secret', 'value': 'v'},"
        "  {'id': 'camera', 'type': 'device', 'path': '/dev/video0', 'owner': {'group': 'auto'}},"
        "  {'id': 'pictures', 'type': 'volume', 'source': '/srv/p', 'dest': '/p'}],"
        " 'connectors': ["
        " {'name': 'a', 'type': 'image-classification', 'parameters': {'model': 'k',"
        "   'input_size': [0, 224], 'mean': [1, 2, 3, 4], 'interval_ms': 100, 'top_k': 0,"
        "   'scale': 'x', 'model_file': '../m.onnx', 'source': 'cam', 'accelerator': 'tpu',"
        "   'labels': [1]}},"
        " {'name': 'b', 'type': 'image-classification', 'parameters': {'interval_ms': 10}},"
        " {'name': 'c', 'type': 'image-classification', 'parameters': {'model': 'k',"
        "   'source': '/dev/video0'}},"
        " {'name': 'd', 'type': 'image-classification', 'parameters': {'model': 'k',"
        "   'source': '/dev/video0'}, 'resources': [{'id': 'camera', 'access': 'rw'}]},"
        " {'name': 'e', 'type': 'image-classification', 'parameters': {'model': 'k',"
        "   'source': '/dev/video1'}, 'resources': [{'id': 'pictures'}]},"
        " {'name': 'f', 'type': 'image-classification', 'parameters': {'model': 'k',"
        "   'source': '/dev/video2'}, 'resources': [{'type': 'device', 'path': '/dev/video2'}]},"
        " {'name': 'g', 'type': 'image-classification', 'parameters': {'model': 'k',"
        "   'source': '/p/f_%s.png'}},"
        " {'name': 'h', 'type': 'image-classification', 'parameters': {'model': 'k',"
        "   'source': '/p/f_%03d.png', 'interval_ms': 100}}]}",
        "connectors[0].parameters.model: \"k\" is not a model resource of the group",
        "connectors[0].parameters.input_size: expected [width, height], each from 1 to 8192",
        "connectors[0].parameters.mean: expected 1 to 3 numbers from -1e+06 to 1e+06",
        "connectors[0].parameters.top_k: expected an integer from 1 to 100",
        "connectors[0].parameters.scale: expected a number from 0 to 1000000",
        "connectors[0].parameters.model_file: \"../m.onnx\" must be a relative path inside the "
        "model",
        "connectors[0].parameters.source: \"cam\" is not payload or an absolute path (a "
        "directory of images, a V4L2 device /dev/videoN or an image sequence such as "
        "/dir/frame_%03d.png)",
        "connectors[0].parameters.accelerator: \"tpu\" is not one of cpu, opencl, cuda, vulkan",
        "connectors[0].parameters.labels[0]: expected a string of at most 256 bytes",
        "connectors[1].parameters.model: missing (the id of a model resource of the group)",
        "connectors[1].parameters.interval_ms: a timer needs a source to take images from "
        "(source is payload)",
        "connectors[2].parameters.model: \"k\" is not a model resource of the group",
        "connectors[2].parameters.source: \"/dev/video0\" is not a device resource of the "
        "connector (list a group resource {\"type\": \"device\", \"path\": \"/dev/video0\"} "
        "by its id in its resources)",
        "connectors[3].parameters.model: \"k\" is not a model resource of the group",
        "connectors[4].parameters.model: \"k\" is not a model resource of the group",
        "connectors[4].parameters.source: \"/dev/video1\" is not a device resource of the "
        "connector (list a group resource {\"type\": \"device\", \"path\": \"/dev/video1\"} "
        "by its id in its resources)",
        "connectors[5].parameters.model: \"k\" is not a model resource of the group",
        "connectors[6].parameters.model: \"k\" is not a model resource of the group",
        "connectors[6].parameters.source: \"/p/f_%s.png\" is not an image sequence pattern "
        "(one %d or %0Nd in the file name, e.g. /dir/frame_%03d.png)",
        "connectors[7].parameters.model: \"k\" is not a model resource of the group");
}

static const uint8_t *fixed_key(void *ctx)
{
    return ctx;
}

static const uint8_t *no_key(void *ctx)
{
    (*(int *)ctx)++;
    return NULL;
}

static void test_secrets_are_sealed_and_unsealed_only_with_their_key_and_id(void **state)
{
    (void)state;
    json_t *doc = json_loads("{\"group\": \"g\", \"resources\": [{\"id\": \"k\", "
                             "\"type\": \"secret\", \"value\": \"hunter2\"}]}",
                             0, NULL);
    uint8_t key[GROUP_SEAL_KEY_BYTES] = {1, 2, 3}, other[GROUP_SEAL_KEY_BYTES] = {9};
    bool changed;
    int asked = 0;
    assert_int_equal(group_seal_secrets(doc, &(group_seal_key_t){no_key, &asked}, &changed),
                     SEDGE_ERR_DENIED); /* no key: never kept as given */
    assert_int_equal(asked, 1);
    assert_false(changed);
    assert_non_null(json_object_get(json_array_get(json_object_get(doc, "resources"), 0), "value"));
    group_seal_key_t sealing = {fixed_key, key};
    assert_int_equal(group_seal_secrets(doc, &sealing, &changed), SEDGE_OK);
    assert_true(changed);
    json_t *r = json_array_get(json_object_get(doc, "resources"), 0);
    assert_null(json_object_get(r, "value"));
    const char *sealed = json_string_value(json_object_get(r, "sealed"));
    assert_non_null(sealed);
    assert_null(strstr(sealed, "hunter2"));
    buf_t out = {0};
    assert_int_equal(group_unseal("k", sealed, key, &out), SEDGE_OK);
    assert_int_equal(out.len, 7);
    assert_memory_equal(out.data, "hunter2", 7);
    buf_free(&out);
    assert_int_equal(group_unseal("k", sealed, other, &out), SEDGE_ERR_DENIED);
    buf_free(&out);
    assert_int_equal(group_unseal("j", sealed, key, &out), SEDGE_ERR_DENIED);
    buf_free(&out);
    assert_int_equal(group_unseal("k", "sedge-sealed:v1:AAAA", key, &out), SEDGE_ERR_MALFORMED);
    buf_free(&out);
    /* Sealed again: nothing left to seal, and the key is not asked for. */
    assert_int_equal(group_seal_secrets(doc, &(group_seal_key_t){no_key, &asked}, &changed),
                     SEDGE_OK);
    assert_false(changed);
    assert_int_equal(asked, 1);
    char *text = json_dumps(doc, 0);
    group_free(parse_ok(text));
    free(text);
    json_decref(doc);
}

static void test_at_most_fifty_resources_per_group(void **state)
{
    (void)state;
    char text[8192] = "{'group': 'g', 'resources': [";
    for (int i = 0; i < 51; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 "%s{'id': 's%d', 'type': 'secret', 'value': 'v'}", i ? ", " : "", i);
    strcat(text, "]}");
    ASSERT_PROBLEMS(text, "resources: at most 50 resources in a group");
}

/* Issue 11 item 1: nothing of the document may change how a program loads
 * (the sandbox applies env only after dropping root, and these are refused
 * at deploy anyway), nor override what the core sets. */
static void test_loader_and_core_variables_are_refused_in_env(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': 'g', 'functions': [{'name': 'f', 'exec': ['x'], 'env': {"
        " 'LD_PRELOAD': '/tmp/x.so', 'LD_LIBRARY_PATH': '/tmp', 'LD_AUDIT': 'a',"
        " 'GCONV_PATH': '/tmp', 'GLIBC_TUNABLES': 'glibc.x=1', 'MALLOC_TRACE': '/tmp/t',"
        " 'SEDGE_TOKEN': 'forged', 'LEVEL': 'high', 'PATH': '/usr/bin'}}]}",
        "functions[0].env.LD_PRELOAD: refused: the dynamic loader or the C library acts on it "
        "before the function's own code runs (remove it; set it inside the function if it must)",
        "functions[0].env.LD_LIBRARY_PATH: refused: the dynamic loader or the C library acts on "
        "it before the function's own code runs (remove it; set it inside the function if it "
        "must)",
        "functions[0].env.LD_AUDIT: refused: the dynamic loader or the C library acts on it "
        "before the function's own code runs (remove it; set it inside the function if it must)",
        "functions[0].env.GCONV_PATH: refused: the dynamic loader or the C library acts on it "
        "before the function's own code runs (remove it; set it inside the function if it must)",
        "functions[0].env.GLIBC_TUNABLES: refused: the dynamic loader or the C library acts on "
        "it before the function's own code runs (remove it; set it inside the function if it "
        "must)",
        "functions[0].env.MALLOC_TRACE: refused: the dynamic loader or the C library acts on it "
        "before the function's own code runs (remove it; set it inside the function if it must)",
        "functions[0].env.SEDGE_TOKEN: refused: SEDGE_ variables are set by the core");
}

static void test_env_is_bounded(void **state)
{
    (void)state;
    char text[8192] = "{'group': 'g', 'functions': [{'name': 'f', 'exec': ['x'], 'env': {";
    for (int i = 0; i <= GROUP_MAX_ENV; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s'V%d': 'x'", i ? ", " : "", i);
    strcat(text, "}}]}");
    ASSERT_PROBLEMS(text, "functions[0].env: at most 64 variables");
}

/* Issue 11 item 2: a function's own files are a declared directory. */
static void test_code_is_a_local_directory_or_an_archive(void **state)
{
    (void)state;
    group_free(parse_ok("{'group': 'g', 'functions': ["
                        " {'name': 'a', 'exec': ['x'], 'code': '/opt/fn/a'},"
                        " {'name': 'b', 'exec': ['x'], 'code': {'path': '/opt/fn/b'}},"
                        " {'name': 'c', 'exec': ['bin/c'], 'code': {'url': 'https://x/c.tgz',"
                        "  'sha256': '0123456789abcdef0123456789abcdef"
                        "0123456789abcdef0123456789abcdef'}}]}"));
    ASSERT_PROBLEMS(
        "{'group': 'g', 'functions': ["
        " {'name': 'a', 'exec': ['x'], 'code': 'opt/fn'},"
        " {'name': 'b', 'exec': ['x'], 'code': '/opt/../etc'},"
        " {'name': 'c', 'exec': ['x'], 'code': '/'},"
        " {'name': 'd', 'exec': ['x'], 'code': '/proc/1'},"
        " {'name': 'e', 'exec': ['x'], 'code': 7},"
        " {'name': 'f', 'exec': ['x'], 'code': {'url': 'https://x/f.tgz', 'sha256': 'ab'}},"
        " {'name': 'g', 'exec': ['x'], 'code': {'path': '/a', 'mode': 'x'}},"
        " {'name': 'h', 'exec': ['x'], 'standby': 'no'},"
        " {'name': 'i', 'exec': ['x'], 'code': {'url': '/a.tgz', 'signature': 'short',"
        "  'sha256': '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'}}]}",
        "functions[0].code: \"opt/fn\" must be an absolute path",
        "functions[1].code: \"/opt/../etc\" may not contain \".\", \"..\" or empty levels",
        "functions[2].code: \"/\" may not be a function's code directory",
        "functions[3].code: \"/proc/1\" may not be a function's code directory",
        "functions[4].code: expected a directory (\"/path/dir\" or {\"path\": \"/path/dir\"})",
        "functions[5].code.sha256: expected the archive's SHA-256 as 64 hex digits",
        "functions[6].code.mode: unknown key", "functions[7].standby: expected true or false",
        "functions[8].code.signature: expected the base64 of a 64-byte Ed25519 signature");
}

/* Issue 11 item 3: a device resource names one device node, not /dev. */
static void test_device_resource_is_one_node(void **state)
{
    (void)state;
    ASSERT_PROBLEMS("{'group': 'g', 'functions': [{'name': 'a', 'exec': ['x'], 'resources': ["
                    "   {'type': 'device', 'path': '/dev/'},"
                    "   {'type': 'device', 'path': '/dev/input/'}]}]}",
                    "functions[0].resources[0].path: \"/dev/\" is a directory; a device "
                    "resource names one device node",
                    "functions[0].resources[1].path: \"/dev/input/\" is a directory; a device "
                    "resource names one device node");
}

static void test_revoked_entries_must_be_thing_names(void **state)
{
    (void)state;
    ASSERT_PROBLEMS("{'group': 'g', 'revoked': ['ok', 7, '', 'a b']}",
                    "revoked[1]: expected a thing name", "revoked[2]: expected a thing name",
                    "revoked[3]: expected a thing name");
    /* A revoked thing need not be (or no longer be) in the group. */
    group_t *g = parse_ok("{'group': 'g', 'revoked': ['gone', 'also.gone']}");
    assert_int_equal(g->revoked_count, 2);
    assert_true(group_is_revoked(g, BYTES_LIT("also.gone")));
    assert_false(group_is_revoked(g, BYTES_LIT("also")));
    group_free(g);
}

static void test_shadow_sync_problems(void **state)
{
    (void)state;
    ASSERT_PROBLEMS("{'group': 'g', 'shadows': {'sync': {}}}", "shadows.sync: expected an array");
    ASSERT_PROBLEMS("{'group': 'g', 'shadows': {'sync': ["
                    " 'lamp', {}, {'thing': 'a b'}, {'thing': 'lamp', 'names': 'cfg'},"
                    " {'thing': 'lamp', 'direction': 'sideways'}]}}",
                    "shadows.sync[0]: expected an object", "shadows.sync[1].thing: missing",
                    "shadows.sync[2].thing: invalid thing name \"a b\"",
                    "shadows.sync[3].names: expected an array of shadow names",
                    "shadows.sync[4].direction: \"sideways\" is not between_device_and_cloud, "
                    "device_to_cloud or cloud_to_device");
    group_free(parse_ok("{'group': 'g', 'shadows': {}}"));
}

static void test_every_problem_is_reported_at_once(void **state)
{
    (void)state;
    ASSERT_PROBLEMS(
        "{'group': '', 'extra': 1, 'things': [{'name': 'lamp'}, {'name': 'lamp'}],"
        " 'functions': [{'name': 'f'}],"
        " 'routes': [{'source': 'thing:lamp', 'filter': 'a', 'target': 'function:alarm'},"
        "            {'source': 'cloud', 'filter': '#/a', 'target': 'thing:lamp', 'qos': 3}],"
        " 'revoked': [1], 'shadows': {'sync': [{'thing': 'lamp', 'direction': 'up'}]}}",
        "group: expected a name of 1 to 128 of a-z A-Z 0-9 - _ : .", "extra: unknown key",
        "things[1].name: duplicate name \"lamp\"",
        "functions[0].exec: missing (the program and its arguments)",
        "routes[0].target: unknown function \"alarm\"",
        "routes[1].filter: \"#/a\" is not a valid MQTT topic filter",
        "routes[1].qos: expected 0 or 1", "revoked[0]: expected a thing name",
        "shadows.sync[0].direction: \"up\" is not between_device_and_cloud, device_to_cloud or "
        "cloud_to_device");
}

static void test_problems_without_an_error_buffer_still_refuse(void **state)
{
    (void)state;
    static const char text[] = "{\"group\": \"g\", \"x\": 1}";
    group_t *g = (group_t *)1;
    assert_int_equal(group_parse(text, strlen(text), GROUP_MAX_BYTES_DEFAULT, &g, NULL),
                     SEDGE_ERR_INVALID);
    assert_null(g);
    assert_int_equal(group_parse(text, strlen(text), 3, &g, NULL), SEDGE_ERR_TOO_LARGE);
    assert_null(g);
    group_free(NULL);
}

static void test_a_long_problem_is_cut_but_keeps_its_line(void **state)
{
    (void)state;
    /* A filter of 2000 levels: the message is cut, still one line. */
    size_t n = 4000;
    char *text = malloc(n + 200);
    assert_non_null(text);
    strcpy(text, "{'group': 'g', 'routes': [{'source': 'cloud', 'target': 'shadow', 'filter': '");
    size_t at = strlen(text);
    for (size_t i = 0; i < n; i += 2) {
        text[at++] = 'a';
        text[at++] = '/';
    }
    text[at++] = '#';
    strcpy(text + at, "/x'}], 'revoked': [1]}");
    char *json = doc(text);
    char *errors = parse_refused(json, strlen(json), GROUP_MAX_BYTES_DEFAULT, SEDGE_ERR_INVALID);
    assert_int_equal(count_lines(errors), 2);
    assert_ptr_equal(strstr(errors, "routes[0].filter: \"a/a/a/"), errors);
    assert_true(has_line(errors, "revoked[0]: expected a thing name"));
    free(errors);
    free(json);
    free(text);
}

static void test_a_newline_in_a_key_does_not_start_a_new_problem(void **state)
{
    (void)state;
    static const char text[] = "{\"group\": \"g\", \"x\\ny: fake problem\": 1,"
                               " \"routes\": [{\"source\": \"a\\tb\", \"filter\": \"t\","
                               " \"target\": \"cloud\"}]}";
    char *errors = parse_refused(text, strlen(text), GROUP_MAX_BYTES_DEFAULT, SEDGE_ERR_INVALID);
    assert_int_equal(count_lines(errors), 2);
    assert_true(has_line(errors, "x?y: fake problem: unknown key"));
    assert_true(has_line(errors, "routes[0].source: unknown endpoint \"a?b\" (expected "
                                 "thing:NAME, thing:*, function:NAME, connector:NAME, cloud or "
                                 "shadow)"));
    free(errors);
}

static void test_a_long_unknown_key_is_cut_and_the_problem_still_named(void **state)
{
    (void)state;
    char key[1001];
    memset(key, 'k', 1000);
    key[1000] = '\0';
    char text[2200];
    snprintf(text, sizeof text,
             "{'group': 'g', '%s': 1, 'functions': [{'name': 'f', 'exec': ['x'],"
             " 'env': {'%s': 1}}]}",
             key, key);
    char line[256];
    snprintf(line, sizeof line, "%.128s...: unknown key", key);
    char env_line[256];
    snprintf(env_line, sizeof env_line, "functions[0].env.%.128s...: expected a string", key);
    ASSERT_PROBLEMS(text, line, env_line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_document_has_a_name_and_nothing_else),
        cmocka_unit_test(test_full_document_parses_every_section),
        cmocka_unit_test(test_route_text_names_source_filter_and_target),
        cmocka_unit_test(test_routes_may_name_things_and_functions_declared_after_them),
        cmocka_unit_test(test_checksum_is_the_sha256_of_the_text),
        cmocka_unit_test(test_only_len_bytes_of_the_text_are_read),
        cmocka_unit_test(test_name_length_limit_is_128),
        cmocka_unit_test(test_valid_thing_names),
        cmocka_unit_test(test_over_the_size_limit_is_too_large),
        cmocka_unit_test(test_invalid_json_names_line_and_column),
        cmocka_unit_test(test_duplicate_json_keys_are_invalid_json),
        cmocka_unit_test(test_nul_in_a_string_is_invalid_json),
        cmocka_unit_test(test_document_must_be_an_object),
        cmocka_unit_test(test_group_name_missing_or_invalid),
        cmocka_unit_test(test_unknown_keys_are_named_with_their_path),
        cmocka_unit_test(test_sections_must_be_arrays),
        cmocka_unit_test(test_thing_problems),
        cmocka_unit_test(test_duplicate_names_in_every_section),
        cmocka_unit_test(test_names_the_same_across_sections_are_not_duplicates),
        cmocka_unit_test(test_connector_types_and_parameters),
        cmocka_unit_test(test_connector_and_resource_entries),
        cmocka_unit_test(test_route_problems_each_name_their_route),
        cmocka_unit_test(test_shared_subscription_is_not_a_route_filter),
        cmocka_unit_test(test_function_problems),
        cmocka_unit_test(test_function_limits_accept_their_bounds),
        cmocka_unit_test(test_run_as_takes_only_decimal_ids),
        cmocka_unit_test(test_function_resource_problems),
        cmocka_unit_test(test_resource_paths_may_not_climb_out),
        cmocka_unit_test(test_at_most_twenty_resources_per_function),
        cmocka_unit_test(test_group_resources_and_their_rules),
        cmocka_unit_test(test_at_most_fifty_resources_per_group),
        cmocka_unit_test(test_image_classification_parameters),
        cmocka_unit_test(test_secrets_are_sealed_and_unsealed_only_with_their_key_and_id),
        cmocka_unit_test(test_loader_and_core_variables_are_refused_in_env),
        cmocka_unit_test(test_env_is_bounded),
        cmocka_unit_test(test_code_is_a_local_directory_or_an_archive),
        cmocka_unit_test(test_device_resource_is_one_node),
        cmocka_unit_test(test_revoked_entries_must_be_thing_names),
        cmocka_unit_test(test_shadow_sync_problems),
        cmocka_unit_test(test_every_problem_is_reported_at_once),
        cmocka_unit_test(test_problems_without_an_error_buffer_still_refuse),
        cmocka_unit_test(test_a_long_problem_is_cut_but_keeps_its_line),
        cmocka_unit_test(test_a_newline_in_a_key_does_not_start_a_new_problem),
        cmocka_unit_test(test_a_long_unknown_key_is_cut_and_the_problem_still_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
