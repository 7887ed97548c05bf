/*
 * lazylib: libcurl and libarchive are not mapped until their first load;
 * loads from several threads at once all succeed with the same table,
 * every function of it resolved, and the libraries are mapped once.
 */
#include "lazylib/lazylib.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, name) != NULL;
    if (f)
        fclose(f);
    return n;
}

static void *load_both(void *arg)
{
    char why[256] = "";
    (void)arg;
    if (lazy_curl_load(why, sizeof why) || lazy_archive_load(why, sizeof why))
        return NULL;
    return (void *)lazy_curl();
}

static void all_set(const void *table, size_t size)
{
    const unsigned char *p = table;
    for (size_t off = 0; off < size; off += sizeof(void *)) {
        void *f;
        memcpy(&f, p + off, sizeof f);
        assert_non_null(f);
    }
}

static void test_mapped_only_after_the_first_load_from_any_thread(void **state)
{
    (void)state;
    assert_int_equal(mapped("libcurl.so"), 0);
    assert_int_equal(mapped("libarchive.so"), 0);
    pthread_t t[4];
    void *got[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, load_both, NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &got[i]), 0);
        assert_ptr_equal(got[i], lazy_curl());
    }
    assert_true(mapped("libcurl.so") > 0);
    assert_true(mapped("libarchive.so") > 0);
    all_set(lazy_curl(), sizeof(lazy_curl_t));
    all_set(lazy_archive(), sizeof(lazy_archive_t));
    assert_string_equal(lazy_curl()->easy_strerror(CURLE_OK), "No error");
    struct archive *a = lazy_archive()->read_new();
    assert_non_null(a);
    assert_int_equal(lazy_archive()->read_free(a), ARCHIVE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapped_only_after_the_first_load_from_any_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
