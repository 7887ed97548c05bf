/*
 * doc: the pure JSON rules of AWS IoT Device Shadow documents, shared by
 * the shadow service and its fuzz target — merging a request's state into
 * a section (a null deletes a key, objects merge, anything else replaces,
 * arrays whole), the per-leaf metadata that records when each value was
 * set, the delta between desired and reported, and nesting depth.
 * Functions that return json_t * return a new reference.
 */
#ifndef SEDGE_SHADOW_DOC_H
#define SEDGE_SHADOW_DOC_H

#include <jansson.h>
#include <stdint.h>

#define SHADOW_MAX_DEPTH 6

/* Levels of objects and arrays: a scalar is 0, {"a": 1} is 1. */
int shadow_depth(const json_t *v);

/* Merge `patch` (an object) into `target` (an object) and its metadata
 * mirror `meta` (an object), stamping changed leaves with `ts`. */
void shadow_merge(json_t *target, json_t *meta, const json_t *patch, int64_t ts);

/* The metadata mirror of a value: each leaf (a null included) becomes
 * {"timestamp": ts}; arrays map element by element. */
json_t *shadow_metadata_of(const json_t *v, int64_t ts);

/* The desired keys whose value differs from reported, recursing into
 * objects present in both; NULL when there is no difference. */
json_t *shadow_delta(const json_t *desired, const json_t *reported);
/* The part of the desired metadata that covers `delta`. */
json_t *shadow_delta_metadata(const json_t *delta, const json_t *desired_meta);

#endif
