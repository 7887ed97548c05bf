/* doc: shadow document merge, metadata and delta. */
#include "doc.h"

#include <stdbool.h>

int shadow_depth(const json_t *v)
{
    int deepest = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c)
        {
            int d = shadow_depth(c);
            if (d > deepest)
                deepest = d;
            if (deepest > SHADOW_MAX_DEPTH)
                break; /* deep enough to refuse; stop looking */
        }
        return deepest + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach((json_t *)v, i, c)
        {
            int d = shadow_depth(c);
            if (d > deepest)
                deepest = d;
            if (deepest > SHADOW_MAX_DEPTH)
                break;
        }
        return deepest + 1;
    }
    return 0;
}

json_t *shadow_metadata_of(const json_t *v, int64_t ts)
{
    if (json_is_object(v)) {
        json_t *m = json_object();
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) json_object_set_new(m, k, shadow_metadata_of(c, ts));
        return m;
    }
    if (json_is_array(v)) {
        json_t *m = json_array();
        size_t i;
        json_t *c;
        json_array_foreach((json_t *)v, i, c) json_array_append_new(m, shadow_metadata_of(c, ts));
        return m;
    }
    json_t *leaf = json_object();
    json_object_set_new(leaf, "timestamp", json_integer(ts));
    return leaf;
}

void shadow_merge(json_t *target, json_t *meta, const json_t *patch, int64_t ts)
{
    const char *k;
    json_t *value;
    json_object_foreach((json_t *)patch, k, value)
    {
        if (json_is_null(value)) {
            json_object_del(target, k);
            json_object_del(meta, k);
            continue;
        }
        if (json_is_object(value)) {
            json_t *sub = json_object_get(target, k);
            /* Over a scalar or an array, the old value's metadata (itself
             * an object, {"timestamp": N}, for a scalar) goes with it. */
            bool fresh = !json_is_object(sub);
            if (fresh) {
                sub = json_object();
                json_object_set_new(target, k, sub);
            }
            json_t *sub_meta = json_object_get(meta, k);
            if (fresh || !json_is_object(sub_meta)) {
                sub_meta = json_object();
                json_object_set_new(meta, k, sub_meta);
            }
            shadow_merge(sub, sub_meta, value, ts);
            continue;
        }
        json_object_set_new(target, k, json_deep_copy(value));
        json_object_set_new(meta, k, shadow_metadata_of(value, ts));
    }
}

json_t *shadow_delta(const json_t *desired, const json_t *reported)
{
    if (!json_is_object(desired))
        return NULL;
    json_t *delta = NULL;
    const char *k;
    json_t *dv;
    json_object_foreach((json_t *)desired, k, dv)
    {
        json_t *rv = json_is_object(reported) ? json_object_get(reported, k) : NULL;
        json_t *diff = NULL;
        if (json_is_object(dv) && json_is_object(rv))
            diff = shadow_delta(dv, rv);
        else if (!rv || !json_equal(dv, rv))
            diff = json_deep_copy(dv);
        if (!diff)
            continue;
        if (!delta)
            delta = json_object();
        json_object_set_new(delta, k, diff);
    }
    return delta;
}

json_t *shadow_delta_metadata(const json_t *delta, const json_t *desired_meta)
{
    json_t *m = json_object();
    const char *k;
    json_t *dv;
    json_object_foreach((json_t *)delta, k, dv)
    {
        json_t *mv = json_is_object(desired_meta) ? json_object_get(desired_meta, k) : NULL;
        if (!mv)
            continue;
        /* A recursed difference keeps only the metadata of what differs; a
         * leaf's metadata is exactly {"timestamp": N}. */
        bool leaf = json_object_size(mv) == 1 && json_is_integer(json_object_get(mv, "timestamp"));
        bool recursed = json_is_object(dv) && json_is_object(mv) && !leaf;
        json_object_set_new(m, k, recursed ? shadow_delta_metadata(dv, mv) : json_deep_copy(mv));
    }
    return m;
}
