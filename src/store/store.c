/*
 * store: the schema, the batch format and the group-commit worker.
 *
 * A batch is a flat byte buffer of records: a one-byte operation, then its
 * parameters in the order of the operation's signature ('i' = 8-byte
 * integer, 't'/'b' = 4-byte length and bytes, bound as text or blob). The
 * operation table below gives each its SQL; the worker binds the same
 * parameters to each of an operation's statements in turn. Nothing is
 * allocated per write beyond the batch buffer's growth.
 */
#include "store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LOG_TAG "store"

enum {
    OP_SESSION_PUT,
    OP_SESSION_DEL,
    OP_SUB_PUT,
    OP_SUB_DEL,
    OP_MSG_PUT,
    OP_MSG_DEL,
    OP_QUEUED_PUT,
    OP_QUEUED_STATE,
    OP_QUEUED_DEL,
    OP_RETAINED_PUT,
    OP_RETAINED_DEL,
    OP_INBOUND_PUT,
    OP_INBOUND_DEL,
    OP_DEPLOYMENT_PUT,
    OP_DEPLOYMENT_STATUS,
    OP_META_PUT,
    OP_SHADOW_PUT,
    OP_SPOOL_PUT,
    OP_SPOOL_DEL,
    OP_DEAD_LETTER_PUT,
    OP_JOB_UPDATE_PUT,
    OP_JOB_UPDATE_DEL,
    OP_COUNT
};

#define MAX_STMTS 4

typedef struct {
    const char *sig;
    const char *sql[MAX_STMTS];
} op_def_t;

static const op_def_t op_defs[OP_COUNT] = {
    [OP_SESSION_PUT] = {"ttiii",
                        {"INSERT OR REPLACE INTO session(client_id, owner, expiry, version, "
                         "disconnected_at) VALUES (?1, ?2, ?3, ?4, ?5)"}},
    [OP_SESSION_DEL] = {"t",
                        {"DELETE FROM session WHERE client_id = ?1",
                         "DELETE FROM sub WHERE client_id = ?1",
                         "DELETE FROM inbound WHERE client_id = ?1"}},
    [OP_SUB_PUT] = {"ttii",
                    {"INSERT OR REPLACE INTO sub(client_id, filter, options, sub_id) "
                     "VALUES (?1, ?2, ?3, ?4)"}},
    [OP_SUB_DEL] = {"tt", {"DELETE FROM sub WHERE client_id = ?1 AND filter = ?2"}},
    [OP_MSG_PUT] = {"itbbiiit",
                    {"INSERT OR REPLACE INTO msg(id, topic, props, payload, qos, retain, "
                     "expires_at, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"}},
    [OP_MSG_DEL] = {"i", {"DELETE FROM msg WHERE id BETWEEN ?1 AND ?2"}}, /* deferred */
    [OP_QUEUED_PUT] = {"tiiiiiib",
                       {"INSERT OR REPLACE INTO queued(client_id, seq, msg_id, qos, packet_id, "
                        "state, retain, sub_ids) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"}},
    [OP_QUEUED_STATE] = {"iii", {"UPDATE queued SET packet_id = ?2, state = ?3 WHERE seq = ?1"}},
    [OP_QUEUED_DEL] = {"i", {"DELETE FROM queued WHERE seq BETWEEN ?1 AND ?2"}}, /* deferred */
    [OP_RETAINED_PUT] = {"ti", {"INSERT OR REPLACE INTO retained(topic, msg_id) VALUES (?1, ?2)"}},
    [OP_RETAINED_DEL] = {"t", {"DELETE FROM retained WHERE topic = ?1"}},
    [OP_INBOUND_PUT] = {"ti",
                        {"INSERT OR REPLACE INTO inbound(client_id, packet_id) VALUES (?1, ?2)"}},
    [OP_INBOUND_DEL] = {"ti", {"DELETE FROM inbound WHERE client_id = ?1 AND packet_id = ?2"}},
    [OP_DEPLOYMENT_PUT] = {"ittittt",
                           {"INSERT OR REPLACE INTO deployment(version, group_name, checksum, "
                            "created_at, status, reason, document) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"}},
    [OP_DEPLOYMENT_STATUS] =
        {"itt", {"UPDATE deployment SET status = ?2, reason = ?3 WHERE version = ?1"}},
    [OP_META_PUT] = {"ti", {"INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)"}},
    [OP_SPOOL_PUT] = {"itbiii",
                      {"INSERT OR REPLACE INTO spool(seq, topic, payload, qos, created_at, retain) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"}},
    [OP_SPOOL_DEL] = {"i", {"DELETE FROM spool WHERE seq = ?1"}},
    /* Out of the spool, into the dead letters, which keep the newest. */
    [OP_DEAD_LETTER_PUT] =
        {"itbiiiit",
         {"INSERT OR REPLACE INTO dead_letter(seq, topic, payload, qos, created_at, retain, "
          "dead_at, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
          "DELETE FROM spool WHERE seq = ?1",
          "DELETE FROM dead_letter WHERE seq <= (SELECT seq FROM dead_letter ORDER BY seq DESC "
          "LIMIT 1 OFFSET " STORE_DEAD_LETTERS_KEPT_TEXT ")"}},
    [OP_JOB_UPDATE_PUT] = {"tti",
                           {"INSERT OR REPLACE INTO job_update(job_id, payload, created_at) "
                            "VALUES (?1, ?2, ?3)"}},
    [OP_JOB_UPDATE_DEL] = {"t", {"DELETE FROM job_update WHERE job_id = ?1"}},
    [OP_SHADOW_PUT] = {"ttiti",
                       {"INSERT OR REPLACE INTO shadow(thing, name, version, document, deleted_at) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)"}},
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS session (client_id TEXT PRIMARY KEY, owner TEXT NOT NULL,"
    "  expiry INTEGER NOT NULL, version INTEGER NOT NULL, disconnected_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sub (client_id TEXT NOT NULL, filter TEXT NOT NULL,"
    "  options INTEGER NOT NULL, sub_id INTEGER NOT NULL, PRIMARY KEY (client_id, filter));"
    "CREATE TABLE IF NOT EXISTS msg (id INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
    "  props BLOB NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL,"
    "  retain INTEGER NOT NULL, expires_at INTEGER NOT NULL, source TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS queued (seq INTEGER PRIMARY KEY, client_id TEXT NOT NULL,"
    "  msg_id INTEGER NOT NULL, qos INTEGER NOT NULL, packet_id INTEGER NOT NULL,"
    "  state INTEGER NOT NULL, retain INTEGER NOT NULL, sub_ids BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, msg_id INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS inbound (client_id TEXT NOT NULL, packet_id INTEGER NOT NULL,"
    "  PRIMARY KEY (client_id, packet_id));"
    "CREATE TABLE IF NOT EXISTS deployment (version INTEGER PRIMARY KEY, group_name TEXT NOT NULL,"
    "  checksum TEXT NOT NULL, created_at INTEGER NOT NULL, status TEXT NOT NULL,"
    "  reason TEXT NOT NULL, document TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
    "  payload BLOB NOT NULL, qos INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    "  retain INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS dead_letter (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
    "  payload BLOB NOT NULL, qos INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    "  retain INTEGER NOT NULL, dead_at INTEGER NOT NULL, reason TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS job_update (job_id TEXT PRIMARY KEY, payload TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shadow (thing TEXT NOT NULL, name TEXT NOT NULL,"
    "  version INTEGER NOT NULL, document TEXT NOT NULL, deleted_at INTEGER NOT NULL,"
    "  PRIMARY KEY (thing, name));";

typedef struct {
    uv_work_t work;
    store_t *store;
    buf_t ops;
    size_t count;
    uint64_t seq;
    uint64_t submitted_us; /* monotonic: handed to the worker */
    sedge_err result;
} batch_t;

typedef struct waiter {
    struct waiter *next;
    uint64_t seq;
    void (*fn)(void *ctx, sedge_err result);
    void *ctx;
} waiter_t;

/* A commit that fails (disk full, the database locked by another process
 * past the busy timeout, an I/O error) is retried after this delay,
 * doubling up to the maximum while it keeps failing. */
#define RETRY_FIRST_MS 50u
#define RETRY_MAX_MS 5000u

struct store {
    uv_loop_t *loop;
    waiter_t *waiters, *waiters_tail; /* in batch order */
    sqlite3 *db;
    char *path;
    store_options_t opts;
    sqlite3_stmt *stmts[OP_COUNT][MAX_STMTS];
    uv_timer_t retry_timer;
    uint64_t retry_delay_ms; /* 0 while commits succeed */
    bool retry_waiting;      /* a failed batch waits for the retry timer */
    bool failing;            /* the last commit failed; cleared by the next success */
    int handles_open;        /* closed at store_close; freed when all are */
    batch_t batches[2];
    batch_t *open;      /* filling */
    batch_t *in_flight; /* committing on the worker, or NULL */
    uint64_t committed_seq;
    bool closing;
    buf_t deferred_queued, deferred_msgs; /* worker: deletions for the batch's end */
    store_stats_t stats;
};

static sedge_err sql_error(store_t *s, const char *what)
{
    int code = sqlite3_errcode(s->db);
    LOGE("%s: %s", what, sqlite3_errmsg(s->db));
    return (code == SQLITE_FULL) ? SEDGE_ERR_FULL : SEDGE_ERR_STORE;
}

static sedge_err exec_sql(store_t *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return SEDGE_OK;
    LOGE("%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    return (sqlite3_errcode(s->db) == SQLITE_FULL) ? SEDGE_ERR_FULL : SEDGE_ERR_STORE;
}

/* Batch records. */

/* A parameter value while building a record. */
typedef struct {
    int64_t i;
    bytes_t b;
} param_t;

#define P_I(v) ((param_t){.i = (int64_t)(v)})
#define P_B(v) ((param_t){.b = (v)})

static uint8_t *put_raw(uint8_t *p, const void *v, size_t n)
{
    if (n) /* an empty view may have no data pointer */
        memcpy(p, v, n);
    return p + n;
}

/* The record goes in whole, into room reserved for it at once. */
static uint64_t append_op(store_t *s, int op, const param_t *params)
{
    batch_t *b = s->open;
    const char *sig = op_defs[op].sig;
    size_t size = 1;
    for (size_t i = 0; sig[i]; i++)
        size += sig[i] == 'i' ? sizeof(int64_t) : sizeof(uint32_t) + params[i].b.len;
    if (buf_reserve(&b->ops, size)) {
        /* The state in memory is ahead of the store and cannot be written:
         * carrying on would acknowledge what is not durable. End here; a
         * restart resumes from what was committed (the Redis way). */
        LOGE("out of memory queueing a write to the store: stopping so that nothing "
             "unsaved is acknowledged");
        abort();
    }
    uint8_t *p = b->ops.data + b->ops.len;
    *p++ = (uint8_t)op;
    for (size_t i = 0; sig[i]; i++) {
        if (sig[i] == 'i') {
            p = put_raw(p, &params[i].i, sizeof params[i].i);
        } else {
            uint32_t len = (uint32_t)params[i].b.len;
            p = put_raw(p, &len, sizeof len);
            p = put_raw(p, params[i].b.data, len);
        }
    }
    b->ops.len += size;
    b->count++;
    return b->seq;
}

/* Text, never SQL NULL: an empty view may have no data pointer at all. */
static void bind_text(sqlite3_stmt *st, int idx, bytes_t v)
{
    sqlite3_bind_text(st, idx, v.len ? (const char *)v.data : "", (int)v.len, SQLITE_STATIC);
}

/* Bind one record's parameters to a statement and run it. */
static sedge_err run(store_t *s, int op, int k, const param_t *params, size_t n)
{
    const char *sig = op_defs[op].sig;
    sqlite3_stmt *st = s->stmts[op][k];
    for (size_t i = 0; i < n; i++) {
        int idx = (int)i + 1;
        if (sig[i] == 'i')
            sqlite3_bind_int64(st, idx, params[i].i);
        else if (sig[i] == 't')
            bind_text(st, idx, params[i].b);
        else
            sqlite3_bind_blob(st, idx, params[i].b.len ? (const void *)params[i].b.data : "",
                              (int)params[i].b.len, SQLITE_STATIC);
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SEDGE_OK : sql_error(s, op_defs[op].sql[k]);
}

static int compare_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Deferred deletions of one kind: sorted, each run of consecutive keys
 * one range statement. */
static sedge_err delete_runs(store_t *s, int op, buf_t *ids)
{
    int64_t *v = (int64_t *)ids->data;
    size_t n = ids->len / sizeof *v;
    if (n == 0)
        return SEDGE_OK;
    qsort(v, n, sizeof *v, compare_ids);
    sedge_err err = SEDGE_OK;
    for (size_t i = 0; i < n && !err;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1] <= v[j] + 1)
            j++;
        param_t range[2] = {P_I(v[i]), P_I(v[j])};
        /* Both parameters are integers, whatever the op's signature. */
        sqlite3_stmt *st = s->stmts[op][0];
        sqlite3_bind_int64(st, 1, range[0].i);
        sqlite3_bind_int64(st, 2, range[1].i);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            err = sql_error(s, op_defs[op].sql[0]);
        i = j + 1;
    }
    ids->len = 0;
    return err;
}

/* Apply one batch in one transaction. Runs on the worker thread, or on the
 * loop thread when nothing is in flight. */
static sedge_err apply_batch(store_t *s, batch_t *b)
{
    sedge_err err = exec_sql(s, "BEGIN IMMEDIATE");
    if (err)
        return err;
    s->deferred_queued.len = s->deferred_msgs.len = 0;
    size_t pos = 0;
    const uint8_t *p = b->ops.data;
    while (pos < b->ops.len && !err) {
        int op = p[pos++];
        const char *sig = op_defs[op].sig;
        param_t params[8];
        size_t n = strlen(sig);
        for (size_t i = 0; i < n; i++) {
            if (sig[i] == 'i') {
                memcpy(&params[i].i, p + pos, sizeof(int64_t));
                pos += sizeof(int64_t);
            } else {
                uint32_t len;
                memcpy(&len, p + pos, sizeof len);
                pos += sizeof len;
                params[i].b = (bytes_t){p + pos, len};
                pos += len;
            }
        }
        if (op == OP_QUEUED_DEL || op == OP_MSG_DEL) {
            buf_t *ids = op == OP_QUEUED_DEL ? &s->deferred_queued : &s->deferred_msgs;
            if (buf_append(ids, &params[0].i, sizeof params[0].i))
                err = SEDGE_ERR_NOMEM;
            continue;
        }
        for (int k = 0; k < MAX_STMTS && op_defs[op].sql[k] && !err; k++)
            err = run(s, op, k, params, n);
    }
    if (!err)
        err = delete_runs(s, OP_QUEUED_DEL, &s->deferred_queued);
    if (!err)
        err = delete_runs(s, OP_MSG_DEL, &s->deferred_msgs);
    if (err) {
        exec_sql(s, "ROLLBACK");
        return err;
    }
    return exec_sql(s, "COMMIT");
}

static void batch_reset(batch_t *b, uint64_t seq)
{
    b->ops.len = 0;
    b->count = 0;
    b->result = SEDGE_OK;
    b->seq = seq;
    /* A burst can grow a batch to many megabytes; give that back. */
    if (b->ops.cap > (4u << 20))
        buf_free(&b->ops);
}

/* Has batch `seq` settled? Committed ones have; so has the open batch
 * while nothing is written to it and nothing before it is pending, having
 * nothing to wait for (it keeps its number for the writes that come). */
static bool settled(const store_t *s, uint64_t seq)
{
    if (seq <= s->committed_seq)
        return true;
    return seq == s->open->seq && !s->open->count && !s->in_flight && !s->retry_waiting;
}

static void finish_batch(store_t *s, batch_t *b, sedge_err result)
{
    s->stats.batches++;
    s->stats.writes += b->count;
    if (result) {
        s->stats.failures++;
        LOGE("batch %llu of %zu writes failed: %s", (unsigned long long)b->seq, b->count,
             sedge_strerror(result));
    } else {
        s->committed_seq = b->seq;
        if (b->submitted_us)
            histogram_observe_us(&s->stats.commit_latency, clock_mono_us() - b->submitted_us);
    }
    b->submitted_us = 0;
    while (s->waiters && (result ? s->waiters->seq <= b->seq : settled(s, s->waiters->seq))) {
        waiter_t *w = s->waiters;
        s->waiters = w->next;
        if (!s->waiters)
            s->waiters_tail = NULL;
        w->fn(w->ctx, result);
        free(w);
    }
}

sedge_err store_when_settled(store_t *s, uint64_t seq, void (*fn)(void *ctx, sedge_err result),
                             void *ctx)
{
    if (settled(s, seq)) {
        fn(ctx, SEDGE_OK);
        return SEDGE_OK;
    }
    waiter_t *w = malloc(sizeof *w);
    if (!w)
        return SEDGE_ERR_NOMEM;
    *w = (waiter_t){NULL, seq, fn, ctx};
    if (!s->waiters_tail || s->waiters_tail->seq <= seq) { /* the usual: the newest */
        if (s->waiters_tail)
            s->waiters_tail->next = w;
        else
            s->waiters = w;
        s->waiters_tail = w;
        return SEDGE_OK;
    }
    /* An owner may wait for its own last write after another waited for a
     * newer batch: it must not wait behind that one. */
    waiter_t **at = &s->waiters;
    while ((*at)->seq <= seq) /* stops at the tail at the latest */
        at = &(*at)->next;
    w->next = *at;
    *at = w;
    return SEDGE_OK;
}

static void work_cb(uv_work_t *req)
{
    batch_t *b = req->data;
    b->result = apply_batch(b->store, b);
}

static void submit(store_t *s);

static void retry_cb(uv_timer_t *t)
{
    store_t *s = t->data;
    s->retry_waiting = false;
    submit(s);
}

/* A batch did not commit. Its writes stay in memory in front of those made
 * since, in one batch that takes the newer number, and the commit is tried
 * again later: what waits for them (acknowledgements, replies) keeps
 * waiting, and nothing is reported durable that is not. */
static void retry_later(store_t *s, batch_t *failed, sedge_err result)
{
    batch_t *open = s->open;
    if (buf_append(&failed->ops, open->ops.data, open->ops.len)) {
        LOGE("out of memory keeping writes that failed to commit: stopping so that nothing "
             "unsaved is acknowledged");
        abort();
    }
    failed->count += open->count;
    failed->seq = open->seq;
    failed->result = SEDGE_OK;
    batch_reset(open, 0);
    s->open = failed;
    s->stats.failures++;
    s->failing = true;
    s->retry_delay_ms = s->retry_delay_ms ? s->retry_delay_ms * 2 : RETRY_FIRST_MS;
    if (s->retry_delay_ms > RETRY_MAX_MS)
        s->retry_delay_ms = RETRY_MAX_MS;
    LOGE("the store could not commit %zu writes (%s); they are kept and retried every %llu ms "
         "at most, and what waits for them (acknowledgements, replies) waits too",
         failed->count, sedge_strerror(result), (unsigned long long)RETRY_MAX_MS);
    s->retry_waiting = true;
    uv_timer_start(&s->retry_timer, retry_cb, s->retry_delay_ms, 0);
}

/* A commit succeeded: whatever failed before is over. */
static void commits_again(store_t *s)
{
    if (s->failing) {
        LOGI("the store commits again");
        s->retry_delay_ms = 0;
        s->failing = false;
    }
}

static void after_work_cb(uv_work_t *req, int status)
{
    batch_t *b = req->data;
    store_t *s = b->store;
    s->in_flight = NULL;
    sedge_err result = status == UV_ECANCELED ? SEDGE_ERR_STORE : b->result;
    if (result) {
        retry_later(s, b, result);
        return;
    }
    commits_again(s);
    finish_batch(s, b, SEDGE_OK);
    batch_reset(b, 0);
    if (s->open->count)
        submit(s);
}

/* The open batch `b` is about to commit: open the other one, numbered
 * after it, for the writes that come meanwhile. */
static void open_next_batch(store_t *s, batch_t *b)
{
    batch_t *next = b == &s->batches[0] ? &s->batches[1] : &s->batches[0];
    batch_reset(next, b->seq + 1);
    s->open = next;
}

/* Hand the open batch to the worker and open the other one. */
static void submit(store_t *s)
{
    if (s->in_flight || !s->open->count || s->closing || s->retry_waiting)
        return;
    batch_t *b = s->open;
    open_next_batch(s, b);
    s->in_flight = b;
    b->work.data = b;
    b->submitted_us = clock_mono_us();
    int rc = uv_queue_work(s->loop, &b->work, work_cb, after_work_cb);
    if (rc) {
        LOGE("cannot queue a commit: %s", uv_strerror(rc));
        s->in_flight = NULL;
        retry_later(s, b, SEDGE_ERR_STORE);
    }
}

void store_before_wait(store_t *s)
{
    submit(s);
}

uint64_t store_open_batch(const store_t *s)
{
    return s->open->seq;
}
bool store_failing(const store_t *s)
{
    return s->failing;
}

uint64_t store_pending_batch(const store_t *s)
{
    if (s->open->count)
        return s->open->seq;
    return s->in_flight ? s->in_flight->seq : 0;
}

uint64_t store_committed_batch(const store_t *s)
{
    return s->committed_seq;
}

sedge_err store_flush_sync(store_t *s)
{
    if (s->in_flight)
        return SEDGE_ERR_BUSY;
    batch_t *b = s->open;
    if (!b->count)
        return SEDGE_OK;
    if (s->retry_waiting) {
        uv_timer_stop(&s->retry_timer);
        s->retry_waiting = false;
    }
    /* What the waiters write when they hear joins the next batch. */
    open_next_batch(s, b);
    sedge_err err = apply_batch(s, b);
    if (!err)
        commits_again(s);
    finish_batch(s, b, err);
    batch_reset(b, 0);
    return err;
}

void store_get_stats(store_t *s, store_stats_t *out)
{
    *out = s->stats;
    out->bytes_on_disk = 0;
    struct stat st;
    char path[4096];
    if (stat(s->path, &st) == 0)
        out->bytes_on_disk += (uint64_t)st.st_size;
    snprintf(path, sizeof path, "%s-wal", s->path);
    if (stat(path, &st) == 0)
        out->bytes_on_disk += (uint64_t)st.st_size;
}

static bytes_t column_bytes(sqlite3_stmt *st, int col);

/* Version 1: a session whose owner differs from its client id (a TLS
 * identity using another client id) is keyed by owner NUL client id, in
 * every table that names it, so that two identities' sessions of one
 * client id never meet. */
static sedge_err migrate_session_keys(store_t *s)
{
    static const char *const renames[] = {
        "UPDATE session SET client_id = ?2 WHERE client_id = ?1",
        "UPDATE sub SET client_id = ?2 WHERE client_id = ?1",
        "UPDATE queued SET client_id = ?2 WHERE client_id = ?1",
        "UPDATE inbound SET client_id = ?2 WHERE client_id = ?1",
    };
    sqlite3_stmt *rows = NULL, *rename[ARRAY_LEN(renames)] = {0};
    sedge_err err = SEDGE_OK;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT client_id, owner FROM session WHERE owner != client_id "
                           "AND instr(client_id, char(0)) = 0",
                           -1, &rows, NULL) != SQLITE_OK)
        err = sql_error(s, "migrating session keys");
    for (size_t i = 0; !err && i < ARRAY_LEN(renames); i++)
        if (sqlite3_prepare_v2(s->db, renames[i], -1, &rename[i], NULL) != SQLITE_OK)
            err = sql_error(s, renames[i]);
    buf_t key = {0};
    while (!err && sqlite3_step(rows) == SQLITE_ROW) {
        bytes_t id = column_bytes(rows, 0), owner = column_bytes(rows, 1);
        uint8_t nul = 0;
        key.len = 0;
        if (buf_append(&key, owner.data, owner.len) || buf_append(&key, &nul, 1) ||
            buf_append(&key, id.data, id.len)) {
            err = SEDGE_ERR_NOMEM;
            break;
        }
        /* The old key is copied: renaming the session row moves it. */
        char *old = bytes_dup_cstr(id);
        if (!old) {
            err = SEDGE_ERR_NOMEM;
            break;
        }
        for (size_t i = 0; !err && i < ARRAY_LEN(renames); i++) {
            sqlite3_bind_text(rename[i], 1, old, (int)id.len, SQLITE_STATIC);
            sqlite3_bind_text(rename[i], 2, (const char *)key.data, (int)key.len, SQLITE_STATIC);
            if (sqlite3_step(rename[i]) != SQLITE_DONE)
                err = sql_error(s, renames[i]);
            sqlite3_reset(rename[i]);
        }
        free(old);
    }
    buf_free(&key);
    sqlite3_finalize(rows);
    for (size_t i = 0; i < ARRAY_LEN(renames); i++)
        sqlite3_finalize(rename[i]);
    return err;
}

/* Version 2: the spool keeps each message's RETAIN flag (a database made
 * by this version has the column already). */
static sedge_err migrate_spool_retain(store_t *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT retain FROM spool LIMIT 0", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_finalize(st);
        return SEDGE_OK;
    }
    return exec_sql(s, "ALTER TABLE spool ADD COLUMN retain INTEGER NOT NULL DEFAULT 0");
}

/* Create what is missing and bring an older database's schema up to
 * date, in one transaction: a new database costs one commit, not one per
 * table, and a current one none. */
static sedge_err prepare_schema(store_t *s)
{
    sedge_err err = exec_sql(s, "BEGIN IMMEDIATE");
    if (err)
        return err;
    err = exec_sql(s, schema);
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (!err && sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!err && version < 1)
        err = migrate_session_keys(s);
    if (!err && version < 2)
        err = migrate_spool_retain(s);
    if (!err && version < 2)
        err = exec_sql(s, "PRAGMA user_version = 2");
    if (err) {
        exec_sql(s, "ROLLBACK");
        return err;
    }
    return exec_sql(s, "COMMIT");
}

sedge_err store_open(uv_loop_t *loop, const store_options_t *opts, store_t **out)
{
    store_t *s = calloc(1, sizeof *s);
    if (!s)
        return SEDGE_ERR_NOMEM;
    s->loop = loop;
    s->opts = *opts;
    s->path = strdup(opts->path);
    for (int i = 0; i < 2; i++)
        s->batches[i].store = s;
    s->open = &s->batches[0];
    batch_reset(s->open, 1);
    sedge_err err = SEDGE_ERR_NOMEM;
    if (!s->path)
        goto fail;
    err = SEDGE_ERR_STORE;
    if (sqlite3_open_v2(opts->path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        LOGE("cannot open %s: %s (does its directory exist, and may sedged write there?)",
             opts->path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, opts->busy_timeout_ms ? (int)opts->busy_timeout_ms : 5000);
    if ((err = exec_sql(s, "PRAGMA journal_mode = WAL")) ||
        (err = exec_sql(s, opts->synchronous_full ? "PRAGMA synchronous = FULL"
                                                  : "PRAGMA synchronous = NORMAL")) ||
        (err = prepare_schema(s)))
        goto unusable;
    for (int op = 0; op < OP_COUNT; op++) {
        for (int k = 0; k < MAX_STMTS && op_defs[op].sql[k]; k++) {
            if (sqlite3_prepare_v3(s->db, op_defs[op].sql[k], -1, SQLITE_PREPARE_PERSISTENT,
                                   &s->stmts[op][k], NULL) != SQLITE_OK) {
                err = sql_error(s, op_defs[op].sql[k]);
                goto unusable;
            }
        }
    }
    uv_timer_init(loop, &s->retry_timer);
    s->retry_timer.data = s;
    uv_unref((uv_handle_t *)&s->retry_timer); /* a retry does not keep a stopping loop alive */
    s->handles_open = 1;
    *out = s;
    return SEDGE_OK;
unusable:
    LOGE("cannot use %s as the store (the line above says why); if it is not Sedge's database, "
         "or a damaged one, move it aside and sedged starts with an empty store",
         opts->path);
fail:
    if (s->db) {
        for (int op = 0; op < OP_COUNT; op++)
            for (int k = 0; k < MAX_STMTS; k++)
                sqlite3_finalize(s->stmts[op][k]);
        sqlite3_close(s->db);
    }
    free(s->path);
    free(s);
    return err;
}

static void free_store(uv_handle_t *h)
{
    store_t *s = h->data;
    if (--s->handles_open == 0)
        free(s);
}

void store_close(store_t *s)
{
    if (!s)
        return;
    /* A batch on the worker finishes on its own; wait for it. */
    while (s->in_flight)
        uv_run(s->loop, UV_RUN_ONCE);
    s->closing = true;
    if (store_flush_sync(s))
        LOGE("the last writes could not be committed");
    for (int op = 0; op < OP_COUNT; op++)
        for (int k = 0; k < MAX_STMTS; k++)
            sqlite3_finalize(s->stmts[op][k]);
    sqlite3_close(s->db);
    for (int i = 0; i < 2; i++)
        buf_free(&s->batches[i].ops);
    buf_free(&s->deferred_queued);
    buf_free(&s->deferred_msgs);
    free(s->path);
    uv_close((uv_handle_t *)&s->retry_timer, free_store);
}

/* Typed writes. */

uint64_t store_put_session(store_t *s, const store_session_t *v)
{
    param_t p[] = {P_B(v->client_id), P_B(v->owner), P_I(v->expiry_interval), P_I(v->version),
                   P_I(v->disconnected_at)};
    return append_op(s, OP_SESSION_PUT, p);
}

uint64_t store_del_session(store_t *s, bytes_t client_id)
{
    return append_op(s, OP_SESSION_DEL, (param_t[]){P_B(client_id)});
}

uint64_t store_put_sub(store_t *s, const store_sub_t *v)
{
    param_t p[] = {P_B(v->client_id), P_B(v->filter), P_I(v->options), P_I(v->sub_id)};
    return append_op(s, OP_SUB_PUT, p);
}

uint64_t store_del_sub(store_t *s, bytes_t client_id, bytes_t filter)
{
    return append_op(s, OP_SUB_DEL, (param_t[]){P_B(client_id), P_B(filter)});
}

uint64_t store_put_msg(store_t *s, const store_msg_t *v)
{
    param_t p[] = {P_I(v->id),  P_B(v->topic),  P_B(v->props),      P_B(v->payload),
                   P_I(v->qos), P_I(v->retain), P_I(v->expires_at), P_B(v->source)};
    return append_op(s, OP_MSG_PUT, p);
}

uint64_t store_del_msg(store_t *s, uint64_t id)
{
    return append_op(s, OP_MSG_DEL, (param_t[]){P_I(id)});
}

uint64_t store_put_queued(store_t *s, const store_queued_t *v)
{
    param_t p[] = {P_B(v->client_id), P_I(v->seq),   P_I(v->msg_id), P_I(v->qos),
                   P_I(v->packet_id), P_I(v->state), P_I(v->retain), P_B(v->sub_ids)};
    return append_op(s, OP_QUEUED_PUT, p);
}

uint64_t store_set_queued_state(store_t *s, uint64_t seq, uint16_t packet_id, uint8_t state)
{
    param_t p[] = {P_I(seq), P_I(packet_id), P_I(state)};
    return append_op(s, OP_QUEUED_STATE, p);
}

uint64_t store_del_queued(store_t *s, uint64_t seq)
{
    return append_op(s, OP_QUEUED_DEL, (param_t[]){P_I(seq)});
}

uint64_t store_put_retained(store_t *s, bytes_t topic, uint64_t msg_id)
{
    return append_op(s, OP_RETAINED_PUT, (param_t[]){P_B(topic), P_I(msg_id)});
}

uint64_t store_del_retained(store_t *s, bytes_t topic)
{
    return append_op(s, OP_RETAINED_DEL, (param_t[]){P_B(topic)});
}

uint64_t store_put_inbound(store_t *s, bytes_t client_id, uint16_t packet_id)
{
    return append_op(s, OP_INBOUND_PUT, (param_t[]){P_B(client_id), P_I(packet_id)});
}

uint64_t store_del_inbound(store_t *s, bytes_t client_id, uint16_t packet_id)
{
    return append_op(s, OP_INBOUND_DEL, (param_t[]){P_B(client_id), P_I(packet_id)});
}

uint64_t store_put_deployment(store_t *s, const store_deployment_t *v, bytes_t document)
{
    param_t p[] = {P_I(v->version), P_B(v->group),  P_B(v->checksum), P_I(v->created_at),
                   P_B(v->status),  P_B(v->reason), P_B(document)};
    return append_op(s, OP_DEPLOYMENT_PUT, p);
}

uint64_t store_set_deployment_status(store_t *s, uint64_t version, const char *status,
                                     const char *reason)
{
    param_t p[] = {P_I(version), P_B(bytes_of_cstr(status)),
                   P_B(bytes_of_cstr(reason ? reason : ""))};
    return append_op(s, OP_DEPLOYMENT_STATUS, p);
}

uint64_t store_put_shadow(store_t *s, bytes_t thing, bytes_t name, int64_t version,
                          bytes_t document, int64_t deleted_at)
{
    param_t p[] = {P_B(thing), P_B(name), P_I(version), P_B(document), P_I(deleted_at)};
    return append_op(s, OP_SHADOW_PUT, p);
}

uint64_t store_put_spooled(store_t *s, const store_spooled_t *v)
{
    param_t p[] = {P_I(v->seq), P_B(v->topic),      P_B(v->payload),
                   P_I(v->qos), P_I(v->created_at), P_I(v->retain)};
    return append_op(s, OP_SPOOL_PUT, p);
}

uint64_t store_put_dead_letter(store_t *s, const store_spooled_t *v, int64_t dead_at,
                               bytes_t reason)
{
    param_t p[] = {P_I(v->seq),        P_B(v->topic),  P_B(v->payload), P_I(v->qos),
                   P_I(v->created_at), P_I(v->retain), P_I(dead_at),    P_B(reason)};
    return append_op(s, OP_DEAD_LETTER_PUT, p);
}

uint64_t store_put_job_update(store_t *s, bytes_t job_id, bytes_t payload)
{
    param_t p[] = {P_B(job_id), P_B(payload), P_I(clock_wall_s())};
    return append_op(s, OP_JOB_UPDATE_PUT, p);
}

uint64_t store_del_job_update(store_t *s, bytes_t job_id)
{
    return append_op(s, OP_JOB_UPDATE_DEL, (param_t[]){P_B(job_id)});
}

uint64_t store_del_spooled(store_t *s, uint64_t seq)
{
    return append_op(s, OP_SPOOL_DEL, (param_t[]){P_I(seq)});
}

uint64_t store_put_meta(store_t *s, const char *key, int64_t value)
{
    return append_op(s, OP_META_PUT, (param_t[]){P_B(bytes_of_cstr(key)), P_I(value)});
}

/* Loading. */

static bytes_t column_bytes(sqlite3_stmt *st, int col)
{
    const void *data = sqlite3_column_blob(st, col);
    int len = sqlite3_column_bytes(st, col);
    return (bytes_t){data, data ? (size_t)len : 0};
}

typedef sedge_err (*row_fn)(void *ctx, sqlite3_stmt *st);

static sedge_err load_rows(store_t *s, const char *sql, row_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_error(s, sql);
    sedge_err err = SEDGE_OK;
    int rc;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
        err = fn(ctx, st);
    if (!err && rc != SQLITE_DONE)
        err = sql_error(s, sql);
    sqlite3_finalize(st);
    return err;
}

typedef struct {
    void *fn;
    void *ctx;
} loader_t;

static sedge_err session_row(void *ctx, sqlite3_stmt *st)
{
    loader_t *l = ctx;
    store_session_t v = {
        .client_id = column_bytes(st, 0),
        .owner = column_bytes(st, 1),
        .expiry_interval = (uint32_t)sqlite3_column_int64(st, 2),
        .version = (uint8_t)sqlite3_column_int(st, 3),
        .disconnected_at = sqlite3_column_int64(st, 4),
    };
    return ((store_session_fn)l->fn)(l->ctx, &v);
}

sedge_err store_load_sessions(store_t *s, store_session_fn fn, void *ctx)
{
    loader_t l = {(void *)fn, ctx};
    return load_rows(s, "SELECT client_id, owner, expiry, version, disconnected_at FROM session",
                     session_row, &l);
}

static sedge_err sub_row(void *ctx, sqlite3_stmt *st)
{
    loader_t *l = ctx;
    store_sub_t v = {
        .client_id = column_bytes(st, 0),
        .filter = column_bytes(st, 1),
        .options = (uint8_t)sqlite3_column_int(st, 2),
        .sub_id = (uint32_t)sqlite3_column_int64(st, 3),
    };
    return ((store_sub_fn)l->fn)(l->ctx, &v);
}

sedge_err store_load_subs(store_t *s, store_sub_fn fn, void *ctx)
{
    loader_t l = {(void *)fn, ctx};
    return load_rows(s, "SELECT client_id, filter, options, sub_id FROM sub ORDER BY rowid",
                     sub_row, &l);
}

static sedge_err msg_row(void *ctx, sqlite3_stmt *st)
{
    loader_t *l = ctx;
    store_msg_t v = {
        .id = (uint64_t)sqlite3_column_int64(st, 0),
        .topic = column_bytes(st, 1),
        .props = column_bytes(st, 2),
        .payload = column_bytes(st, 3),
        .qos = (uint8_t)sqlite3_column_int(st, 4),
        .retain = sqlite3_column_int(st, 5) != 0,
        .expires_at = sqlite3_column_int64(st, 6),
        .source = column_bytes(st, 7),
    };
    return ((store_msg_fn)l->fn)(l->ctx, &v);
}

sedge_err store_load_msgs(store_t *s, store_msg_fn fn, void *ctx)
{
    /* A crash between a message's write and its last reference's removal
     * leaves rows nobody needs. */
    sedge_err err = exec_sql(s, "DELETE FROM msg WHERE id NOT IN (SELECT msg_id FROM queued) "
                                "AND id NOT IN (SELECT msg_id FROM retained)");
    if (err)
        return err;
    loader_t l = {(void *)fn, ctx};
    return load_rows(s,
                     "SELECT id, topic, props, payload, qos, retain, expires_at, source "
                     "FROM msg ORDER BY id",
                     msg_row, &l);
}

static sedge_err queued_row(void *ctx, sqlite3_stmt *st)
{
    loader_t *l = ctx;
    store_queued_t v = {
        .client_id = column_bytes(st, 0),
        .seq = (uint64_t)sqlite3_column_int64(st, 1),
        .msg_id = (uint64_t)sqlite3_column_int64(st, 2),
        .qos = (uint8_t)sqlite3_column_int(st, 3),
        .packet_id = (uint16_t)sqlite3_column_int(st, 4),
        .state = (uint8_t)sqlite3_column_int(st, 5),
        .retain = sqlite3_column_int(st, 6) != 0,
        .sub_ids = column_bytes(st, 7),
    };
    return ((store_queued_fn)l->fn)(l->ctx, &v);
}

sedge_err store_load_queued(store_t *s, store_queued_fn fn, void *ctx)
{
    loader_t l = {(void *)fn, ctx};
    return load_rows(s,
                     "SELECT client_id, seq, msg_id, qos, packet_id, state, retain, sub_ids "
                     "FROM queued ORDER BY seq",
                     queued_row, &l);
}

static sedge_err retained_row(void *ctx, sqlite3_stmt *st)
{
    loader_t *l = ctx;
    return ((store_retained_fn)l->fn)(l->ctx, column_bytes(st, 0),
                                      (uint64_t)sqlite3_column_int64(st, 1));
}

sedge_err store_load_retained(store_t *s, store_retained_fn fn, void *ctx)
{
    loader_t l = {(void *)fn, ctx};
    return load_rows(s, "SELECT topic, msg_id FROM retained", retained_row, &l);
}

static sedge_err inbound_row(void *ctx, sqlite3_stmt *st)
{
    loader_t *l = ctx;
    return ((store_inbound_fn)l->fn)(l->ctx, column_bytes(st, 0),
                                     (uint16_t)sqlite3_column_int(st, 1));
}

sedge_err store_load_inbound(store_t *s, store_inbound_fn fn, void *ctx)
{
    loader_t l = {(void *)fn, ctx};
    return load_rows(s, "SELECT client_id, packet_id FROM inbound", inbound_row, &l);
}

static sedge_err deployment_row(void *ctx, sqlite3_stmt *st)
{
    loader_t *l = ctx;
    store_deployment_t v = {
        .version = (uint64_t)sqlite3_column_int64(st, 0),
        .group = column_bytes(st, 1),
        .checksum = column_bytes(st, 2),
        .created_at = sqlite3_column_int64(st, 3),
        .status = column_bytes(st, 4),
        .reason = column_bytes(st, 5),
    };
    return ((store_deployment_fn)l->fn)(l->ctx, &v);
}

sedge_err store_load_deployments(store_t *s, store_deployment_fn fn, void *ctx)
{
    loader_t l = {(void *)fn, ctx};
    return load_rows(s,
                     "SELECT version, group_name, checksum, created_at, status, reason "
                     "FROM deployment ORDER BY version",
                     deployment_row, &l);
}

/* The one row a lookup finds: OK on a row (its columns are then read),
 * NOT_FOUND when there is none, an error when SQLite could not say. */
static sedge_err step_one(store_t *s, sqlite3_stmt *st, const char *sql)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return SEDGE_OK;
    return rc == SQLITE_DONE ? SEDGE_ERR_NOT_FOUND : sql_error(s, sql);
}

sedge_err store_read_deployment_document(store_t *s, uint64_t version, char **text, size_t *len)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT document FROM deployment WHERE version = ?1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_error(s, sql);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)version);
    sedge_err err = step_one(s, st, sql);
    if (!err) {
        bytes_t doc = column_bytes(st, 0);
        *text = bytes_dup_cstr(doc);
        *len = doc.len;
        err = *text ? SEDGE_OK : SEDGE_ERR_NOMEM;
    }
    sqlite3_finalize(st);
    return err;
}

sedge_err store_read_meta(store_t *s, const char *key, int64_t *value)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT value FROM meta WHERE key = ?1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_error(s, sql);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sedge_err err = step_one(s, st, sql);
    if (!err)
        *value = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return err;
}

sedge_err store_read_shadow(store_t *s, bytes_t thing, bytes_t name, int64_t *version,
                            char **document, int64_t *deleted_at)
{
    sqlite3_stmt *st;
    const char *sql =
        "SELECT version, document, deleted_at FROM shadow WHERE thing = ?1 AND name = ?2";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_error(s, sql);
    bind_text(st, 1, thing);
    bind_text(st, 2, name);
    sedge_err err = step_one(s, st, sql);
    if (!err) {
        *version = sqlite3_column_int64(st, 0);
        *deleted_at = sqlite3_column_int64(st, 2);
        *document = NULL;
        if (*deleted_at == 0 && !(*document = bytes_dup_cstr(column_bytes(st, 1))))
            err = SEDGE_ERR_NOMEM;
    }
    sqlite3_finalize(st);
    return err;
}

sedge_err store_list_shadows(store_t *s, bytes_t thing, store_name_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT name FROM shadow WHERE thing = ?1 AND name != '' AND deleted_at = 0 "
                      "ORDER BY name";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_error(s, sql);
    bind_text(st, 1, thing);
    sedge_err err = SEDGE_OK;
    int rc;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
        err = fn(ctx, column_bytes(st, 0));
    if (!err && rc != SQLITE_DONE)
        err = sql_error(s, sql);
    sqlite3_finalize(st);
    return err;
}

sedge_err store_spool_summary(store_t *s, store_spool_summary_t *out)
{
    sqlite3_stmt *st;
    const char *sql =
        "SELECT COUNT(*), COALESCE(SUM(length(CAST(topic AS BLOB)) + length(payload)), 0),"
        " COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM spool";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_error(s, sql);
    sedge_err err = step_one(s, st, sql); /* an aggregate: always one row */
    if (!err) {
        out->count = (uint64_t)sqlite3_column_int64(st, 0);
        out->bytes = (uint64_t)sqlite3_column_int64(st, 1);
        out->first_seq = (uint64_t)sqlite3_column_int64(st, 2);
        out->last_seq = (uint64_t)sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    return err;
}

sedge_err store_load_spooled(store_t *s, uint64_t after, size_t limit, store_spooled_fn fn,
                             void *ctx)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT seq, topic, payload, qos, created_at, retain FROM spool "
                      "WHERE seq > ?1 ORDER BY seq LIMIT ?2";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_error(s, sql);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    sedge_err err = SEDGE_OK;
    int rc;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_spooled_t v = {
            .seq = (uint64_t)sqlite3_column_int64(st, 0),
            .topic = column_bytes(st, 1),
            .payload = column_bytes(st, 2),
            .qos = (uint8_t)sqlite3_column_int(st, 3),
            .created_at = sqlite3_column_int64(st, 4),
            .retain = sqlite3_column_int(st, 5) != 0,
        };
        err = fn(ctx, &v);
    }
    if (!err && rc != SQLITE_DONE)
        err = sql_error(s, sql);
    sqlite3_finalize(st);
    return err;
}

sedge_err store_count_dead_letters(store_t *s, uint64_t *out)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT COUNT(*) FROM dead_letter";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_error(s, sql);
    sedge_err err = step_one(s, st, sql); /* an aggregate: always one row */
    if (!err)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return err;
}

sedge_err store_load_job_updates(store_t *s, store_job_update_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT job_id, payload FROM job_update ORDER BY created_at, job_id";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_error(s, sql);
    sedge_err err = SEDGE_OK;
    int rc;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
        err = fn(ctx, column_bytes(st, 0), column_bytes(st, 1));
    if (!err && rc != SQLITE_DONE)
        err = sql_error(s, sql);
    sqlite3_finalize(st);
    return err;
}
