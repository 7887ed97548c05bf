/*
 * libFuzzer target for the shadow document rules (shadow/doc.h).
 *
 * The input is two JSON texts split at the first 0 byte: a section T (what
 * the shadow holds) and a patch P (what a request sends); either may be any
 * JSON value. Each is held to the rules written out again here, so that
 * they check doc.c instead of sharing its mistakes:
 *
 *   - depth is the levels of objects and arrays, exact up to the limit and
 *     over it past;
 *   - metadata is an exact mirror: same keys, same array lengths, each leaf
 *     {"timestamp": ts};
 *   - after merging P into T, every non-null leaf of P is in T with its
 *     value and a fresh timestamp, every null of P is gone from T, what P
 *     does not name is untouched, the metadata still mirrors T, and merging
 *     P again changes nothing;
 *   - delta(d, d) is NULL; delta keys are desired keys whose value differs
 *     (objects in both recursed, never empty), and no differing key is
 *     missed; once reported has had desired merged in (desired holding no
 *     null), there is no delta; the delta's metadata mirrors the delta.
 *
 * LeakSanitizer checks every reference is given back.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/doc.h"
#include "fuzz_check.h"

enum { TS_BEFORE = 1000, TS_NOW = 2000 };

/* ---- depth ---- */

static int true_depth(const json_t *v)
{
    int deepest = 0;
    const char *k;
    size_t i;
    json_t *c;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, c)
        {
            int d = true_depth(c);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (json_is_array(v)) {
        json_array_foreach((json_t *)v, i, c)
        {
            int d = true_depth(c);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

static void check_depth(const json_t *v)
{
    int want = true_depth(v), got = shadow_depth(v);
    if (want <= SHADOW_MAX_DEPTH)
        CHECK(got == want);
    else
        CHECK(got > SHADOW_MAX_DEPTH && got <= want);
}

/* ---- metadata ---- */

static bool is_leaf_meta(const json_t *m, int64_t ts)
{
    json_t *t = json_object_get(m, "timestamp");
    return json_is_object(m) && json_object_size(m) == 1 && json_is_integer(t) &&
           (ts < 0 || json_integer_value(t) == ts);
}

/* Is `m` an exact mirror of `v`, with leaves stamped `ts` (any, if < 0)? */
static bool mirrors(const json_t *v, const json_t *m, int64_t ts)
{
    const char *k;
    size_t i;
    json_t *c;
    if (json_is_object(v)) {
        if (!json_is_object(m) || json_object_size(m) != json_object_size(v))
            return false;
        json_object_foreach((json_t *)v, k,
                            c) if (!mirrors(c, json_object_get(m, k), ts)) return false;
        return true;
    }
    if (json_is_array(v)) {
        if (!json_is_array(m) || json_array_size(m) != json_array_size(v))
            return false;
        json_array_foreach((json_t *)v, i,
                           c) if (!mirrors(c, json_array_get(m, i), ts)) return false;
        return true;
    }
    return is_leaf_meta(m, ts);
}

/* Can a value be reached from the top through objects and hold a null? */
static bool has_object_null(const json_t *v)
{
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)v, k, c) if (json_is_null(c) || (json_is_object(c) &&
                                                                   has_object_null(c))) return true;
    return false;
}

/* ---- merge ---- */

/* `after` (and its metadata) is `before` with `patch` merged at TS_NOW;
 * `before_meta` stamped TS_BEFORE throughout. */
static void check_merged(const json_t *before, const json_t *after, const json_t *meta,
                         const json_t *patch)
{
    const char *k;
    json_t *p;
    json_object_foreach((json_t *)patch, k, p)
    {
        json_t *a = json_object_get(after, k), *m = json_object_get(meta, k);
        if (json_is_null(p)) {
            CHECK(!a && !m);
        } else if (json_is_object(p)) {
            CHECK(json_is_object(a) && json_is_object(m));
            json_t *b = json_object_get(before, k);
            check_merged(json_is_object(b) ? b : NULL, a, m, p);
        } else {
            CHECK(a && json_equal(a, p));
            CHECK(mirrors(p, m, TS_NOW));
        }
    }
    /* What the patch does not name is as it was. */
    json_t *b;
    json_object_foreach((json_t *)before, k, b)
    {
        if (json_object_get(patch, k))
            continue;
        json_t *a = json_object_get(after, k);
        CHECK(a && json_equal(a, b));
        CHECK(mirrors(b, json_object_get(meta, k), TS_BEFORE));
    }
    /* Nothing else appeared. */
    json_t *a;
    json_object_foreach((json_t *)after, k, a)
        CHECK(json_object_get(before, k) || json_object_get(patch, k));
}

/* ---- delta ---- */

static void check_delta(const json_t *desired, const json_t *reported, const json_t *delta)
{
    const char *k;
    json_t *dv;
    if (!json_is_object(desired)) {
        CHECK(!delta);
        return;
    }
    if (delta)
        CHECK(json_is_object(delta) && json_object_size(delta) > 0);
    /* Every delta key is a desired key with a differing value... */
    json_object_foreach((json_t *)delta, k, dv)
    {
        json_t *want = json_object_get(desired, k);
        CHECK(want);
        json_t *rv = json_is_object(reported) ? json_object_get(reported, k) : NULL;
        if (json_is_object(want) && json_is_object(rv)) {
            CHECK(json_is_object(dv));
            check_delta(want, rv, dv);
        } else {
            CHECK(json_equal(dv, want));
            CHECK(!rv || !json_equal(rv, want));
        }
    }
    /* ...and every desired key missing from it agrees with reported. */
    json_object_foreach((json_t *)desired, k, dv)
    {
        if (json_object_get(delta, k))
            continue;
        json_t *rv = json_is_object(reported) ? json_object_get(reported, k) : NULL;
        CHECK(rv);
        CHECK(json_equal(dv, rv) || (json_is_object(dv) && json_is_object(rv)));
    }
}

static json_t *delta_checked(const json_t *desired, const json_t *reported)
{
    json_t *delta = shadow_delta(desired, reported);
    check_delta(desired, reported, delta);
    return delta;
}

/* The delta's metadata, from a desired metadata mirroring `desired`. */
static void check_delta_metadata(const json_t *delta, const json_t *desired_meta, int64_t ts)
{
    json_t *m = shadow_delta_metadata(delta, desired_meta);
    CHECK(m);
    if (delta)
        CHECK(mirrors(delta, m, ts));
    else
        CHECK(json_is_object(m) && json_object_size(m) == 0);
    json_decref(m);
}

/* ---- the target ---- */

static void run(json_t *t, json_t *p)
{
    check_depth(t);
    check_depth(p);

    json_t *tm = shadow_metadata_of(t, TS_BEFORE);
    CHECK(mirrors(t, tm, TS_BEFORE));

    /* delta(d, d) is NULL, and the whole desired differs from nothing. */
    json_t *d = delta_checked(t, t);
    CHECK(!d);
    d = delta_checked(p, p);
    CHECK(!d);
    d = delta_checked(t, NULL);
    check_delta_metadata(d, tm, TS_BEFORE);
    json_decref(d);

    d = delta_checked(t, p);
    check_delta_metadata(d, tm, TS_BEFORE);
    json_decref(d);
    json_decref(delta_checked(p, t));

    if (!json_is_object(t) || !json_is_object(p)) {
        json_decref(tm);
        return;
    }

    /* Merge P into T. */
    json_t *before = json_deep_copy(t);
    CHECK(before);
    shadow_merge(t, tm, p, TS_NOW);
    check_merged(before, t, tm, p);
    CHECK(mirrors(t, tm, -1));
    check_depth(t);

    /* Again: the same document, every leaf P names stamped again. */
    json_t *once = json_deep_copy(t);
    shadow_merge(t, tm, p, TS_NOW);
    CHECK(json_equal(t, once));
    CHECK(mirrors(t, tm, -1));
    json_decref(once);

    /* The delta of the merged section against the patch and the old one,
     * with metadata of mixed times. */
    d = delta_checked(t, p);
    check_delta_metadata(d, tm, -1);
    json_decref(d);
    d = delta_checked(t, before);
    check_delta_metadata(d, tm, -1);
    if (d)
        CHECK(json_object_size(p) > 0);
    json_decref(d);

    /* Reported catching up with desired P leaves no delta. */
    if (!has_object_null(p)) {
        json_t *reported = json_deep_copy(before), *rmeta = shadow_metadata_of(before, 1);
        shadow_merge(reported, rmeta, p, TS_NOW);
        d = delta_checked(p, reported);
        CHECK(!d);
        json_decref(reported);
        json_decref(rmeta);
    }

    json_decref(before);
    json_decref(tm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    const char *ptext = nul ? (const char *)nul + 1 : "{}";
    size_t plen = nul ? size - tlen - 1 : 2;
    json_error_t err;
    json_t *t = json_loadb((const char *)data, tlen, JSON_DECODE_ANY, &err);
    json_t *p = json_loadb(ptext, plen, JSON_DECODE_ANY, &err);
    if (t && p)
        run(t, p);
    else if (t || p)
        check_depth(t ? t : p);
    json_decref(t);
    json_decref(p);
    return 0;
}
