/*
 * tree: the topic tree — one node per topic level, holding the
 * subscriptions whose filter ends there and the retained message of the
 * topic that ends there.
 *
 * A node's children are found through one hash table for the whole tree,
 * keyed by (parent, level): a lookup is one hash of the level, and a node
 * costs no per-node table. Children are also linked in a list, which only
 * the retained-message walks for '+' and '#' use.
 *
 * Matching a topic follows, at each level, the exact child, the '+' child
 * (recursively) and the '#' child; a topic whose first level starts with
 * '$' is not matched by a first-level wildcard. Filters are limited to
 * MQTT_MAX_FILTER_LEVELS levels, which bounds that recursion.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

static uint64_t edge_hash(const tree_t *t, const tree_node_t *parent, const uint8_t *level,
                          size_t len)
{
    return hash_bytes(t->seed ^ ((uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ull), level, len);
}

sedge_err tree_init(tree_t *t)
{
    memset(t, 0, sizeof *t);
    t->bucket_count = 256;
    t->buckets = calloc(t->bucket_count, sizeof *t->buckets);
    t->seed = (uint64_t)(uintptr_t)t ^ clock_mono_ms();
    return t->buckets ? SEDGE_OK : SEDGE_ERR_NOMEM;
}

static tree_node_t *child_find(const tree_t *t, const tree_node_t *parent, const uint8_t *level,
                               size_t len)
{
    uint64_t h = edge_hash(t, parent, level, len);
    for (tree_node_t *n = t->buckets[h & (t->bucket_count - 1)]; n; n = n->hash_next)
        if (n->hash == h && n->parent == parent && n->level_len == len &&
            memcmp(n->level, level, len) == 0)
            return n;
    return NULL;
}

static void rehash(tree_t *t)
{
    size_t count = t->bucket_count * 2;
    tree_node_t **buckets = calloc(count, sizeof *buckets);
    if (!buckets)
        return; /* keep the smaller table; lookups stay correct */
    for (size_t i = 0; i < t->bucket_count; i++) {
        tree_node_t *n = t->buckets[i];
        while (n) {
            tree_node_t *next = n->hash_next;
            n->hash_next = buckets[n->hash & (count - 1)];
            buckets[n->hash & (count - 1)] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->bucket_count = count;
}

static tree_node_t *child_create(tree_t *t, tree_node_t *parent, const uint8_t *level, size_t len)
{
    tree_node_t *n = calloc(1, sizeof *n);
    char *name = malloc(len + 1);
    if (!n || !name) {
        free(n);
        free(name);
        return NULL;
    }
    if (len)
        memcpy(name, level, len);
    name[len] = '\0';
    n->level = name;
    n->level_len = len;
    n->parent = parent;
    n->hash = edge_hash(t, parent, level, len);
    size_t slot = n->hash & (t->bucket_count - 1);
    n->hash_next = t->buckets[slot];
    t->buckets[slot] = n;
    n->next_sibling = parent->first_child;
    if (parent->first_child)
        parent->first_child->prev_sibling = n;
    parent->first_child = n;
    if (++t->node_count > t->bucket_count)
        rehash(t);
    return n;
}

/* Split the next level off `path` starting at `*pos`. */
static bool next_level(bytes_t path, size_t *pos, bytes_t *level, bool *done)
{
    if (*done)
        return false;
    const uint8_t *start = path.data + *pos;
    size_t left = path.len - *pos;
    const uint8_t *slash = left ? memchr(start, '/', left) : NULL;
    size_t len = slash ? (size_t)(slash - start) : left;
    *level = (bytes_t){start, len};
    *pos += len + 1;
    if (!slash)
        *done = true;
    return true;
}

tree_node_t *tree_find(tree_t *t, bytes_t path)
{
    tree_node_t *n = &t->root;
    size_t pos = 0;
    bool done = false;
    bytes_t level;
    while (n && next_level(path, &pos, &level, &done))
        n = child_find(t, n, level.data, level.len);
    return n;
}

tree_node_t *tree_ensure(tree_t *t, bytes_t path)
{
    tree_node_t *n = &t->root;
    size_t pos = 0;
    bool done = false;
    bytes_t level;
    while (next_level(path, &pos, &level, &done)) {
        tree_node_t *child = child_find(t, n, level.data, level.len);
        if (!child && !(child = child_create(t, n, level.data, level.len))) {
            tree_prune(t, n);
            return NULL;
        }
        n = child;
    }
    return n;
}

static bool node_empty(const tree_node_t *n)
{
    return !n->sub_count && !n->groups && !n->retained && !n->first_child;
}

void tree_prune(tree_t *t, tree_node_t *n)
{
    while (n && n != &t->root && node_empty(n)) {
        tree_node_t *parent = n->parent;
        tree_node_t **pp = &t->buckets[n->hash & (t->bucket_count - 1)];
        while (*pp != n)
            pp = &(*pp)->hash_next;
        *pp = n->hash_next;
        if (n->prev_sibling)
            n->prev_sibling->next_sibling = n->next_sibling;
        else
            parent->first_child = n->next_sibling;
        if (n->next_sibling)
            n->next_sibling->prev_sibling = n->prev_sibling;
        free(n->subs);
        free(n->level);
        free(n);
        t->node_count--;
        n = parent;
    }
}

static sedge_err array_push(sub_t ***arr, size_t *count, size_t *cap, sub_t *s)
{
    sub_t **subs = array_room(*arr, *count, cap, sizeof *subs, 4);
    if (!subs)
        return SEDGE_ERR_NOMEM;
    *arr = subs;
    s->index = *count;
    (*arr)[(*count)++] = s;
    return SEDGE_OK;
}

static void array_remove(sub_t **arr, size_t *count, sub_t *s)
{
    size_t last = --*count;
    if (s->index != last) {
        arr[s->index] = arr[last];
        arr[s->index]->index = s->index;
    }
}

sedge_err tree_add_sub(tree_t *t, sub_t *s, bytes_t node_path, bytes_t group)
{
    tree_node_t *n = tree_ensure(t, node_path);
    if (!n)
        return SEDGE_ERR_NOMEM;
    s->node = n;
    if (!group.len)
        return array_push(&n->subs, &n->sub_count, &n->sub_cap, s);
    shared_group_t *g = n->groups;
    while (g && !(g->name_len == group.len && memcmp(g->name, group.data, group.len) == 0))
        g = g->next;
    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g || !(g->name = bytes_dup_cstr(group))) {
            free(g);
            tree_prune(t, n);
            return SEDGE_ERR_NOMEM;
        }
        g->name_len = group.len;
        g->next = n->groups;
        n->groups = g;
    }
    s->group = g;
    return array_push(&g->members, &g->count, &g->cap, s);
}

void tree_remove_sub(tree_t *t, sub_t *s)
{
    tree_node_t *n = s->node;
    if (!n)
        return;
    if (!s->group) {
        array_remove(n->subs, &n->sub_count, s);
    } else {
        shared_group_t *g = s->group;
        array_remove(g->members, &g->count, s);
        if (g->count == 0) {
            shared_group_t **pp = &n->groups;
            while (*pp != g)
                pp = &(*pp)->next;
            *pp = g->next;
            free(g->members);
            free(g->name);
            free(g);
        }
        s->group = NULL;
    }
    s->node = NULL;
    tree_prune(t, n);
}

typedef struct {
    tree_match_fn fn;
    tree_accept_fn accept;
    void *ctx;
} matcher_t;

/* One member of a shared group, in turn, among those the message may
 * reach, preferring members online; NULL when it reaches none. */
static sub_t *group_pick(shared_group_t *g, const matcher_t *mt)
{
    sub_t *offline = NULL;
    for (size_t tries = 0; tries < g->count; tries++) {
        sub_t *s = g->members[g->next_pick++ % g->count];
        if (mt->accept && !mt->accept(mt->ctx, s))
            continue;
        if (s->session->client)
            return s;
        if (!offline)
            offline = s;
    }
    return offline;
}

static void node_subs(tree_node_t *n, const matcher_t *mt)
{
    for (size_t i = 0; i < n->sub_count; i++)
        mt->fn(mt->ctx, n->subs[i]);
    for (shared_group_t *g = n->groups; g; g = g->next) {
        sub_t *member = group_pick(g, mt);
        if (member)
            mt->fn(mt->ctx, member);
    }
}

static void match_from(tree_t *t, tree_node_t *n, bytes_t topic, size_t pos, bool done,
                       const matcher_t *mt)
{
    bytes_t level;
    while (n) {
        bool at_root = n == &t->root;
        if (!next_level(topic, &pos, &level, &done)) {
            /* The topic ended at n: n's own filters match, and "n/#". */
            node_subs(n, mt);
            tree_node_t *hash = child_find(t, n, (const uint8_t *)"#", 1);
            if (hash)
                node_subs(hash, mt);
            return;
        }
        bool dollar = at_root && level.len && level.data[0] == '$';
        if (!dollar) {
            tree_node_t *hash = child_find(t, n, (const uint8_t *)"#", 1);
            if (hash)
                node_subs(hash, mt);
            tree_node_t *plus = child_find(t, n, (const uint8_t *)"+", 1);
            if (plus)
                match_from(t, plus, topic, pos, done, mt);
        }
        n = child_find(t, n, level.data, level.len);
    }
}

void tree_match(tree_t *t, bytes_t topic, tree_match_fn fn, tree_accept_fn accept, void *ctx)
{
    matcher_t mt = {fn, accept, ctx};
    match_from(t, &t->root, topic, 0, false, &mt);
}

static bool is_wildcard_node(const tree_node_t *n)
{
    return n->level_len == 1 && (n->level[0] == '+' || n->level[0] == '#');
}

/* Every retained message at or below n, without recursion. */
static void subtree_retained(tree_t *t, tree_node_t *top, tree_retained_fn fn, void *ctx)
{
    tree_node_t *n = top;
    for (;;) {
        bool skip = is_wildcard_node(n) || (n->parent == &t->root && n->level_len &&
                                            n->level[0] == '$' && top == &t->root);
        if (!skip && n->retained)
            fn(ctx, n->retained);
        if (!skip && n->first_child) {
            n = n->first_child;
            continue;
        }
        while (n != top && !n->next_sibling)
            n = n->parent;
        if (n == top)
            return;
        n = n->next_sibling;
    }
}

static void retained_from(tree_t *t, tree_node_t *n, bytes_t filter, size_t pos, bool done,
                          tree_retained_fn fn, void *ctx)
{
    bytes_t level;
    while (n) {
        if (!next_level(filter, &pos, &level, &done)) {
            if (n->retained)
                fn(ctx, n->retained);
            return;
        }
        bool at_root = n == &t->root;
        if (bytes_eq_cstr(level, "#")) {
            subtree_retained(t, n, fn, ctx);
            return;
        }
        if (bytes_eq_cstr(level, "+")) {
            for (tree_node_t *c = n->first_child; c; c = c->next_sibling) {
                if (is_wildcard_node(c) || (at_root && c->level_len && c->level[0] == '$'))
                    continue;
                retained_from(t, c, filter, pos, done, fn, ctx);
            }
            return;
        }
        n = child_find(t, n, level.data, level.len);
    }
}

void tree_match_retained(tree_t *t, bytes_t filter, tree_retained_fn fn, void *ctx)
{
    retained_from(t, &t->root, filter, 0, false, fn, ctx);
}

void tree_free(broker_t *b, tree_t *t)
{
    /* Free every node bottom-up. */
    tree_node_t *n = t->root.first_child;
    while (n) {
        if (n->first_child) {
            n = n->first_child;
            continue;
        }
        tree_node_t *parent = n->parent;
        parent->first_child = n->next_sibling;
        if (n->retained)
            msg_release(b, n->retained);
        while (n->groups) {
            shared_group_t *g = n->groups;
            n->groups = g->next;
            free(g->members);
            free(g->name);
            free(g);
        }
        free(n->subs);
        free(n->level);
        free(n);
        n = parent == &t->root ? t->root.first_child : parent;
    }
    if (t->root.retained)
        msg_release(b, t->root.retained);
    free(t->root.subs);
    free(t->buckets);
    memset(t, 0, sizeof *t);
}
