/* map: open-addressing hash map, see map.h. */
#include "map.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a with a per-map seed, finished with a 64-bit mixer so that the low
 * bits used for the slot index depend on every input byte. */
uint64_t hash_bytes(uint64_t seed, const uint8_t *data, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static size_t find_slot(const map_t *m, bytes_t key, uint64_t hash)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const map_slot_t *s = &m->slots[i];
        if (!s->value || (s->hash == hash && bytes_eq(s->key, key)))
            return i;
    }
}

void *map_get(const map_t *m, bytes_t key)
{
    if (!m->count)
        return NULL;
    size_t i = find_slot(m, key, hash_bytes(m->seed, key.data, key.len));
    return m->slots[i].value;
}

static sedge_err grow(map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    map_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return SEDGE_ERR_NOMEM;
    map_t bigger = {slots, cap, 0, m->seed};
    for (size_t i = 0; i < m->cap; i++) {
        map_slot_t *s = &m->slots[i];
        if (s->value) {
            size_t j = find_slot(&bigger, s->key, s->hash);
            bigger.slots[j] = *s;
            bigger.count++;
        }
    }
    free(m->slots);
    *m = bigger;
    return SEDGE_OK;
}

sedge_err map_put(map_t *m, bytes_t key, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3) {
        sedge_err err = grow(m);
        if (err)
            return err;
    }
    uint64_t hash = hash_bytes(m->seed, key.data, key.len);
    size_t i = find_slot(m, key, hash);
    if (!m->slots[i].value)
        m->count++;
    m->slots[i] = (map_slot_t){hash, key, value};
    return SEDGE_OK;
}

void *map_del(map_t *m, bytes_t key)
{
    if (!m->count)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find_slot(m, key, hash_bytes(m->seed, key.data, key.len));
    void *value = m->slots[i].value;
    if (!value)
        return NULL;
    /* Backward shift: pull later entries of the run into the hole when
     * their home slot is at or before it. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].value; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        bool movable = (hole <= j) ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole] = (map_slot_t){0};
    m->count--;
    return value;
}

void map_free(map_t *m)
{
    free(m->slots);
    uint64_t seed = m->seed;
    *m = (map_t){0};
    m->seed = seed;
}

void *map_next(const map_t *m, size_t *pos)
{
    while (*pos < m->cap) {
        void *v = m->slots[(*pos)++].value;
        if (v)
            return v;
    }
    return NULL;
}
