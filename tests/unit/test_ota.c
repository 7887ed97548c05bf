/*
 * The OTA module's pure parts: version order, the paths and links a
 * release tree may hold, the manifest's validation (what it accepts and
 * the reason it gives for what it refuses), and the update state file's
 * round trip and atomic `current` switch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota/ota.h"

static void versions_order_numerically(void **state)
{
    (void)state;
    assert_true(ota_version_cmp("0.10.0", "0.9.9") > 0);
    assert_true(ota_version_cmp("1.2", "1.2.0") == 0);
    assert_true(ota_version_cmp("1.2.1", "1.2") > 0);
    assert_true(ota_version_cmp("2", "10") < 0);
    assert_false(ota_version_valid("1..2"));
    assert_false(ota_version_valid("1.2-rc1"));
    assert_false(ota_version_valid(".1"));
    assert_false(ota_version_valid("1."));
    assert_false(ota_version_valid(""));
    assert_true(ota_version_cmp("junk", "0") < 0);
}

static void paths_stay_inside_the_tree(void **state)
{
    (void)state;
    assert_true(ota_path_valid("bin/sedged"));
    assert_false(ota_path_valid("/bin/sedged"));
    assert_false(ota_path_valid("../x"));
    assert_false(ota_path_valid("bin/../../x"));
    assert_false(ota_path_valid("bin//x"));
    assert_false(ota_path_valid("bin/./x"));
    assert_false(ota_path_valid("bin/"));
    assert_false(ota_path_valid("bin/a\nb"));
    assert_true(ota_link_inside("lib/libsedge.so.0", "libsedge.so"));
    assert_true(ota_link_inside("lib/x", "../bin/sedged"));
    assert_false(ota_link_inside("lib/x", "../../etc/passwd"));
    assert_false(ota_link_inside("x", "../x"));
    assert_false(ota_link_inside("lib/x", "/etc/passwd"));
    assert_false(ota_link_inside("lib/x", ""));
}

#define SHA "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""
#define HEAD                                                                                       \
    "{\"format\":1,\"product\":\"sedge\",\"version\":\"1.2.3\",\"architecture\":\"x86_64\","       \
    "\"store_schema\":2,\"key_id\":\"0123456789abcdef\",\"payload\":{\"size\":10,\"sha256\":" SHA  \
    "},"
#define SEDGED "{\"path\":\"bin/sedged\",\"size\":5,\"sha256\":" SHA ",\"mode\":493}"

static void expect_refused(const char *text, const char *reason)
{
    ota_manifest_t m;
    char err[300];
    assert_int_not_equal(ota_manifest_parse(bytes_of_cstr(text), &m, err, sizeof err), SEDGE_OK);
    if (!strstr(err, reason))
        fail_msg("for %s\nexpected \"%s\" in \"%s\"", text, reason, err);
    assert_null(m.files);
}

static void manifest_accepts_a_release(void **state)
{
    (void)state;
    const char *text = HEAD "\"files\":[{\"path\":\"lib/libsedge.so.0\",\"link\":\"libsedge.so\"},"
                            "{\"path\":\"lib/libsedge.so\",\"size\":7,\"sha256\":" SHA
                            ",\"mode\":420}," SEDGED "]}";
    ota_manifest_t m;
    char err[300];
    assert_int_equal(ota_manifest_parse(bytes_of_cstr(text), &m, err, sizeof err), SEDGE_OK);
    assert_string_equal(m.version, "1.2.3");
    assert_string_equal(m.min_version, "0");
    assert_int_equal(m.file_count, 3);
    assert_string_equal(m.files[0].path, "bin/sedged"); /* sorted */
    assert_int_equal(m.files[0].mode, 0755);
    assert_string_equal(m.files[2].link, "libsedge.so");
    assert_int_equal(m.payload_size, 10);
    ota_manifest_free(&m);
}

static void manifest_refusals_say_why(void **state)
{
    (void)state;
    expect_refused("[]", "not a JSON object");
    expect_refused("{", "not JSON");
    expect_refused(HEAD "\"files\":[]}", "files must be an array");
    expect_refused(HEAD "\"files\":[{\"path\":\"bin/x\",\"size\":5,\"sha256\":" SHA
                        ",\"mode\":493}]}",
                   "no executable sbin/sedged or bin/sedged");
    expect_refused(HEAD "\"files\":[" SEDGED ",{\"path\":\"../x\",\"size\":1,\"sha256\":" SHA
                        ",\"mode\":420}]}",
                   "files[1].path");
    expect_refused(HEAD "\"files\":[" SEDGED ",{\"path\":\"x\",\"link\":\"/etc\"}]}",
                   "leaves the tree");
    expect_refused(HEAD "\"files\":[" SEDGED "," SEDGED "]}", "listed twice");
    expect_refused(HEAD "\"files\":[" SEDGED ",{\"path\":\"bin/sedged/x\",\"link\":\"y\"}]}",
                   "a file and a directory");
    expect_refused(HEAD "\"files\":[{\"path\":\"bin/sedged\",\"size\":5,\"sha256\":" SHA
                        ",\"mode\":511}]}",
                   "mode");
    expect_refused(HEAD "\"files\":[{\"path\":\"bin/sedged\",\"size\":99999999999,\"sha256\":" SHA
                        ",\"mode\":493}]}",
                   "size");
    expect_refused("{\"format\":1,\"product\":\"sedge\",\"version\":\"1.x\"}", "version");
    expect_refused("{\"format\":2}", "format must be 1");
    expect_refused("{\"format\":1,\"format\":1}", "not JSON");
}

static void state_round_trips_and_current_switches(void **state)
{
    (void)state;
    char root[] = "/tmp/sedge-ota-unit-XXXXXX";
    assert_non_null(mkdtemp(root));
    ota_state_t st;
    assert_int_equal(ota_state_load(root, &st), SEDGE_OK);
    assert_int_equal(st.phase, OTA_IDLE);
    st.phase = OTA_TRYING;
    snprintf(st.version, sizeof st.version, "1.2.3");
    snprintf(st.slot, sizeof st.slot, "b");
    st.tries_left = 2;
    ota_state_mark_bad(&st, "9.9");
    assert_int_equal(ota_state_save(root, &st), SEDGE_OK);
    ota_state_t back;
    assert_int_equal(ota_state_load(root, &back), SEDGE_OK);
    assert_int_equal(back.phase, OTA_TRYING);
    assert_string_equal(back.version, "1.2.3");
    assert_string_equal(back.slot, "b");
    assert_int_equal(back.tries_left, 2);
    assert_true(ota_state_is_bad(&back, "9.9"));
    assert_false(ota_state_is_bad(&back, "1.2.3"));
    char slot[2];
    ota_current_slot(root, slot);
    assert_string_equal(slot, "");
    assert_int_equal(ota_switch(root, "a"), SEDGE_OK);
    ota_current_slot(root, slot);
    assert_string_equal(slot, "a");
    assert_int_equal(ota_switch(root, "b"), SEDGE_OK);
    ota_current_slot(root, slot);
    assert_string_equal(slot, "b");
    assert_int_equal(ota_switch(root, ""), SEDGE_OK);
    ota_current_slot(root, slot);
    assert_string_equal(slot, "");
    assert_int_equal(ota_remove_tree(root), SEDGE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(versions_order_numerically),
        cmocka_unit_test(paths_stay_inside_the_tree),
        cmocka_unit_test(manifest_accepts_a_release),
        cmocka_unit_test(manifest_refusals_say_why),
        cmocka_unit_test(state_round_trips_and_current_switches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
