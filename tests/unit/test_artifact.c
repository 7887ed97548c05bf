/*
 * The artifact cache's limits, with archives made here by libarchive:
 * a small archive that inflates past the cap (a "zip bomb") stops at the
 * cap whatever its header claims, too many entries stop at the count,
 * device nodes and FIFOs are refused, and every refusal leaves nothing.
 */
#include "artifact/artifact.h"

#include <archive.h>
#include <archive_entry.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

static char workdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/sedge-artifact-XXXXXX");
    return mkdtemp(workdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    artifact_remove_tree(workdir);
    return 0;
}

typedef struct {
    const char *name;
    mode_t type;
    size_t size; /* zeros written */
} entry_t;

static void make_archive(const char *path, const entry_t *entries, size_t count, bool zip)
{
    struct archive *a = archive_write_new();
    if (zip) {
        archive_write_set_format_zip(a);
    } else {
        archive_write_add_filter_gzip(a);
        archive_write_set_format_pax_restricted(a);
    }
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    static uint8_t zeros[65536];
    for (size_t i = 0; i < count; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, entries[i].name);
        archive_entry_set_filetype(e, entries[i].type);
        archive_entry_set_perm(e, 0644);
        if (entries[i].type == AE_IFCHR)
            archive_entry_set_rdev(e, makedev(1, 3));
        archive_entry_set_size(e, (la_int64_t)entries[i].size);
        archive_write_header(a, e);
        for (size_t left = entries[i].size; left;) {
            size_t n = left < sizeof zeros ? left : sizeof zeros;
            archive_write_data(a, zeros, n);
            left -= n;
        }
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static sedge_err unpack(const char *archive, const artifact_limits_t *lim, char *why, size_t len,
                        bool *left_something)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/out", workdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    sedge_err err = artifact_unpack(archive, dir, lim, why, len);
    struct stat st;
    *left_something = stat(dir, &st) == 0;
    if (*left_something)
        artifact_remove_tree(dir);
    return err;
}

static void test_a_bomb_stops_at_the_cap(void **state)
{
    (void)state;
    char path[300], why[512];
    snprintf(path, sizeof path, "%s/bomb.tar.gz", workdir);
    entry_t e[] = {{"zeros", AE_IFREG, 8u << 20}};
    make_archive(path, e, 1, false);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size < 64 * 1024); /* small on disk */
    artifact_limits_t lim = ARTIFACT_LIMITS_DEFAULT;
    lim.max_unpacked_bytes = 1u << 20;
    bool left;
    assert_int_equal(unpack(path, &lim, why, sizeof why, &left), SEDGE_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "unpacks to more than 1048576 bytes"));
    assert_false(left);
    lim.max_unpacked_bytes = 16u << 20;
    assert_int_equal(unpack(path, &lim, why, sizeof why, &left), SEDGE_OK);
}

static void test_too_many_entries(void **state)
{
    (void)state;
    char path[300], why[512];
    snprintf(path, sizeof path, "%s/many.zip", workdir);
    entry_t e[20];
    char names[20][8];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        e[i] = (entry_t){names[i], AE_IFREG, 1};
    }
    make_archive(path, e, 20, true);
    artifact_limits_t lim = ARTIFACT_LIMITS_DEFAULT;
    lim.max_entries = 10;
    bool left;
    assert_int_equal(unpack(path, &lim, why, sizeof why, &left), SEDGE_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "more than 10 entries"));
    assert_false(left);
}

static void test_devices_and_fifos_are_refused(void **state)
{
    (void)state;
    char path[300], why[512];
    snprintf(path, sizeof path, "%s/dev.tar.gz", workdir);
    entry_t dev[] = {{"ok", AE_IFREG, 4}, {"null", AE_IFCHR, 0}};
    make_archive(path, dev, 2, false);
    artifact_limits_t lim = ARTIFACT_LIMITS_DEFAULT;
    bool left;
    assert_int_equal(unpack(path, &lim, why, sizeof why, &left), SEDGE_ERR_DENIED);
    assert_non_null(strstr(why, "archive entry null: only files, directories and links"));
    assert_false(left);
    entry_t fifo[] = {{"pipe", AE_IFIFO, 0}};
    make_archive(path, fifo, 1, false);
    assert_int_equal(unpack(path, &lim, why, sizeof why, &left), SEDGE_ERR_DENIED);
    assert_false(left);
}

static void test_cache_fetch_verifies_and_prunes(void **state)
{
    (void)state;
    char path[300], cache[300], dir[600], why[512];
    snprintf(path, sizeof path, "%s/m.tar.gz", workdir);
    snprintf(cache, sizeof cache, "%s/cache", workdir);
    entry_t e[] = {{"model.onnx", AE_IFREG, 100}};
    make_archive(path, e, 1, false);
    artifact_limits_t lim = ARTIFACT_LIMITS_DEFAULT;
    const char *wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(
        artifact_fetch_unpack(cache, path, wrong, &lim, dir, sizeof dir, why, sizeof why),
        SEDGE_ERR_DENIED);
    assert_non_null(strstr(why, "not the 0000"));
    /* The real hash: from the error of a wrong one, as a user would. */
    char sha[65];
    const char *p = strstr(why, "SHA-256 is ");
    assert_non_null(p);
    memcpy(sha, p + 11, 64);
    sha[64] = '\0';
    assert_int_equal(
        artifact_fetch_unpack(cache, path, sha, &lim, dir, sizeof dir, why, sizeof why), SEDGE_OK);
    assert_true(artifact_cached(cache, sha, dir, sizeof dir));
    const char *keep[] = {sha};
    artifact_cache_prune(cache, keep, 1);
    assert_true(artifact_cached(cache, sha, dir, sizeof dir));
    artifact_cache_prune(cache, NULL, 0);
    assert_false(artifact_cached(cache, sha, dir, sizeof dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_bomb_stops_at_the_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices_and_fifos_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_fetch_verifies_and_prunes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
