/*
 * map: a hash map from byte-string keys to pointers (open addressing with
 * linear probing and backward-shift deletion, so no tombstones).
 *
 * The map does not own keys or values: a key is a view that must stay valid
 * while its entry is in the map — usually it points into the value itself
 * (a session's client id, say). Part of the base module.
 */
#ifndef SEDGE_BASE_MAP_H
#define SEDGE_BASE_MAP_H

#include "base.h"

typedef struct {
    uint64_t hash;
    bytes_t key;
    void *value; /* NULL marks an empty slot */
} map_slot_t;

typedef struct {
    map_slot_t *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
    uint64_t seed;
} map_t;

uint64_t hash_bytes(uint64_t seed, const uint8_t *data, size_t len);

/* A zeroed map_t is empty and valid. */
void *map_get(const map_t *m, bytes_t key);
/* Insert or replace; `value` must not be NULL. */
NODISCARD sedge_err map_put(map_t *m, bytes_t key, void *value);
/* The removed value, or NULL. */
void *map_del(map_t *m, bytes_t key);
void map_free(map_t *m);
/* Iterate: `*pos` starts at 0; returns NULL when done. Do not change the
 * map while iterating. */
void *map_next(const map_t *m, size_t *pos);

#endif
