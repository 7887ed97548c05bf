/*
 * The store as its owners use it: writes join the open batch, a loop turn
 * hands the batch to the worker, store_when_settled says when it is
 * durable; start-up loads give back what was written.
 *
 * Every test runs on a fresh temporary directory with a real uv loop. The
 * loop is driven the way core drives it — store_before_wait, then one turn —
 * until a condition holds, bounded by a deadline timer. What is durable is
 * checked by closing the store and opening the file again, or by reading
 * the file with SQLite directly, as another process would. Failures are
 * real ones: another connection holding the write lock, a trigger that
 * refuses a row, tables removed, pages overwritten.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include "store/store.h"

/* ---- the fixture: a directory, a loop, a store ---- */

typedef struct {
    uv_loop_t loop;
    uv_timer_t deadline;
    bool timed_out;
    char dir[256];
    char path[300];
    store_t *s;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/sedge-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/store.db", fx->dir);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(uv_timer_init(&fx->loop, &fx->deadline), 0);
    *state = fx;
    return 0;
}

static void close_store(fx_t *fx)
{
    store_close(fx->s);
    fx->s = NULL;
    uv_run(&fx->loop, UV_RUN_DEFAULT); /* the store's timer closes */
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->s)
        close_store(fx);
    uv_close((uv_handle_t *)&fx->deadline, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    DIR *d = opendir(fx->dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    assert_int_equal(rmdir(fx->dir), 0);
    free(fx);
    return 0;
}

static sedge_err try_open(fx_t *fx, uint32_t busy_timeout_ms)
{
    store_options_t opts = {.path = fx->path, .busy_timeout_ms = busy_timeout_ms};
    return store_open(&fx->loop, &opts, &fx->s);
}

static void open_store(fx_t *fx)
{
    assert_int_equal(try_open(fx, 0), SEDGE_OK);
}

/* A short busy timeout, for the tests where another connection holds the
 * write lock. */
static void open_store_impatient(fx_t *fx)
{
    assert_int_equal(try_open(fx, 20), SEDGE_OK);
}

static void reopen(fx_t *fx)
{
    close_store(fx);
    open_store(fx);
}

static void deadline_cb(uv_timer_t *t)
{
    fx_t *fx = t->data;
    fx->timed_out = true;
}

/* Loop turns until `done` holds, ending each as core does (the open batch
 * goes to the worker) or not; a test that waits for something that never
 * comes fails after 10 s. */
static void run_turns(fx_t *fx, bool (*done)(void *ctx), void *ctx, bool end_of_turn)
{
    fx->timed_out = false;
    fx->deadline.data = fx;
    uv_timer_start(&fx->deadline, deadline_cb, 10000, 0);
    for (int turns = 0; !done(ctx); turns++) {
        assert_false(fx->timed_out);
        assert_true(turns < 1000000);
        if (end_of_turn)
            store_before_wait(fx->s);
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&fx->deadline);
}

static void run_until(fx_t *fx, bool (*done)(void *ctx), void *ctx)
{
    run_turns(fx, done, ctx, true);
}

typedef struct {
    store_t *s;
    uint64_t batch;
} committed_t;

static bool is_committed(void *ctx)
{
    committed_t *c = ctx;
    return store_committed_batch(c->s) >= c->batch;
}

/* Runs the loop until `batch` is committed, without handing the open
 * batch to the worker at the turns' ends. */
static void run_until_committed(fx_t *fx, uint64_t batch)
{
    committed_t c = {fx->s, batch};
    run_turns(fx, is_committed, &c, false);
}

typedef struct {
    int calls;
    sedge_err result;
    uint64_t committed; /* store_committed_batch when it was called */
    store_t *s;
    int *order; /* when set, the waiter's id is appended here */
    int *order_len;
    int id;
} waiter_t;

static void on_settled(void *ctx, sedge_err result)
{
    waiter_t *w = ctx;
    w->calls++;
    w->result = result;
    if (w->s)
        w->committed = store_committed_batch(w->s);
    if (w->order)
        w->order[(*w->order_len)++] = w->id;
}

static void wait_for(fx_t *fx, uint64_t batch, waiter_t *w)
{
    w->s = fx->s;
    assert_int_equal(store_when_settled(fx->s, batch, on_settled, w), SEDGE_OK);
}

static bool waiter_called(void *ctx)
{
    return ((waiter_t *)ctx)->calls > 0;
}

static bool store_is_failing(void *ctx)
{
    return store_failing(((fx_t *)ctx)->s);
}

/* Everything written so far is durable. */
static void settle(fx_t *fx)
{
    uint64_t batch = store_pending_batch(fx->s);
    if (!batch)
        return;
    waiter_t w = {0};
    wait_for(fx, batch, &w);
    run_until(fx, waiter_called, &w);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.result, SEDGE_OK);
    assert_int_equal(store_pending_batch(fx->s), 0);
}

/* ---- another connection to the same file, as another process ---- */

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void db_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        print_message("%s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
}

/* The first column of each row, comma-separated; the caller frees. */
static char *db_column(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    char *out = calloc(1, 1);
    size_t len = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        size_t n = strlen(v ? v : "");
        out = realloc(out, len + n + 2);
        assert_non_null(out);
        if (len)
            out[len++] = ',';
        memcpy(out + len, v ? v : "", n + 1);
        len += n;
    }
    sqlite3_finalize(st);
    return out;
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void assert_column(sqlite3 *db, const char *sql, const char *want)
{
    char *got = db_column(db, sql);
    assert_string_equal(got, want);
    free(got);
}

/* ---- what the loads return, one line per row ---- */

typedef struct {
    char *lines[2048];
    size_t n;
    int stop_after; /* > 0: the callback fails after this many rows */
} dump_t;

/* Bytes as text: printable ASCII as is, the rest as \xNN. */
static const char *esc(bytes_t b, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < b.len && o + 5 < cap; i++) {
        uint8_t c = b.data[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = 0;
    return out;
}

static sedge_err dump_add(dump_t *d, const char *fmt, ...) PRINTF_LIKE(2, 3);
static sedge_err dump_add(dump_t *d, const char *fmt, ...)
{
    assert_true(d->n < ARRAY_LEN(d->lines));
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&d->lines[d->n++], fmt, ap) >= 0);
    va_end(ap);
    return d->stop_after && d->n >= (size_t)d->stop_after ? SEDGE_ERR_FAILED : SEDGE_OK;
}

static int compare_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rows, in the order they came or sorted (for loads whose order is not
 * promised), each followed by a newline; then empties the dump. */
static void assert_dump(dump_t *d, bool sorted, const char *want)
{
    if (sorted)
        qsort(d->lines, d->n, sizeof d->lines[0], compare_lines);
    size_t len = 0;
    for (size_t i = 0; i < d->n; i++)
        len += strlen(d->lines[i]) + 1;
    char *got = calloc(1, len + 1);
    assert_non_null(got);
    for (size_t i = 0; i < d->n; i++) {
        strcat(got, d->lines[i]);
        strcat(got, "\n");
        free(d->lines[i]);
    }
    d->n = 0;
    assert_string_equal(got, want);
    free(got);
}

static sedge_err session_line(void *ctx, const store_session_t *v)
{
    char id[128], owner[128];
    return dump_add(ctx, "%s owner=%s expiry=%u v%u disconnected=%lld",
                    esc(v->client_id, id, sizeof id), esc(v->owner, owner, sizeof owner),
                    v->expiry_interval, v->version, (long long)v->disconnected_at);
}

static sedge_err sub_line(void *ctx, const store_sub_t *v)
{
    char id[128], filter[128];
    return dump_add(ctx, "%s %s options=%u id=%u", esc(v->client_id, id, sizeof id),
                    esc(v->filter, filter, sizeof filter), v->options, v->sub_id);
}

static sedge_err msg_line(void *ctx, const store_msg_t *v)
{
    char topic[128], props[128], payload[128], source[128];
    return dump_add(ctx, "%llu %s props=%s payload=%s qos%u retain=%d expires=%lld from=%s",
                    (unsigned long long)v->id, esc(v->topic, topic, sizeof topic),
                    esc(v->props, props, sizeof props), esc(v->payload, payload, sizeof payload),
                    v->qos, v->retain, (long long)v->expires_at,
                    esc(v->source, source, sizeof source));
}

static sedge_err queued_line(void *ctx, const store_queued_t *v)
{
    char id[128], sub_ids[128];
    return dump_add(ctx, "%llu %s msg=%llu qos%u packet=%u state=%u retain=%d sub_ids=%s",
                    (unsigned long long)v->seq, esc(v->client_id, id, sizeof id),
                    (unsigned long long)v->msg_id, v->qos, v->packet_id, v->state, v->retain,
                    esc(v->sub_ids, sub_ids, sizeof sub_ids));
}

static sedge_err retained_line(void *ctx, bytes_t topic, uint64_t msg_id)
{
    char t[128];
    return dump_add(ctx, "%s -> %llu", esc(topic, t, sizeof t), (unsigned long long)msg_id);
}

static sedge_err inbound_line(void *ctx, bytes_t client_id, uint16_t packet_id)
{
    char id[128];
    return dump_add(ctx, "%s %u", esc(client_id, id, sizeof id), packet_id);
}

static sedge_err deployment_line(void *ctx, const store_deployment_t *v)
{
    char group[128], sum[128], status[128], reason[128];
    return dump_add(ctx, "v%llu %s %s at=%lld %s reason=%s", (unsigned long long)v->version,
                    esc(v->group, group, sizeof group), esc(v->checksum, sum, sizeof sum),
                    (long long)v->created_at, esc(v->status, status, sizeof status),
                    esc(v->reason, reason, sizeof reason));
}

static sedge_err spooled_line(void *ctx, const store_spooled_t *v)
{
    char topic[128], payload[128];
    return dump_add(ctx, "%llu %s %s qos%u retain=%d at=%lld", (unsigned long long)v->seq,
                    esc(v->topic, topic, sizeof topic), esc(v->payload, payload, sizeof payload),
                    v->qos, v->retain, (long long)v->created_at);
}

static sedge_err job_update_line(void *ctx, bytes_t job_id, bytes_t payload)
{
    char id[128], p[128];
    return dump_add(ctx, "%s %s", esc(job_id, id, sizeof id), esc(payload, p, sizeof p));
}

static sedge_err name_line(void *ctx, bytes_t name)
{
    char n[128];
    return dump_add(ctx, "%s", esc(name, n, sizeof n));
}

/* ---- what the tests write ---- */

#define B(s) BYTES_LIT(s)

static void put_session(store_t *s, bytes_t id, bytes_t owner, uint32_t expiry)
{
    store_session_t v = {id, owner, expiry, 5, 1700000000};
    store_put_session(s, &v);
}

static void put_sub(store_t *s, bytes_t id, const char *filter, uint8_t options, uint32_t sub_id)
{
    store_sub_t v = {id, bytes_of_cstr(filter), options, sub_id};
    store_put_sub(s, &v);
}

static void put_msg(store_t *s, uint64_t id, const char *topic, const char *payload)
{
    store_msg_t v = {.id = id,
                     .topic = bytes_of_cstr(topic),
                     .props = B("\x26\x00\x01k\x00\x01v"),
                     .payload = bytes_of_cstr(payload),
                     .source = B("thing:lamp"),
                     .qos = 1,
                     .retain = false,
                     .expires_at = 1700003600};
    store_put_msg(s, &v);
}

static void put_queued(store_t *s, bytes_t client_id, uint64_t seq, uint64_t msg_id)
{
    store_queued_t v = {.client_id = client_id,
                        .seq = seq,
                        .msg_id = msg_id,
                        .qos = 2,
                        .packet_id = 0,
                        .state = 0,
                        .retain = seq % 2 == 0,
                        .sub_ids = B("\x00\x00\x00\x07")};
    store_put_queued(s, &v);
}

static void put_spooled(store_t *s, uint64_t seq, const char *topic, const char *payload)
{
    store_spooled_t v = {
        seq,      bytes_of_cstr(topic),     bytes_of_cstr(payload), (uint8_t)(seq % 2),
        seq == 3, 1700000000 + (int64_t)seq};
    store_put_spooled(s, &v);
}

static void put_deployment(store_t *s, uint64_t version, const char *status, const char *doc)
{
    store_deployment_t v = {.version = version,
                            .group = B("kitchen"),
                            .checksum = version == 1 ? B("sum-one") : B("sum-two"),
                            .created_at = (int64_t)version * 100,
                            .status = bytes_of_cstr(status),
                            .reason = B("")};
    store_put_deployment(s, &v, bytes_of_cstr(doc));
}

static void dump_all(store_t *s, dump_t *d)
{
    assert_int_equal(store_load_sessions(s, session_line, d), SEDGE_OK);
    assert_int_equal(store_load_subs(s, sub_line, d), SEDGE_OK);
    assert_int_equal(store_load_msgs(s, msg_line, d), SEDGE_OK);
    assert_int_equal(store_load_queued(s, queued_line, d), SEDGE_OK);
    assert_int_equal(store_load_retained(s, retained_line, d), SEDGE_OK);
    assert_int_equal(store_load_inbound(s, inbound_line, d), SEDGE_OK);
}

/* ---- every write is there after close and open ---- */

static void test_every_kind_of_write_reads_back_after_reopen(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    put_session(s, B("lamp"), B("lamp"), 60);
    put_session(s, B("alice\0phone"), B("alice"), UINT32_MAX);
    put_sub(s, B("lamp"), "cmd/lamp/#", 0x01, 0);
    put_sub(s, B("lamp"), "all/+", 0x2a, 7);
    put_sub(s, B("alice\0phone"), "news", 0x02, 0);
    put_msg(s, 1, "cmd/lamp/on", "1");
    put_msg(s, 2, "status/lamp", "{\"on\":true}");
    put_queued(s, B("lamp"), 10, 1);
    put_queued(s, B("alice\0phone"), 11, 1);
    store_put_retained(s, B("status/lamp"), 2);
    store_put_inbound(s, B("lamp"), 42);
    store_put_inbound(s, B("lamp"), 43);
    put_deployment(s, 1, "active", "{\"name\":\"kitchen\"}");
    store_put_meta(s, "active_deployment", 1);
    store_put_shadow(s, B("lamp"), B(""), 3, B("{\"state\":{}}"), 0);
    put_spooled(s, 1, "up/lamp", "hello");
    store_put_job_update(s, B("job-1"), B("{\"status\":\"IN_PROGRESS\"}"));
    settle(fx);
    reopen(fx);
    s = fx->s;

    dump_t d = {0};
    dump_all(s, &d);
    assert_dump(&d, true,
                "1 cmd/lamp/on props=&\\x00\\x01k\\x00\\x01v payload=1 qos1 retain=0 "
                "expires=1700003600 from=thing:lamp\n"
                "10 lamp msg=1 qos2 packet=0 state=0 retain=1 sub_ids=\\x00\\x00\\x00\\x07\n"
                "11 alice\\x00phone msg=1 qos2 packet=0 state=0 retain=0 "
                "sub_ids=\\x00\\x00\\x00\\x07\n"
                "2 status/lamp props=&\\x00\\x01k\\x00\\x01v payload={\"on\":true} qos1 retain=0 "
                "expires=1700003600 from=thing:lamp\n"
                "alice\\x00phone news options=2 id=0\n"
                "alice\\x00phone owner=alice expiry=4294967295 v5 disconnected=1700000000\n"
                "lamp 42\n"
                "lamp 43\n"
                "lamp all/+ options=42 id=7\n"
                "lamp cmd/lamp/# options=1 id=0\n"
                "lamp owner=lamp expiry=60 v5 disconnected=1700000000\n"
                "status/lamp -> 2\n");
    assert_int_equal(store_load_deployments(s, deployment_line, &d), SEDGE_OK);
    assert_int_equal(store_load_spooled(s, 0, 10, spooled_line, &d), SEDGE_OK);
    assert_int_equal(store_load_job_updates(s, job_update_line, &d), SEDGE_OK);
    assert_dump(&d, false,
                "v1 kitchen sum-one at=100 active reason=\n"
                "1 up/lamp hello qos1 retain=0 at=1700000001\n"
                "job-1 {\"status\":\"IN_PROGRESS\"}\n");
    int64_t active = 0;
    assert_int_equal(store_read_meta(s, "active_deployment", &active), SEDGE_OK);
    assert_int_equal(active, 1);
    int64_t version = 0, deleted_at = -1;
    char *doc = NULL;
    assert_int_equal(store_read_shadow(s, B("lamp"), B(""), &version, &doc, &deleted_at), SEDGE_OK);
    assert_int_equal(version, 3);
    assert_int_equal(deleted_at, 0);
    assert_string_equal(doc, "{\"state\":{}}");
    free(doc);
}

static void test_updates_and_deletes_read_back_after_reopen(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    put_session(s, B("lamp"), B("lamp"), 60);
    put_session(s, B("fan"), B("fan"), 60);
    put_sub(s, B("lamp"), "a", 0, 0);
    put_sub(s, B("lamp"), "b", 0, 0);
    put_sub(s, B("fan"), "a", 0, 0);
    store_put_inbound(s, B("lamp"), 1);
    store_put_inbound(s, B("fan"), 1);
    store_put_inbound(s, B("fan"), 2);
    put_msg(s, 1, "t", "m1");
    put_msg(s, 2, "t", "m2");
    put_queued(s, B("lamp"), 1, 1);
    put_queued(s, B("fan"), 2, 1);
    store_put_retained(s, B("r/1"), 2);
    store_put_retained(s, B("r/2"), 2);
    put_spooled(s, 1, "up", "a");
    put_spooled(s, 2, "up", "b");
    store_put_job_update(s, B("job-1"), B("{}"));
    store_put_job_update(s, B("job-2"), B("{}"));
    settle(fx);

    /* The session's subscriptions and QoS 2 identifiers go with it; its
     * queued entries stay (the broker deletes them one by one). */
    store_del_session(s, B("lamp"));
    store_del_sub(s, B("fan"), B("a"));
    store_del_inbound(s, B("fan"), 1);
    store_set_queued_state(s, 2, 77, 3);
    store_del_retained(s, B("r/1"));
    store_put_retained(s, B("r/2"), 1); /* replaced */
    store_del_spooled(s, 1);
    store_del_job_update(s, B("job-1"));
    put_session(s, B("fan"), B("fan"), 0); /* replaced */
    settle(fx);
    reopen(fx);
    s = fx->s;

    dump_t d = {0};
    dump_all(s, &d);
    assert_dump(&d, true,
                "1 lamp msg=1 qos2 packet=0 state=0 retain=0 sub_ids=\\x00\\x00\\x00\\x07\n"
                "1 t props=&\\x00\\x01k\\x00\\x01v payload=m1 qos1 retain=0 expires=1700003600 "
                "from=thing:lamp\n"
                "2 fan msg=1 qos2 packet=77 state=3 retain=1 sub_ids=\\x00\\x00\\x00\\x07\n"
                "fan 2\n"
                "fan owner=fan expiry=0 v5 disconnected=1700000000\n"
                "r/2 -> 1\n");
    assert_int_equal(store_load_spooled(s, 0, 10, spooled_line, &d), SEDGE_OK);
    assert_int_equal(store_load_job_updates(s, job_update_line, &d), SEDGE_OK);
    assert_dump(&d, false, "2 up b qos0 retain=0 at=1700000002\njob-2 {}\n");
}

/* A crash between a message's write and its last reference's removal
 * leaves a message nobody needs: the load drops it, from the file too. */
static void test_messages_nothing_refers_to_are_dropped_at_load(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    put_msg(fx->s, 1, "queued", "");
    put_msg(fx->s, 2, "retained", "");
    put_msg(fx->s, 3, "orphan", "");
    put_queued(fx->s, B("lamp"), 1, 1);
    store_put_retained(fx->s, B("retained"), 2);
    settle(fx);
    reopen(fx);
    dump_t d = {0};
    assert_int_equal(store_load_msgs(fx->s, msg_line, &d), SEDGE_OK);
    assert_dump(&d, false,
                "1 queued props=&\\x00\\x01k\\x00\\x01v payload= qos1 retain=0 "
                "expires=1700003600 from=thing:lamp\n"
                "2 retained props=&\\x00\\x01k\\x00\\x01v payload= qos1 retain=0 "
                "expires=1700003600 from=thing:lamp\n");
    sqlite3 *db = db_open(fx->path);
    assert_column(db, "SELECT id FROM msg ORDER BY id", "1,2");
    sqlite3_close(db);
}

/* Empty views (which may have no data pointer) are stored as empty text
 * or blobs, never NULL, and come back empty. */
static void test_empty_values_round_trip_as_empty(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    bytes_t none = {NULL, 0};
    store_session_t session = {none, none, 0, 4, 0};
    store_put_session(fx->s, &session);
    store_msg_t msg = {.id = 9, .topic = none, .props = none, .payload = none, .source = none};
    store_put_msg(fx->s, &msg);
    store_queued_t queued = {.client_id = none, .seq = 1, .msg_id = 9, .sub_ids = none};
    store_put_queued(fx->s, &queued);
    settle(fx);
    reopen(fx);
    dump_t d = {0};
    assert_int_equal(store_load_sessions(fx->s, session_line, &d), SEDGE_OK);
    assert_int_equal(store_load_msgs(fx->s, msg_line, &d), SEDGE_OK);
    assert_int_equal(store_load_queued(fx->s, queued_line, &d), SEDGE_OK);
    assert_dump(&d, false,
                " owner= expiry=0 v4 disconnected=0\n"
                "9  props= payload= qos0 retain=0 expires=0 from=\n"
                "1  msg=9 qos0 packet=0 state=0 retain=0 sub_ids=\n");
    sqlite3 *db = db_open(fx->path);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM msg WHERE topic IS NULL OR props IS NULL "
                                "OR payload IS NULL OR source IS NULL"),
                     0);
    sqlite3_close(db);
}

/* ---- batches and their numbers ---- */

static void test_batch_numbers_and_what_is_pending(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    assert_int_equal(store_open_batch(s), 1);
    assert_int_equal(store_pending_batch(s), 0);
    assert_int_equal(store_committed_batch(s), 0);
    assert_false(store_failing(s));

    assert_int_equal(store_put_meta(s, "a", 1), 1);
    assert_int_equal(store_put_meta(s, "b", 2), 1);
    assert_int_equal(store_pending_batch(s), 1);

    /* The end of the turn hands batch 1 to the worker; writes now join 2. */
    store_before_wait(s);
    assert_int_equal(store_open_batch(s), 2);
    assert_int_equal(store_pending_batch(s), 1);
    assert_int_equal(store_put_meta(s, "c", 3), 2);
    assert_int_equal(store_pending_batch(s), 2);
    settle(fx);
    assert_int_equal(store_committed_batch(s), 2);
    assert_int_equal(store_pending_batch(s), 0);
    assert_int_equal(store_open_batch(s), 3);

    /* A turn with nothing written commits nothing and keeps the number. */
    store_before_wait(s);
    assert_int_equal(store_open_batch(s), 3);
    assert_int_equal(store_pending_batch(s), 0);
}

static void test_batches_commit_in_order_and_each_waiter_fires_once(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    int order[8], n = 0;
    waiter_t w[4] = {{0}};
    for (int i = 0; i < 4; i++)
        w[i] = (waiter_t){.order = order, .order_len = &n, .id = i};

    uint64_t b1 = store_put_meta(s, "k", 1);
    wait_for(fx, b1, &w[0]);
    wait_for(fx, b1, &w[1]);
    store_before_wait(s); /* batch 1 commits on the worker */
    uint64_t b2 = store_put_meta(s, "k", 2);
    assert_int_equal(b2, b1 + 1);
    wait_for(fx, b2, &w[2]);
    /* One batch at a time: batch 2 waits for batch 1, then goes at once. */
    store_before_wait(s);
    assert_int_equal(store_open_batch(s), b2);
    run_until_committed(fx, b1);
    assert_int_equal(n, 2);
    assert_int_equal(store_pending_batch(s), b2);
    /* The open batch has nothing written yet, but batch 2 before it is
     * pending: its waiter waits for batch 2. */
    uint64_t b3 = store_open_batch(s);
    assert_int_equal(b3, b2 + 1);
    wait_for(fx, b3, &w[3]);
    assert_int_equal(w[3].calls, 0);

    run_until(fx, waiter_called, &w[3]);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].result, SEDGE_OK);
    }
    assert_int_equal(w[0].committed, b1);
    assert_int_equal(w[2].committed, b2);
    assert_int_equal(store_pending_batch(s), 0);

    /* The later value won: batches were applied in order. */
    reopen(fx);
    int64_t v = 0;
    assert_int_equal(store_read_meta(fx->s, "k", &v), SEDGE_OK);
    assert_int_equal(v, 2);
}

static void test_settled_fires_at_once_for_what_is_already_durable(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    waiter_t w = {0};
    /* Nothing written: the empty open batch has nothing to wait for. */
    wait_for(fx, store_open_batch(s), &w);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.result, SEDGE_OK);
    wait_for(fx, 0, &w);
    assert_int_equal(w.calls, 2);

    uint64_t b = store_put_meta(s, "k", 1);
    settle(fx);
    wait_for(fx, b, &w);
    assert_int_equal(w.calls, 3);
    wait_for(fx, store_open_batch(s), &w);
    assert_int_equal(w.calls, 4);
}

/* An owner may wait for its own last write after another waits for a
 * newer batch: the older batch's waiter fires when that batch commits,
 * not behind the newer one. */
static void test_a_waiter_for_an_older_batch_fires_when_that_batch_commits(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    uint64_t b1 = store_put_meta(s, "older", 1);
    store_before_wait(s);
    uint64_t b2 = store_put_meta(s, "newer", 1);
    int order[3], n = 0;
    waiter_t first = {.order = order, .order_len = &n, .id = 0};
    waiter_t newer = {.order = order, .order_len = &n, .id = 2};
    waiter_t older = {.order = order, .order_len = &n, .id = 1};
    wait_for(fx, b1, &first);
    wait_for(fx, b2, &newer);
    wait_for(fx, b1, &older);
    run_until_committed(fx, b1);
    assert_int_equal(store_committed_batch(s), b1);
    assert_int_equal(n, 2);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 1);
    settle(fx);
    assert_int_equal(n, 3);
    assert_int_equal(order[2], 2);
    assert_int_equal(newer.calls + older.calls + first.calls, 3);
}

/* Deletions of queued entries and messages wait for the end of their batch
 * and go to SQLite as ranges of consecutive keys: the keys between the
 * runs, and those deleted in no batch, must stay. */
static void test_deletes_of_queued_entries_and_messages_collapse_into_ranges(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    for (uint64_t i = 1; i <= 12; i++) {
        put_msg(s, i, "t", "");
        put_queued(s, B("c"), i, i);
    }
    put_msg(s, 20, "t", "");
    put_queued(s, B("c"), 20, 20);
    settle(fx);

    static const uint64_t gone[] = {3, 1, 2, 2, 4, 8, 6, 7, 12, 20};
    for (size_t i = 0; i < ARRAY_LEN(gone); i++) {
        store_del_queued(s, gone[i]);
        store_del_msg(s, gone[i]);
    }
    /* Written and deleted in the same batch: the deletion comes last. */
    put_msg(s, 30, "t", "");
    put_queued(s, B("c"), 30, 30);
    store_del_queued(s, 30);
    store_del_msg(s, 30);
    settle(fx);
    /* And deletions in a later batch start afresh. */
    store_del_queued(s, 10);
    store_del_msg(s, 10);
    settle(fx);

    sqlite3 *db = db_open(fx->path);
    assert_column(db, "SELECT seq FROM queued ORDER BY seq", "5,9,11");
    assert_column(db, "SELECT id FROM msg ORDER BY id", "5,9,11");
    sqlite3_close(db);
    reopen(fx);
    dump_t d = {0};
    assert_int_equal(store_load_queued(fx->s, queued_line, &d), SEDGE_OK);
    assert_int_equal(d.n, 3);
    assert_dump(&d, false,
                "5 c msg=5 qos2 packet=0 state=0 retain=0 sub_ids=\\x00\\x00\\x00\\x07\n"
                "9 c msg=9 qos2 packet=0 state=0 retain=0 sub_ids=\\x00\\x00\\x00\\x07\n"
                "11 c msg=11 qos2 packet=0 state=0 retain=0 sub_ids=\\x00\\x00\\x00\\x07\n");
}

/* ---- failed commits ---- */

static bool failed_twice(void *ctx)
{
    store_stats_t st;
    store_get_stats(((fx_t *)ctx)->s, &st);
    return st.failures >= 2;
}

static void test_a_commit_blocked_by_another_writer_is_retried_until_it_commits(void **state)
{
    fx_t *fx = *state;
    open_store_impatient(fx);
    store_t *s = fx->s;
    sqlite3 *other = db_open(fx->path);
    db_exec(other, "BEGIN IMMEDIATE");

    uint64_t b1 = store_put_meta(s, "first", 1);
    waiter_t w1 = {0}, w2 = {0};
    wait_for(fx, b1, &w1);
    run_until(fx, store_is_failing, fx);
    assert_int_equal(w1.calls, 0);
    assert_int_equal(store_committed_batch(s), 0);
    assert_true(store_pending_batch(s) >= b1);

    /* Writes made meanwhile join the batch that waits for the retry; a
     * turn does not hand it over before its time. */
    uint64_t b2 = store_put_meta(s, "second", 2);
    assert_int_equal(b2, store_pending_batch(s));
    wait_for(fx, b2, &w2);
    store_before_wait(s);
    assert_int_equal(store_pending_batch(s), b2);

    /* It keeps failing while the lock is held, and nothing is reported. */
    run_until(fx, failed_twice, fx);
    assert_true(store_failing(s));
    assert_int_equal(w1.calls + w2.calls, 0);
    /* A start-up load needs the write lock too (it drops orphans). */
    dump_t d = {0};
    assert_int_equal(store_load_msgs(s, msg_line, &d), SEDGE_ERR_STORE);

    db_exec(other, "COMMIT");
    run_until(fx, waiter_called, &w2);
    assert_int_equal(w1.calls, 1);
    assert_int_equal(w1.result, SEDGE_OK);
    assert_int_equal(w2.result, SEDGE_OK);
    assert_false(store_failing(s));
    /* Each retry takes the newest number, so that writes made meanwhile
     * commit with the failed ones. */
    assert_true(store_committed_batch(s) >= b2);
    assert_int_equal(store_pending_batch(s), 0);
    store_stats_t st;
    store_get_stats(s, &st);
    assert_true(st.failures >= 2);
    sqlite3_close(other);

    reopen(fx);
    int64_t v = 0;
    assert_int_equal(store_read_meta(fx->s, "first", &v), SEDGE_OK);
    assert_int_equal(v, 1);
    assert_int_equal(store_read_meta(fx->s, "second", &v), SEDGE_OK);
    assert_int_equal(v, 2);
}

/* A statement the database refuses (here a trigger) fails the whole
 * batch: nothing of it is visible, and it is retried until it commits. */
static void test_a_batch_a_statement_refuses_is_rolled_back_whole_and_retried(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    put_session(s, B("lamp"), B("lamp"), 60);
    put_sub(s, B("lamp"), "cmd", 0, 0);
    settle(fx);
    sqlite3 *other = db_open(fx->path);
    db_exec(other, "CREATE TRIGGER poison BEFORE DELETE ON session "
                   "BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
    store_put_meta(s, "before", 7);
    store_del_session(s, B("lamp"));
    uint64_t b = store_put_meta(s, "after", 8);
    waiter_t w = {0};
    wait_for(fx, b, &w);
    run_until(fx, store_is_failing, fx);
    assert_int_equal(w.calls, 0);
    assert_int_equal(db_int(other, "SELECT COUNT(*) FROM meta"), 0);
    assert_column(other,
                  "SELECT client_id || ' ' || filter FROM session JOIN sub USING (client_id)",
                  "lamp cmd");
    db_exec(other, "DROP TRIGGER poison");
    run_until(fx, waiter_called, &w);
    assert_int_equal(w.result, SEDGE_OK);
    assert_false(store_failing(s));
    assert_column(other, "SELECT key || '=' || value FROM meta ORDER BY key", "after=8,before=7");
    assert_int_equal(db_int(other, "SELECT COUNT(*) FROM session"), 0);
    assert_int_equal(db_int(other, "SELECT COUNT(*) FROM sub"), 0);

    /* The same for the deletions done as ranges at the batch's end. */
    for (uint64_t i = 1; i <= 3; i++)
        put_queued(s, B("c"), i, i);
    settle(fx);
    db_exec(other, "CREATE TRIGGER keep BEFORE DELETE ON queued BEGIN SELECT RAISE(ABORT, 'kept'); "
                   "END");
    store_del_queued(s, 3);
    store_del_queued(s, 1);
    b = store_put_meta(s, "x", 1);
    waiter_t w2 = {0};
    wait_for(fx, b, &w2);
    run_until(fx, store_is_failing, fx);
    assert_column(other, "SELECT seq FROM queued ORDER BY seq", "1,2,3");
    assert_int_equal(db_int(other, "SELECT COUNT(*) FROM meta WHERE key = 'x'"), 0);
    db_exec(other, "DROP TRIGGER keep");
    run_until(fx, waiter_called, &w2);
    assert_int_equal(w2.result, SEDGE_OK);
    assert_column(other, "SELECT seq FROM queued ORDER BY seq", "2");
    assert_int_equal(db_int(other, "SELECT value FROM meta WHERE key = 'x'"), 1);
    sqlite3_close(other);
}

static void test_flush_sync_commits_now_and_is_refused_while_a_commit_is_in_flight(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    assert_int_equal(store_flush_sync(s), SEDGE_OK); /* nothing to commit */

    uint64_t b = store_put_meta(s, "k", 1);
    waiter_t w = {0};
    wait_for(fx, b, &w);
    assert_int_equal(store_flush_sync(s), SEDGE_OK);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.result, SEDGE_OK);
    assert_int_equal(w.committed, b);
    assert_int_equal(store_pending_batch(s), 0);
    assert_int_equal(store_open_batch(s), b + 1);

    b = store_put_meta(s, "k", 2);
    store_before_wait(s);
    assert_int_equal(store_flush_sync(s), SEDGE_ERR_BUSY);
    settle(fx);
    assert_int_equal(store_committed_batch(s), b);
}

static void test_flush_sync_during_a_retry_commits_and_ends_the_failing_state(void **state)
{
    fx_t *fx = *state;
    open_store_impatient(fx);
    store_t *s = fx->s;
    sqlite3 *other = db_open(fx->path);
    db_exec(other, "BEGIN IMMEDIATE");
    uint64_t b = store_put_meta(s, "k", 1);
    waiter_t w = {0};
    wait_for(fx, b, &w);
    run_until(fx, store_is_failing, fx);
    db_exec(other, "COMMIT");
    sqlite3_close(other);

    assert_int_equal(store_flush_sync(s), SEDGE_OK);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.result, SEDGE_OK);
    assert_int_equal(store_pending_batch(s), 0);
    assert_false(store_failing(s));
    /* And the next batch goes the usual way. */
    store_put_meta(s, "k", 2);
    settle(fx);
    assert_false(store_failing(s));
}

typedef struct {
    store_t *s;
    uint64_t batch; /* of the write made from the callback */
    int calls;
} writer_t;

static void write_when_settled(void *ctx, sedge_err result)
{
    writer_t *w = ctx;
    assert_int_equal(result, SEDGE_OK);
    w->calls++;
    w->batch = store_put_meta(w->s, "late", 2);
}

/* What a waiter writes when it hears of a commit belongs to a later batch,
 * also when the commit was a synchronous flush. */
static void test_a_write_made_by_a_waiter_during_flush_sync_is_kept(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    uint64_t b = store_put_meta(s, "early", 1);
    writer_t w = {s, 0, 0};
    assert_int_equal(store_when_settled(s, b, write_when_settled, &w), SEDGE_OK);
    assert_int_equal(store_flush_sync(s), SEDGE_OK);
    assert_int_equal(w.calls, 1);
    assert_true(w.batch > b);
    assert_int_equal(store_pending_batch(s), w.batch);
    waiter_t late = {0};
    wait_for(fx, w.batch, &late);
    assert_int_equal(late.calls, 0);
    settle(fx);
    assert_int_equal(late.calls, 1);
    reopen(fx);
    int64_t v = 0;
    assert_int_equal(store_read_meta(fx->s, "late", &v), SEDGE_OK);
    assert_int_equal(v, 2);
}

/* ---- closing ---- */

static void test_close_commits_what_is_pending(void **state)
{
    fx_t *fx = *state;
    store_options_t synced = {.path = fx->path, .synchronous_full = true};
    assert_int_equal(store_open(&fx->loop, &synced, &fx->s), SEDGE_OK);
    uint64_t b = store_put_meta(fx->s, "unsent", 1);
    waiter_t w = {0};
    wait_for(fx, b, &w);
    close_store(fx);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.result, SEDGE_OK);

    /* With a batch on the worker and another filling. */
    open_store(fx);
    store_put_meta(fx->s, "in flight", 2);
    store_before_wait(fx->s);
    b = store_put_meta(fx->s, "open", 3);
    waiter_t w2 = {0};
    wait_for(fx, b, &w2);
    close_store(fx);
    assert_int_equal(w2.calls, 1);
    assert_int_equal(w2.result, SEDGE_OK);

    open_store(fx);
    int64_t v = 0;
    assert_int_equal(store_read_meta(fx->s, "unsent", &v), SEDGE_OK);
    assert_int_equal(v, 1);
    assert_int_equal(store_read_meta(fx->s, "in flight", &v), SEDGE_OK);
    assert_int_equal(v, 2);
    assert_int_equal(store_read_meta(fx->s, "open", &v), SEDGE_OK);
    assert_int_equal(v, 3);
    store_close(NULL); /* harmless */
}

/* The one time a waiter hears of a failure: the last commit, at close. */
static void test_close_while_the_database_is_locked_tells_waiters_the_writes_failed(void **state)
{
    fx_t *fx = *state;
    open_store_impatient(fx);
    sqlite3 *other = db_open(fx->path);
    db_exec(other, "BEGIN IMMEDIATE");
    uint64_t b = store_put_meta(fx->s, "lost", 1);
    waiter_t w = {0};
    wait_for(fx, b, &w);
    run_until(fx, store_is_failing, fx);
    close_store(fx);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.result, SEDGE_ERR_STORE);
    db_exec(other, "ROLLBACK");
    sqlite3_close(other);
    open_store(fx);
    int64_t v = 0;
    assert_int_equal(store_read_meta(fx->s, "lost", &v), SEDGE_ERR_NOT_FOUND);
}

/* ---- batch size and statistics ---- */

typedef struct {
    size_t len;
    bool intact;
} big_t;

static sedge_err big_row(void *ctx, const store_msg_t *v)
{
    big_t *b = ctx;
    b->len = v->payload.len;
    b->intact = true;
    for (size_t i = 0; i < v->payload.len; i++)
        b->intact &= v->payload.data[i] == (uint8_t)(i * 7);
    return SEDGE_OK;
}

static void test_a_batch_of_many_megabytes_commits_whole(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    size_t len = 5u << 20;
    uint8_t *payload = malloc(len);
    assert_non_null(payload);
    for (size_t i = 0; i < len; i++)
        payload[i] = (uint8_t)(i * 7);
    store_msg_t m = {.id = 1, .topic = B("big"), .payload = {payload, len}};
    store_put_msg(fx->s, &m);
    store_put_retained(fx->s, B("big"), 1);
    free(payload); /* the batch holds a copy */
    settle(fx);
    /* The batch after it is small again. */
    store_put_meta(fx->s, "k", 1);
    settle(fx);
    reopen(fx);
    big_t got = {0};
    assert_int_equal(store_load_msgs(fx->s, big_row, &got), SEDGE_OK);
    assert_int_equal(got.len, len);
    assert_true(got.intact);
}

static void test_stats_count_batches_writes_and_bytes_on_disk(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_stats_t st;
    store_get_stats(fx->s, &st);
    assert_int_equal(st.batches, 0);
    assert_int_equal(st.writes, 0);
    assert_int_equal(st.failures, 0);
    assert_true(st.bytes_on_disk > 0);
    store_put_meta(fx->s, "a", 1);
    store_put_meta(fx->s, "b", 1);
    settle(fx);
    store_put_meta(fx->s, "c", 1);
    settle(fx);
    store_get_stats(fx->s, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.writes, 3);
    assert_int_equal(st.failures, 0);
    assert_true(st.bytes_on_disk > 0);

    /* Files removed under it count nothing, and are no error. */
    char wal[400];
    snprintf(wal, sizeof wal, "%s-wal", fx->path);
    assert_int_equal(unlink(fx->path), 0);
    assert_int_equal(unlink(wal), 0);
    store_get_stats(fx->s, &st);
    assert_int_equal(st.bytes_on_disk, 0);
}

/* ---- opening: migrations and refusals ---- */

/* What the first Sedge wrote (user_version 0). */
static const char v0_schema[] =
    "CREATE TABLE session (client_id TEXT PRIMARY KEY, owner TEXT NOT NULL,"
    "  expiry INTEGER NOT NULL, version INTEGER NOT NULL, disconnected_at INTEGER NOT NULL);"
    "CREATE TABLE sub (client_id TEXT NOT NULL, filter TEXT NOT NULL,"
    "  options INTEGER NOT NULL, sub_id INTEGER NOT NULL, PRIMARY KEY (client_id, filter));"
    "CREATE TABLE msg (id INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
    "  props BLOB NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL,"
    "  retain INTEGER NOT NULL, expires_at INTEGER NOT NULL, source TEXT NOT NULL);"
    "CREATE TABLE queued (seq INTEGER PRIMARY KEY, client_id TEXT NOT NULL,"
    "  msg_id INTEGER NOT NULL, qos INTEGER NOT NULL, packet_id INTEGER NOT NULL,"
    "  state INTEGER NOT NULL, retain INTEGER NOT NULL, sub_ids BLOB NOT NULL);"
    "CREATE TABLE retained (topic TEXT PRIMARY KEY, msg_id INTEGER NOT NULL);"
    "CREATE TABLE inbound (client_id TEXT NOT NULL, packet_id INTEGER NOT NULL,"
    "  PRIMARY KEY (client_id, packet_id));"
    "CREATE TABLE deployment (version INTEGER PRIMARY KEY, group_name TEXT NOT NULL,"
    "  checksum TEXT NOT NULL, created_at INTEGER NOT NULL, status TEXT NOT NULL,"
    "  reason TEXT NOT NULL, document TEXT NOT NULL);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE spool (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
    "  payload BLOB NOT NULL, qos INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE shadow (thing TEXT NOT NULL, name TEXT NOT NULL,"
    "  version INTEGER NOT NULL, document TEXT NOT NULL, deleted_at INTEGER NOT NULL,"
    "  PRIMARY KEY (thing, name));";

/* The tables version 1 added, so that opening one needs no write before
 * the migration's. */
static const char v1_tables[] =
    "CREATE TABLE dead_letter (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
    "  payload BLOB NOT NULL, qos INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    "  retain INTEGER NOT NULL, dead_at INTEGER NOT NULL, reason TEXT NOT NULL);"
    "CREATE TABLE job_update (job_id TEXT PRIMARY KEY, payload TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);";

static const char old_rows[] =
    "INSERT INTO session VALUES ('phone', 'alice', 60, 5, 0), ('lamp', 'lamp', 60, 4, 0);"
    "INSERT INTO sub VALUES ('phone', 'news', 1, 0), ('lamp', 'cmd', 0, 0);"
    "INSERT INTO msg VALUES (1, 't', x'', x'', 1, 0, 0, '');"
    "INSERT INTO queued VALUES (1, 'phone', 1, 1, 0, 0, 0, x''), (2, 'lamp', 1, 1, 0, 0, 0, x'');"
    "INSERT INTO inbound VALUES ('phone', 9), ('lamp', 8);"
    "INSERT INTO spool VALUES (1, 'up', x'6869', 1, 1700000000);";

static void make_database(const char *path, const char *sql)
{
    sqlite3 *db = db_open(path);
    db_exec(db, "PRAGMA journal_mode = WAL");
    db_exec(db, sql);
    sqlite3_close(db);
}

static int64_t user_version(const char *path)
{
    sqlite3 *db = db_open(path);
    int64_t v = db_int(db, "PRAGMA user_version");
    sqlite3_close(db);
    return v;
}

static void test_migration_from_version_0_keys_sessions_by_owner_and_client_id(void **state)
{
    fx_t *fx = *state;
    make_database(fx->path, v0_schema);
    make_database(fx->path, old_rows);
    open_store(fx);
    dump_t d = {0};
    assert_int_equal(store_load_sessions(fx->s, session_line, &d), SEDGE_OK);
    assert_int_equal(store_load_subs(fx->s, sub_line, &d), SEDGE_OK);
    assert_int_equal(store_load_queued(fx->s, queued_line, &d), SEDGE_OK);
    assert_int_equal(store_load_inbound(fx->s, inbound_line, &d), SEDGE_OK);
    assert_int_equal(store_load_spooled(fx->s, 0, 10, spooled_line, &d), SEDGE_OK);
    assert_dump(&d, true,
                "1 alice\\x00phone msg=1 qos1 packet=0 state=0 retain=0 sub_ids=\n"
                "1 up hi qos1 retain=0 at=1700000000\n"
                "2 lamp msg=1 qos1 packet=0 state=0 retain=0 sub_ids=\n"
                "alice\\x00phone 9\n"
                "alice\\x00phone news options=1 id=0\n"
                "alice\\x00phone owner=alice expiry=60 v5 disconnected=0\n"
                "lamp 8\n"
                "lamp cmd options=0 id=0\n"
                "lamp owner=lamp expiry=60 v4 disconnected=0\n");
    /* The tables later versions added are there. */
    uint64_t dead = 1;
    assert_int_equal(store_count_dead_letters(fx->s, &dead), SEDGE_OK);
    assert_int_equal(dead, 0);
    store_spooled_t v = {2, B("up"), B("x"), 0, true, 5};
    store_put_spooled(fx->s, &v);
    close_store(fx);
    assert_int_equal(user_version(fx->path), 2);

    /* Opening it again changes nothing more. */
    open_store(fx);
    assert_int_equal(store_load_sessions(fx->s, session_line, &d), SEDGE_OK);
    assert_int_equal(store_load_spooled(fx->s, 1, 10, spooled_line, &d), SEDGE_OK);
    assert_dump(&d, true,
                "2 up x qos0 retain=1 at=5\n"
                "alice\\x00phone owner=alice expiry=60 v5 disconnected=0\n"
                "lamp owner=lamp expiry=60 v4 disconnected=0\n");
}

static void test_migration_from_version_1_adds_only_the_spool_retain_flag(void **state)
{
    fx_t *fx = *state;
    make_database(fx->path, v0_schema);
    make_database(fx->path, v1_tables);
    make_database(fx->path, old_rows);
    make_database(fx->path, "PRAGMA user_version = 1");
    open_store(fx);
    dump_t d = {0};
    /* Version 1 keys are final: an owner differing from the key stays. */
    assert_int_equal(store_load_sessions(fx->s, session_line, &d), SEDGE_OK);
    assert_int_equal(store_load_spooled(fx->s, 0, 10, spooled_line, &d), SEDGE_OK);
    assert_dump(&d, true,
                "1 up hi qos1 retain=0 at=1700000000\n"
                "lamp owner=lamp expiry=60 v4 disconnected=0\n"
                "phone owner=alice expiry=60 v5 disconnected=0\n");
    close_store(fx);
    assert_int_equal(user_version(fx->path), 2);
}

/* A migration is one transaction: one that fails leaves the file as it
 * was, and the store does not open. */
static void test_a_migration_that_fails_leaves_the_database_as_it_was(void **state)
{
    fx_t *fx = *state;
    make_database(fx->path, v0_schema);
    make_database(fx->path, old_rows);
    /* A row already under the key the migration would give 'phone'. */
    sqlite3 *db = db_open(fx->path);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO session VALUES (?1, 'x', 0, 5, 0)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, "alice\0phone", 11, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);

    assert_int_equal(try_open(fx, 0), SEDGE_ERR_STORE);
    assert_null(fx->s);
    assert_int_equal(user_version(fx->path), 0);
    db = db_open(fx->path);
    assert_column(db, "SELECT client_id FROM sub ORDER BY client_id", "lamp,phone");
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM session WHERE client_id = 'phone'"), 1);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM pragma_table_info('spool') "
                                "WHERE name = 'retain'"),
                     0);
    sqlite3_close(db);
}

static void use_file(fx_t *fx, const char *name)
{
    snprintf(fx->path, sizeof fx->path, "%s/%s", fx->dir, name);
}

/* Files whose tables are not the store's are refused, not half used. */
static void test_open_refuses_a_database_of_another_schema(void **state)
{
    fx_t *fx = *state;
    use_file(fx, "no-owner.db");
    make_database(fx->path, "CREATE TABLE session (client_id TEXT PRIMARY KEY)");
    assert_int_equal(try_open(fx, 0), SEDGE_ERR_STORE);

    use_file(fx, "odd-sub.db");
    make_database(fx->path, v0_schema);
    make_database(fx->path, "DROP TABLE sub; CREATE TABLE sub (who TEXT)");
    assert_int_equal(try_open(fx, 0), SEDGE_ERR_STORE);

    /* Says version 2 but lacks a column version 2 has. */
    use_file(fx, "lying.db");
    make_database(fx->path, v0_schema);
    make_database(fx->path, "PRAGMA user_version = 2");
    assert_int_equal(try_open(fx, 0), SEDGE_ERR_STORE);
    assert_null(fx->s);
}

static void test_open_fails_while_another_writer_blocks_the_upgrade(void **state)
{
    fx_t *fx = *state;
    /* The tables version 1 added cannot be created. */
    use_file(fx, "v0.db");
    make_database(fx->path, v0_schema);
    sqlite3 *v0 = db_open(fx->path);
    db_exec(v0, "BEGIN IMMEDIATE");
    assert_int_equal(try_open(fx, 20), SEDGE_ERR_STORE);
    db_exec(v0, "ROLLBACK");
    sqlite3_close(v0);

    /* The migration cannot start. */
    use_file(fx, "v1.db");
    make_database(fx->path, v0_schema);
    make_database(fx->path, v1_tables);
    make_database(fx->path, "PRAGMA user_version = 1");
    sqlite3 *other = db_open(fx->path);
    db_exec(other, "BEGIN IMMEDIATE");
    assert_int_equal(try_open(fx, 20), SEDGE_ERR_STORE);
    db_exec(other, "COMMIT");
    sqlite3_close(other);
    open_store(fx);
    close_store(fx);
    assert_int_equal(user_version(fx->path), 2);
}

/* Runs with stderr going to a file; returns what was written (the caller
 * frees). */
typedef struct {
    int saved;
    char path[320];
} capture_t;

static void capture_start(capture_t *c, const char *dir)
{
    snprintf(c->path, sizeof c->path, "%s/stderr.txt", dir);
    fflush(stderr);
    c->saved = dup(2);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(c->saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
}

static char *capture_stop(capture_t *c)
{
    fflush(stderr);
    assert_int_equal(dup2(c->saved, 2), 2);
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    assert_non_null(f);
    char *text = calloc(1, 65536);
    assert_non_null(text);
    size_t n = fread(text, 1, 65535, f);
    text[n] = 0;
    fclose(f);
    unlink(c->path);
    fputs(text, stderr); /* still shown */
    return text;
}

static void test_open_refuses_a_file_that_is_not_a_database(void **state)
{
    fx_t *fx = *state;
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    for (int i = 0; i < 512; i++)
        fputs("these are not the pages of a database\n", f);
    fclose(f);
    capture_t c;
    capture_start(&c, fx->dir);
    sedge_err err = try_open(fx, 0);
    char *said = capture_stop(&c);
    assert_int_equal(err, SEDGE_ERR_STORE);
    assert_null(fx->s);
    assert_non_null(strstr(said, "file is not a database"));
    assert_non_null(strstr(said, fx->path));
    free(said);
    /* Left as it was. */
    f = fopen(fx->path, "r");
    char line[64];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "these are not the pages of a database\n");
    fclose(f);
}

static void test_open_fails_in_a_directory_that_does_not_exist(void **state)
{
    fx_t *fx = *state;
    use_file(fx, "missing/store.db");
    capture_t c;
    capture_start(&c, fx->dir);
    sedge_err err = try_open(fx, 0);
    char *said = capture_stop(&c);
    assert_int_equal(err, SEDGE_ERR_STORE);
    assert_null(fx->s);
    assert_non_null(strstr(said, fx->path));
    assert_non_null(strstr(said, "unable to open database file"));
    free(said);
}

/* ---- the spool and the dead letters ---- */

static void test_spool_summary_and_paged_loads(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_spool_summary_t sum;
    assert_int_equal(store_spool_summary(fx->s, &sum), SEDGE_OK);
    assert_int_equal(sum.count, 0);
    assert_int_equal(sum.bytes, 0);
    assert_int_equal(sum.first_seq, 0);
    assert_int_equal(sum.last_seq, 0);

    uint64_t bytes = 0;
    for (uint64_t i = 1; i <= 10; i++) {
        char topic[32], payload[32];
        snprintf(topic, sizeof topic, "up/%llu", (unsigned long long)i);
        snprintf(payload, sizeof payload, "payload %llu", (unsigned long long)i);
        put_spooled(fx->s, i, topic, payload);
        bytes += strlen(topic) + strlen(payload);
    }
    settle(fx);
    assert_int_equal(store_spool_summary(fx->s, &sum), SEDGE_OK);
    assert_int_equal(sum.count, 10);
    assert_int_equal(sum.bytes, bytes);
    assert_int_equal(sum.first_seq, 1);
    assert_int_equal(sum.last_seq, 10);

    dump_t d = {0};
    assert_int_equal(store_load_spooled(fx->s, 0, 4, spooled_line, &d), SEDGE_OK);
    assert_dump(&d, false,
                "1 up/1 payload 1 qos1 retain=0 at=1700000001\n"
                "2 up/2 payload 2 qos0 retain=0 at=1700000002\n"
                "3 up/3 payload 3 qos1 retain=1 at=1700000003\n"
                "4 up/4 payload 4 qos0 retain=0 at=1700000004\n");
    assert_int_equal(store_load_spooled(fx->s, 4, 4, spooled_line, &d), SEDGE_OK);
    assert_dump(&d, false,
                "5 up/5 payload 5 qos1 retain=0 at=1700000005\n"
                "6 up/6 payload 6 qos0 retain=0 at=1700000006\n"
                "7 up/7 payload 7 qos1 retain=0 at=1700000007\n"
                "8 up/8 payload 8 qos0 retain=0 at=1700000008\n");
}

static void test_spool_pages_end_at_the_last_message(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    for (uint64_t i = 1; i <= 10; i++)
        put_spooled(fx->s, i, "up", "p");
    store_del_spooled(fx->s, 1);
    store_del_spooled(fx->s, 2);
    settle(fx);
    dump_t d = {0};
    assert_int_equal(store_load_spooled(fx->s, 8, 4, spooled_line, &d), SEDGE_OK);
    assert_dump(&d, false,
                "9 up p qos1 retain=0 at=1700000009\n10 up p qos0 retain=0 at=1700000010\n");
    assert_int_equal(store_load_spooled(fx->s, 10, 4, spooled_line, &d), SEDGE_OK);
    assert_int_equal(d.n, 0);
    store_spool_summary_t sum;
    assert_int_equal(store_spool_summary(fx->s, &sum), SEDGE_OK);
    assert_int_equal(sum.count, 8);
    assert_int_equal(sum.first_seq, 3);
    assert_int_equal(sum.last_seq, 10);
}

static void test_dead_letters_leave_the_spool_and_only_the_newest_are_kept(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    for (uint64_t i = 1; i <= 3; i++)
        put_spooled(fx->s, i, "up", "p");
    settle(fx);
    store_spooled_t v = {2, B("up"), B("p"), 0, false, 1700000002};
    store_put_dead_letter(fx->s, &v, 1700000100, B("payload too large for the cloud"));
    settle(fx);
    store_spool_summary_t sum;
    assert_int_equal(store_spool_summary(fx->s, &sum), SEDGE_OK);
    assert_int_equal(sum.count, 2);
    uint64_t dead = 0;
    assert_int_equal(store_count_dead_letters(fx->s, &dead), SEDGE_OK);
    assert_int_equal(dead, 1);
    sqlite3 *db = db_open(fx->path);
    assert_column(db, "SELECT seq || ' ' || dead_at || ' ' || reason FROM dead_letter",
                  "2 1700000100 payload too large for the cloud");
    sqlite3_close(db);

    for (uint64_t i = 100; i <= 100 + STORE_DEAD_LETTERS_KEPT; i++) {
        v.seq = i;
        store_put_dead_letter(fx->s, &v, 1700000200, B("refused"));
    }
    settle(fx);
    assert_int_equal(store_count_dead_letters(fx->s, &dead), SEDGE_OK);
    assert_int_equal(dead, STORE_DEAD_LETTERS_KEPT);
    db = db_open(fx->path);
    assert_int_equal(db_int(db, "SELECT MIN(seq) FROM dead_letter"), 101);
    assert_int_equal(db_int(db, "SELECT MAX(seq) FROM dead_letter"), 100 + STORE_DEAD_LETTERS_KEPT);
    sqlite3_close(db);
}

/* ---- shadows, deployments, meta, job updates ---- */

static void test_shadows_read_and_list_with_deleted_rows(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_put_shadow(fx->s, B("lamp"), B(""), 1, B("{\"classic\":1}"), 0);
    store_put_shadow(fx->s, B("lamp"), B("b"), 2, B("{\"b\":1}"), 0);
    store_put_shadow(fx->s, B("lamp"), B("a"), 3, B("{\"a\":1}"), 0);
    store_put_shadow(fx->s, B("lamp"), B("gone"), 9, B(""), 1700000000);
    store_put_shadow(fx->s, B("fan"), B("x"), 1, B("{}"), 0);
    settle(fx);
    reopen(fx);

    int64_t version = 0, deleted_at = -1;
    char *doc = NULL;
    assert_int_equal(store_read_shadow(fx->s, B("lamp"), B("a"), &version, &doc, &deleted_at),
                     SEDGE_OK);
    assert_int_equal(version, 3);
    assert_int_equal(deleted_at, 0);
    assert_string_equal(doc, "{\"a\":1}");
    free(doc);
    /* A deleted shadow keeps its version, without a document. */
    doc = (char *)1;
    assert_int_equal(store_read_shadow(fx->s, B("lamp"), B("gone"), &version, &doc, &deleted_at),
                     SEDGE_OK);
    assert_int_equal(version, 9);
    assert_int_equal(deleted_at, 1700000000);
    assert_null(doc);
    assert_int_equal(store_read_shadow(fx->s, B("lamp"), B("none"), &version, &doc, &deleted_at),
                     SEDGE_ERR_NOT_FOUND);
    assert_int_equal(store_read_shadow(fx->s, B("fan"), B("a"), &version, &doc, &deleted_at),
                     SEDGE_ERR_NOT_FOUND);

    /* Live named shadows only, in order; not the classic one. */
    dump_t d = {0};
    assert_int_equal(store_list_shadows(fx->s, B("lamp"), name_line, &d), SEDGE_OK);
    assert_dump(&d, false, "a\nb\n");
    assert_int_equal(store_list_shadows(fx->s, B("nobody"), name_line, &d), SEDGE_OK);
    assert_int_equal(d.n, 0);

    /* Created again: live, its versions continuing. */
    store_put_shadow(fx->s, B("lamp"), B("gone"), 10, B("{}"), 0);
    settle(fx);
    assert_int_equal(store_list_shadows(fx->s, B("lamp"), name_line, &d), SEDGE_OK);
    assert_dump(&d, false, "a\nb\ngone\n");
    assert_int_equal(store_read_shadow(fx->s, B("lamp"), B("gone"), &version, &doc, &deleted_at),
                     SEDGE_OK);
    assert_int_equal(version, 10);
    assert_string_equal(doc, "{}");
    free(doc);
}

static void test_deployments_keep_their_documents_and_statuses(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    put_deployment(fx->s, 1, "active", "{\"version\":1}");
    put_deployment(fx->s, 2, "deploying", "{\"version\":2}");
    settle(fx);
    store_set_deployment_status(fx->s, 1, "superseded", NULL);
    store_set_deployment_status(fx->s, 2, "failed", "route r1 names no thing");
    store_set_deployment_status(fx->s, 7, "failed", "no such version"); /* changes nothing */
    store_put_meta(fx->s, "active_deployment", 1);
    settle(fx);
    reopen(fx);

    dump_t d = {0};
    assert_int_equal(store_load_deployments(fx->s, deployment_line, &d), SEDGE_OK);
    assert_dump(&d, false,
                "v1 kitchen sum-one at=100 superseded reason=\n"
                "v2 kitchen sum-two at=200 failed reason=route r1 names no thing\n");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(store_read_deployment_document(fx->s, 2, &text, &len), SEDGE_OK);
    assert_string_equal(text, "{\"version\":2}");
    assert_int_equal(len, strlen("{\"version\":2}"));
    free(text);
    assert_int_equal(store_read_deployment_document(fx->s, 3, &text, &len), SEDGE_ERR_NOT_FOUND);
}

static void test_meta_values(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    int64_t v = 42;
    assert_int_equal(store_read_meta(fx->s, "active_deployment", &v), SEDGE_ERR_NOT_FOUND);
    assert_int_equal(v, 42);
    store_put_meta(fx->s, "active_deployment", 1);
    store_put_meta(fx->s, "negative", -5);
    settle(fx);
    store_put_meta(fx->s, "active_deployment", 2);
    settle(fx);
    reopen(fx);
    assert_int_equal(store_read_meta(fx->s, "active_deployment", &v), SEDGE_OK);
    assert_int_equal(v, 2);
    assert_int_equal(store_read_meta(fx->s, "negative", &v), SEDGE_OK);
    assert_int_equal(v, -5);
}

static void test_job_updates_load_oldest_first(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_put_job_update(fx->s, B("job-b"), B("{\"status\":\"IN_PROGRESS\"}"));
    store_put_job_update(fx->s, B("job-a"), B("{\"status\":\"SUCCEEDED\"}"));
    store_put_job_update(fx->s, B("job-c"), B("{}"));
    store_del_job_update(fx->s, B("job-c"));
    settle(fx);
    /* The time of writing is the wall clock's; set it to know the order. */
    sqlite3 *db = db_open(fx->path);
    db_exec(db, "UPDATE job_update SET created_at = 5 WHERE job_id = 'job-b';"
                "UPDATE job_update SET created_at = 9 WHERE job_id = 'job-a'");
    dump_t d = {0};
    assert_int_equal(store_load_job_updates(fx->s, job_update_line, &d), SEDGE_OK);
    assert_dump(&d, false,
                "job-b {\"status\":\"IN_PROGRESS\"}\n"
                "job-a {\"status\":\"SUCCEEDED\"}\n");
    db_exec(db, "UPDATE job_update SET created_at = 5");
    assert_int_equal(store_load_job_updates(fx->s, job_update_line, &d), SEDGE_OK);
    assert_dump(&d, false,
                "job-a {\"status\":\"SUCCEEDED\"}\n"
                "job-b {\"status\":\"IN_PROGRESS\"}\n");
    sqlite3_close(db);
}

/* ---- loads that stop, and reads of a broken database ---- */

static void two_of_everything(store_t *s)
{
    for (uint64_t i = 1; i <= 2; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%llu", (unsigned long long)i);
        put_session(s, bytes_of_cstr(id), bytes_of_cstr(id), 1);
        put_sub(s, bytes_of_cstr(id), "f", 0, 0);
        put_msg(s, i, "t", "p");
        put_queued(s, bytes_of_cstr(id), i, i);
        store_put_retained(s, bytes_of_cstr(id), i);
        store_put_inbound(s, bytes_of_cstr(id), (uint16_t)i);
        put_deployment(s, i, "active", "{}");
        put_spooled(s, i, "up", "p");
        store_put_job_update(s, bytes_of_cstr(id), B("{}"));
        store_put_shadow(s, B("lamp"), bytes_of_cstr(id), 1, B("{}"), 0);
        store_spooled_t dead = {100 + i, B("up"), B("p"), 0, false, 1};
        store_put_dead_letter(s, &dead, 2, B("refused"));
        store_put_meta(s, id, 1);
    }
}

static void test_a_callback_error_stops_the_load_and_is_returned(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    store_t *s = fx->s;
    two_of_everything(s);
    settle(fx);
    dump_t d = {.stop_after = 1};
#define STOPS_AFTER_ONE(call)                                                                      \
    do {                                                                                           \
        assert_int_equal(call, SEDGE_ERR_FAILED);                                                  \
        assert_int_equal(d.n, 1);                                                                  \
        free(d.lines[0]);                                                                          \
        d.n = 0;                                                                                   \
    } while (0)
    STOPS_AFTER_ONE(store_load_sessions(s, session_line, &d));
    STOPS_AFTER_ONE(store_load_subs(s, sub_line, &d));
    STOPS_AFTER_ONE(store_load_msgs(s, msg_line, &d));
    STOPS_AFTER_ONE(store_load_queued(s, queued_line, &d));
    STOPS_AFTER_ONE(store_load_retained(s, retained_line, &d));
    STOPS_AFTER_ONE(store_load_inbound(s, inbound_line, &d));
    STOPS_AFTER_ONE(store_load_deployments(s, deployment_line, &d));
    STOPS_AFTER_ONE(store_load_spooled(s, 0, 10, spooled_line, &d));
    STOPS_AFTER_ONE(store_load_job_updates(s, job_update_line, &d));
    STOPS_AFTER_ONE(store_list_shadows(s, B("lamp"), name_line, &d));
#undef STOPS_AFTER_ONE
}

/* Every read of a database whose tables are gone, or whose pages are
 * damaged, is an error: never "nothing stored", which an owner would take
 * as a fresh start and write over. */
static void assert_every_read_fails(store_t *s)
{
    dump_t d = {0};
    char *text = NULL;
    size_t len = 0;
    int64_t i64 = 0;
    uint64_t u64 = 0;
    store_spool_summary_t sum;
    assert_int_equal(store_load_sessions(s, session_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(store_load_subs(s, sub_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(store_load_msgs(s, msg_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(store_load_queued(s, queued_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(store_load_retained(s, retained_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(store_load_inbound(s, inbound_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(store_load_deployments(s, deployment_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(store_read_deployment_document(s, 1, &text, &len), SEDGE_ERR_STORE);
    assert_int_equal(store_read_meta(s, "c1", &i64), SEDGE_ERR_STORE);
    assert_int_equal(store_read_shadow(s, B("lamp"), B("c1"), &i64, &text, &i64), SEDGE_ERR_STORE);
    assert_int_equal(store_list_shadows(s, B("lamp"), name_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(store_spool_summary(s, &sum), SEDGE_ERR_STORE);
    assert_int_equal(store_load_spooled(s, 0, 10, spooled_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(store_count_dead_letters(s, &u64), SEDGE_ERR_STORE);
    assert_int_equal(store_load_job_updates(s, job_update_line, &d), SEDGE_ERR_STORE);
    assert_int_equal(d.n, 0);
}

static void test_reads_fail_when_the_tables_are_gone(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    two_of_everything(fx->s);
    settle(fx);
    sqlite3 *db = db_open(fx->path);
    db_exec(db, "DROP TABLE session; DROP TABLE sub; DROP TABLE msg; DROP TABLE queued;"
                "DROP TABLE retained; DROP TABLE inbound; DROP TABLE deployment; DROP TABLE meta;"
                "DROP TABLE shadow; DROP TABLE spool; DROP TABLE dead_letter;"
                "DROP TABLE job_update");
    sqlite3_close(db);
    assert_every_read_fails(fx->s);
}

/* Overwrites the pages of every table and index (each fits in its root
 * page here) with bytes that are no b-tree page. */
static void damage_tables(const char *path)
{
    sqlite3 *db = db_open(path);
    int64_t page_size = db_int(db, "PRAGMA page_size");
    char *roots = db_column(db, "SELECT rootpage FROM sqlite_schema WHERE rootpage > 1");
    assert_true(db_int(db, "SELECT COUNT(*) FROM sqlite_schema WHERE rootpage > 1") >= 12);
    sqlite3_close(db); /* the last connection: the log goes into the file */
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t *junk = malloc((size_t)page_size);
    assert_non_null(junk);
    memset(junk, 0xff, (size_t)page_size);
    for (char *p = roots; *p;) {
        long page = strtol(p, &p, 10);
        assert_int_equal(pwrite(fd, junk, (size_t)page_size, (off_t)(page - 1) * page_size),
                         page_size);
        if (*p == ',')
            p++;
    }
    close(fd);
    free(junk);
    free(roots);
}

static void test_reads_of_a_damaged_database_fail(void **state)
{
    fx_t *fx = *state;
    open_store(fx);
    two_of_everything(fx->s);
    settle(fx);
    close_store(fx);
    damage_tables(fx->path);
    open_store(fx);
    assert_every_read_fails(fx->s);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_every_kind_of_write_reads_back_after_reopen),
        T(test_updates_and_deletes_read_back_after_reopen),
        T(test_messages_nothing_refers_to_are_dropped_at_load),
        T(test_empty_values_round_trip_as_empty),
        T(test_batch_numbers_and_what_is_pending),
        T(test_batches_commit_in_order_and_each_waiter_fires_once),
        T(test_settled_fires_at_once_for_what_is_already_durable),
        T(test_a_waiter_for_an_older_batch_fires_when_that_batch_commits),
        T(test_deletes_of_queued_entries_and_messages_collapse_into_ranges),
        T(test_a_commit_blocked_by_another_writer_is_retried_until_it_commits),
        T(test_a_batch_a_statement_refuses_is_rolled_back_whole_and_retried),
        T(test_flush_sync_commits_now_and_is_refused_while_a_commit_is_in_flight),
        T(test_flush_sync_during_a_retry_commits_and_ends_the_failing_state),
        T(test_a_write_made_by_a_waiter_during_flush_sync_is_kept),
        T(test_close_commits_what_is_pending),
        T(test_close_while_the_database_is_locked_tells_waiters_the_writes_failed),
        T(test_a_batch_of_many_megabytes_commits_whole),
        T(test_stats_count_batches_writes_and_bytes_on_disk),
        T(test_migration_from_version_0_keys_sessions_by_owner_and_client_id),
        T(test_migration_from_version_1_adds_only_the_spool_retain_flag),
        T(test_a_migration_that_fails_leaves_the_database_as_it_was),
        T(test_open_refuses_a_database_of_another_schema),
        T(test_open_fails_while_another_writer_blocks_the_upgrade),
        T(test_open_refuses_a_file_that_is_not_a_database),
        T(test_open_fails_in_a_directory_that_does_not_exist),
        T(test_spool_summary_and_paged_loads),
        T(test_spool_pages_end_at_the_last_message),
        T(test_dead_letters_leave_the_spool_and_only_the_newest_are_kept),
        T(test_shadows_read_and_list_with_deleted_rows),
        T(test_deployments_keep_their_documents_and_statuses),
        T(test_meta_values),
        T(test_job_updates_load_oldest_first),
        T(test_a_callback_error_stops_the_load_and_is_returned),
        T(test_reads_fail_when_the_tables_are_gone),
        T(test_reads_of_a_damaged_database_fail),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
