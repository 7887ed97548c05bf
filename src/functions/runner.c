/*
 * runner: functions, their instances and their queues.
 *
 * An invocation waits in its function's FIFO until a connected idle
 * instance takes it. On-demand functions start instances while work waits
 * and fewer than max_instances run, and reap an instance idle for
 * idle_timeout_s; a long-lived function has one instance, started with the
 * deployment and restarted with backoff when it dies. Each invocation has
 * a timer: past timeout_s the instance is killed and the invoker told
 * "timed out". How an instance ended (exit status, signal, the cgroup's
 * OOM kills) becomes the error of the invocation it held, a log line and a
 * counter.
 *
 * Starting an instance costs more than exec: joining its memory cgroup can
 * take the kernel milliseconds, and the sandbox builds namespaces and a
 * root. So an on-demand function keeps one instance on standby — set up to
 * the point of exec and waiting for one byte on its stdin — and an
 * invocation that needs a new instance starts that one, then prepares the
 * next.
 */
#include "internal.h"

#include <errno.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAG "functions"

#define START_TIMEOUT_MS 10000
#define APPLY_TIMEOUT_MS 15000
#define RESTART_MAX_MS 60000

#define STANDBY_FAILURES_MAX 3
#define INVALID_LOG_INTERVAL_MS 10000

static void dispatch(fn_t *fn);
static void instance_stop(instance_t *in, const char *why);

fn_t *fn_find(struct functions *f, const char *name)
{
    for (fn_t *fn = f->fns; fn; fn = fn->next)
        if (!fn->retired && strcmp(fn->spec.name, name) == 0)
            return fn;
    return NULL;
}

instance_t *instance_by_token(struct functions *f, const char *token)
{
    for (fn_t *fn = f->fns; fn; fn = fn->next)
        for (instance_t *in = fn->instances; in; in = in->next)
            if (strcmp(in->token, token) == 0 && in->state != INSTANCE_STOPPING &&
                in->state != INSTANCE_STANDBY)
                return in;
    return NULL;
}

static void invocation_free(invocation_t *inv)
{
    free(inv->topic);
    free(inv->source);
    buf_free(&inv->payload);
    free(inv);
}

static void invocation_end(fn_t *fn, invocation_t *inv, sedge_err err, const char *error,
                           bytes_t result)
{
    fn->invocations++;
    if (err)
        fn->errors++;
    histogram_observe_us(&fn->duration, clock_mono_us() - inv->queued_us);
    if (inv->done)
        inv->done(inv->done_ctx, err, error, result);
    else if (err)
        LOGW("function %s: asynchronous invocation failed: %s", fn->spec.name, error);
    invocation_free(inv);
}

static void queue_push(fn_t *fn, invocation_t *inv)
{
    inv->next = NULL;
    if (fn->queue_tail)
        fn->queue_tail->next = inv;
    else
        fn->queue_head = inv;
    fn->queue_tail = inv;
    fn->queue_len++;
    fn->queue_bytes += inv->payload.len;
}

static invocation_t *queue_pop(fn_t *fn)
{
    invocation_t *inv = fn->queue_head;
    fn->queue_head = inv->next;
    if (!fn->queue_head)
        fn->queue_tail = NULL;
    fn->queue_len--;
    fn->queue_bytes -= inv->payload.len;
    inv->next = NULL;
    return inv;
}

static void apply_timer_closed(uv_handle_t *h)
{
    free(h->data); /* the apply_t the timer belongs to */
}

/* Apply bookkeeping: a long-lived instance connected or failed. */
static void apply_step(struct functions *f, const char *failure)
{
    apply_t *a = f->applying;
    if (!a)
        return;
    if (failure && !a->failure[0])
        snprintf(a->failure, sizeof a->failure, "%s", failure);
    if (a->waiting)
        a->waiting--;
    if (a->waiting && !a->failure[0])
        return;
    f->applying = NULL;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, apply_timer_closed);
    if (a->failure[0])
        a->done(a->token, SEDGE_ERR_INVALID, a->failure);
    else
        a->done(a->token, SEDGE_OK, NULL);
}

/* No instance could be started: what waits for one fails now, with the
 * reason, instead of waiting for one that will not come. */
static void start_failed(fn_t *fn, const char *why)
{
    struct functions *f = fn->owner;
    snprintf(fn->state, sizeof fn->state, "failed to start: %.400s", why);
    char reason[460];
    snprintf(reason, sizeof reason, "failed to start: %.400s", why);
    while (fn->queue_head && fn->spec.lifecycle == LIFECYCLE_ON_DEMAND) {
        invocation_t *inv = queue_pop(fn);
        invocation_end(fn, inv, SEDGE_ERR_FAILED, reason, (bytes_t){0});
    }
    if (fn->spec.lifecycle == LIFECYCLE_LONG_LIVED && f->applying) {
        char failure[512];
        snprintf(failure, sizeof failure, "function %s failed to start: %.400s", fn->spec.name,
                 why);
        apply_step(f, failure);
    }
}

/* Output of an instance, line by line into the function's log. */
static void take_output(instance_t *in, int stream, const uint8_t *data, size_t len)
{
    buf_t *b = &in->partial[stream];
    static const char *const names[] = {"stdout", "stderr"};
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (b->len < 4096 && buf_append(b, &data[i], 1) != SEDGE_OK)
                return;
            continue;
        }
        logfile_line(in->fn->log, in->pid, names[stream], b->data ? b->data : (uint8_t *)"",
                     b->len);
        if (stream == 1 && b->len)
            snprintf(in->last_error_line, sizeof in->last_error_line, "%.*s", (int)b->len,
                     (const char *)b->data);
        b->len = 0;
    }
}

static void output_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char scratch[16384];
    buf->base = scratch;
    buf->len = sizeof scratch;
}

static void on_output(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    instance_t *in = s->data;
    if (n <= 0) {
        if (n < 0)
            uv_read_stop(s);
        return;
    }
    take_output(in, s == (uv_stream_t *)&in->err ? 1 : 0, (const uint8_t *)buf->base, (size_t)n);
}

static void instance_handle_closed(uv_handle_t *h)
{
    instance_t *in = h->data;
    fn_t *fn = in->fn;
    struct functions *f = fn->owner;
    if (--in->open_handles > 0)
        return;
    for (instance_t **pp = &fn->instances; *pp; pp = &(*pp)->next) {
        if (*pp == in) {
            *pp = in->next;
            break;
        }
    }
    fn->instance_count--;
    if (in->process.pidfd >= 0)
        close(in->process.pidfd);
    cgroup_destroy(&in->cgroup);
    if (in->root_dir[0])
        rmdir(in->root_dir); /* left behind when the sandbox was killed */
    buf_free(&in->partial[0]);
    buf_free(&in->partial[1]);
    free(in);
    if (--f->handles == 0 && f->stop_done)
        f->stop_done(f->stop_ctx);
}

static void close_instance_handles(instance_t *in)
{
    uv_handle_t *handles[] = {(uv_handle_t *)&in->go, (uv_handle_t *)&in->out,
                              (uv_handle_t *)&in->err, (uv_handle_t *)&in->timer,
                              (uv_handle_t *)&in->exit_watch};
    size_t count = in->process.pidfd >= 0 ? 5 : 4; /* the watch exists once spawned */
    for (size_t i = 0; i < count; i++)
        if (!uv_is_closing(handles[i]))
            uv_close(handles[i], instance_handle_closed);
}

static void restart_cb(uv_timer_t *t)
{
    fn_t *fn = t->data;
    if (!fn->retired && fn->instance_count == 0 && !fn->owner->stopping)
        dispatch(fn);
}

static void schedule_restart(fn_t *fn)
{
    uint64_t delay = 1000;
    for (uint32_t i = 0; i < fn->restart_attempts && delay < RESTART_MAX_MS; i++)
        delay *= 2;
    if (delay > RESTART_MAX_MS)
        delay = RESTART_MAX_MS;
    fn->restart_attempts++;
    snprintf(fn->state + strlen(fn->state), sizeof fn->state - strlen(fn->state),
             "; restarting in %llu s", (unsigned long long)(delay / 1000));
    if (!fn->restart_timer_open) {
        uv_timer_init(fn->owner->o.loop, &fn->restart_timer);
        fn->restart_timer.data = fn;
        fn->restart_timer_open = true;
        fn->owner->handles++;
    }
    uv_timer_start(&fn->restart_timer, restart_cb, delay, 0);
}

static void instance_exited(instance_t *in, int64_t status, int term_signal)
{
    fn_t *fn = in->fn;
    struct functions *f = fn->owner;
    in->exited = true;
    if (in->state == INSTANCE_STANDBY) {
        /* A spare that never ran: stopped by the core, or its setup failed. */
        if (fn->standby == in)
            fn->standby = NULL;
        if (!in->stop_requested) {
            fn->standby_failures++;
            LOGW("function %s: preparing an instance failed (%s%s)", fn->spec.name,
                 term_signal ? "killed by a signal" : "exited", in->last_error_line[0] ? ": " : "");
        }
        in->state = INSTANCE_STOPPING;
        close_instance_handles(in);
        return;
    }
    bool oom = cgroup_oom_kills(&in->cgroup) > in->oom_before;
    char why[400];
    if (oom)
        snprintf(why, sizeof why, "out of memory (memory_mb %u)", fn->spec.memory_mb);
    else if (in->timed_out)
        snprintf(why, sizeof why, "timed out");
    else if (in->start_timed_out)
        snprintf(why, sizeof why, "%s", in->last_error_line);
    else if (term_signal)
        snprintf(why, sizeof why, "crashed (signal %d)", term_signal);
    else if (status)
        snprintf(why, sizeof why, "exited with status %lld%s%s", (long long)status,
                 in->last_error_line[0] ? ": " : "", in->last_error_line);
    else
        snprintf(why, sizeof why, "exited");
    bool expected = in->stop_requested && !in->timed_out && !oom;
    bool never_started = in->state == INSTANCE_STARTING;
    if (oom)
        fn->oom_kills++;
    else if (term_signal && !expected && !in->timed_out)
        fn->crashes++;
    if (!expected || never_started)
        LOGW("function %s (pid %d): %s", fn->spec.name, in->pid, why);
    if (in->current) {
        invocation_t *inv = in->current;
        in->current = NULL;
        invocation_end(fn, inv, oom ? SEDGE_ERR_NOMEM : SEDGE_ERR_CLOSED,
                       oom ? "out of memory" : why, (bytes_t){0});
    }
    if (in->conn) {
        fconn_t *c = in->conn;
        in->conn = NULL;
        ipc_forget_instance(c);
    }
    in->state = INSTANCE_STOPPING;
    if (never_started) {
        /* Not another one at once: it would fail the same way. */
        start_failed(fn, why);
    } else if (!expected) {
        snprintf(fn->state, sizeof fn->state, "%s", why);
    }
    close_instance_handles(in);
    if (fn->retired || f->stopping)
        return;
    if (fn->spec.lifecycle == LIFECYCLE_LONG_LIVED && !expected) {
        if (!(never_started && f->applying))
            schedule_restart(fn);
        return;
    }
    dispatch(fn);
}

/* The sandbox's pidfd became readable: it ended. */
static void on_exit_ready(uv_poll_t *watch, int status, int events)
{
    (void)status;
    (void)events;
    instance_t *in = watch->data;
    int64_t code;
    int term_signal;
    if (in->exited || !spawn_reap(&in->process, &code, &term_signal))
        return;
    uv_poll_stop(watch);
    instance_exited(in, code, term_signal);
}

static void instance_timer_cb(uv_timer_t *t)
{
    instance_t *in = t->data;
    fn_t *fn = in->fn;
    switch (in->state) {
    case INSTANCE_STARTING:
        snprintf(in->last_error_line, sizeof in->last_error_line,
                 "did not connect to the function socket within %d s", START_TIMEOUT_MS / 1000);
        in->start_timed_out = true;
        kill(-in->pid, SIGKILL);
        break;
    case INSTANCE_BUSY:
        in->timed_out = true;
        fn->timeouts++;
        if (in->current) {
            invocation_t *inv = in->current;
            in->current = NULL;
            invocation_end(fn, inv, SEDGE_ERR_TIMEOUT, "timed out", (bytes_t){0});
        }
        LOGW("function %s (pid %d): invocation timed out after %.1f s; killing it", fn->spec.name,
             in->pid, fn->spec.timeout_ms / 1000.0);
        in->state = INSTANCE_STOPPING;
        kill(-in->pid, SIGKILL);
        break;
    case INSTANCE_READY: instance_stop(in, "idle"); break;
    case INSTANCE_STOPPING:
        kill(-in->pid, SIGKILL); /* it did not stop when asked */
        break;
    case INSTANCE_STANDBY: break; /* no timer runs on standby */
    }
}

/* Ask an instance to end: close its socket (the SDK returns), SIGTERM, and
 * SIGKILL if it is still there in 3 s. */
static void instance_stop(instance_t *in, const char *why)
{
    if (in->exited || in->state == INSTANCE_STOPPING)
        return;
    LOGD("function %s (pid %d): stopping (%s)", in->fn->spec.name, in->pid, why);
    in->state = INSTANCE_STOPPING;
    in->stop_requested = true;
    if (in->conn) {
        fconn_t *c = in->conn;
        in->conn = NULL;
        ipc_forget_instance(c);
    }
    kill(-in->pid, SIGTERM);
    uv_timer_start(&in->timer, instance_timer_cb, 3000, 0);
}

typedef struct {
    uv_write_t req;
    buf_t data;
} control_write_t;

static void control_written(uv_write_t *req, int status)
{
    (void)status; /* a sandbox that is gone no longer reads */
    control_write_t *w = (control_write_t *)req;
    buf_free(&w->data);
    free(w);
}

/* Send bytes to the sandbox's stdin (the environment, then the word to
 * go), in order; takes `data`. */
static bool control_send(instance_t *in, buf_t *data)
{
    control_write_t *w = calloc(1, sizeof *w);
    if (!w) {
        buf_free(data);
        return false;
    }
    w->data = *data;
    *data = (buf_t){0};
    uv_buf_t b = uv_buf_init((char *)w->data.data, (unsigned)w->data.len);
    if (uv_write(&w->req, (uv_stream_t *)&in->go, &b, 1, control_written)) {
        buf_free(&w->data);
        free(w);
        return false;
    }
    return true;
}

/* A new instance's identity and confinement, before its process: its
 * token, its cgroup (limits and devices), the namespaces its function's
 * instances share, and its root directory. NULL on NOMEM. */
static instance_t *instance_prepare(fn_t *fn)
{
    struct functions *f = fn->owner;
    spec_t *s = &fn->spec;
    instance_t *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->fn = fn;
    in->seq = ++f->next_instance;
    uint8_t rnd[16];
    RAND_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(in->token + 2 * i, 3, "%02x", rnd[i]);
    char cg_name[128];
    /* sedged's pid keeps two cores on one machine out of each other's
     * groups. */
    snprintf(cg_name, sizeof cg_name, "%d-%.80s-%llu", (int)getpid(), s->name,
             (unsigned long long)in->seq);
    device_rule_t rules[16];
    size_t rule_count = launch_device_rules(s, rules, ARRAY_LEN(rules));
    if (cgroup_mode() != CGROUP_NONE &&
        cgroup_create(cg_name, (uint64_t)s->memory_mb << 20, s->max_processes, rules, rule_count,
                      &in->cgroup))
        LOGW("function %s: cannot create its cgroup; limits fall back to rlimits", s->name);
    fn->devices_enforced = in->cgroup.devices_enforced;
    if (s->sandbox && fn->shared_ns.ipc_fd < 0 && !sharedns_create(&fn->shared_ns))
        LOGW("function %s: cannot make namespaces for its instances to share; each makes its "
             "own",
             s->name);
    if (s->sandbox) {
        char run_dir[540];
        snprintf(run_dir, sizeof run_dir, "%.500s/run", f->data_dir);
        mkdir(run_dir, 0700);
        snprintf(in->root_dir, sizeof in->root_dir, "%s/root-%llu", run_dir,
                 (unsigned long long)in->seq);
    }
    return in;
}

/* The sandbox could not be run (errno `error`): the instance goes, the
 * invocations waiting for it fail, a long-lived function tries again. */
static void spawn_failed(instance_t *in, bool spawned, bool standby, int error)
{
    fn_t *fn = in->fn;
    struct functions *f = fn->owner;
    char why[600];
    snprintf(why, sizeof why, "cannot run the sandbox %.400s: %s", f->sandbox_program,
             strerror(error));
    LOGE("function %s: %s", fn->spec.name, why);
    in->state = INSTANCE_STOPPING;
    in->stop_requested = true;
    if (spawned) {
        kill(-in->process.pid, SIGKILL); /* its end closes the handles */
    } else {
        in->exited = true;
        close_instance_handles(in);
    }
    if (standby)
        fn->standby_failures = STANDBY_FAILURES_MAX;
    start_failed(fn, why);
    if (fn->spec.lifecycle == LIFECYCLE_LONG_LIVED && !f->applying && !fn->retired)
        schedule_restart(fn); /* the sandbox may come back */
}

static void instance_spawn(fn_t *fn, bool standby)
{
    struct functions *f = fn->owner;
    spec_t *s = &fn->spec;
    instance_t *in = instance_prepare(fn);
    if (!in) {
        start_failed(fn, "out of memory starting an instance");
        return;
    }
    launch_t launch;
    if (launch_build(fn, in, standby, &launch)) {
        cgroup_destroy(&in->cgroup);
        free(in);
        start_failed(fn, "out of memory starting an instance");
        return;
    }
    uv_pipe_init(f->o.loop, &in->go, 0);
    uv_pipe_init(f->o.loop, &in->out, 0);
    uv_pipe_init(f->o.loop, &in->err, 0);
    uv_timer_init(f->o.loop, &in->timer);
    in->go.data = in->out.data = in->err.data = in->timer.data = in->exit_watch.data = in;
    in->process = (spawned_t){0, -1, -1, -1, -1};
    in->open_handles = 4;
    in->state = standby ? INSTANCE_STANDBY : INSTANCE_STARTING;
    in->next = fn->instances;
    fn->instances = in;
    fn->instance_count++;
    f->handles++;
    /* fd 3: --netns-fd 3 (not with the host's network), fd 4: --ipcns-fd 4 */
    int shared[2] = {launch.shared_ns && !s->network ? fn->shared_ns.net_fd : -1,
                     launch.shared_ns ? fn->shared_ns.ipc_fd : -1};
    int error = 0;
    bool spawned =
        spawn_sandbox(f->sandbox_program, launch.argv, shared, &in->process, &error) == SEDGE_OK;
    if (spawned) {
        uv_pipe_open(&in->go, in->process.stdin_fd);
        uv_pipe_open(&in->out, in->process.stdout_fd);
        uv_pipe_open(&in->err, in->process.stderr_fd);
        uv_poll_init(f->o.loop, &in->exit_watch, in->process.pidfd);
        uv_poll_start(&in->exit_watch, UV_READABLE, on_exit_ready);
        in->open_handles = 5;
        /* The sandbox runs with an empty environment: the function's comes
         * on its stdin, read once the sandbox has given up root. */
        if (!control_send(in, &launch.env))
            error = ENOMEM;
    }
    launch_free(&launch);
    if (error) {
        spawn_failed(in, spawned, standby, error);
        return;
    }
    in->pid = in->process.pid;
    in->oom_before = cgroup_oom_kills(&in->cgroup);
    uv_read_start((uv_stream_t *)&in->out, output_alloc, on_output);
    uv_read_start((uv_stream_t *)&in->err, output_alloc, on_output);
    if (standby) {
        fn->standby = in;
        LOGD("function %s: instance pid %d on standby", s->name, in->pid);
        return;
    }
    uv_timer_start(&in->timer, instance_timer_cb, START_TIMEOUT_MS, 0);
    snprintf(fn->state, sizeof fn->state, "starting");
    LOGD("function %s: started instance pid %d", s->name, in->pid);
}

/* Start the function in a standby instance. */
static void instance_launch(instance_t *in)
{
    fn_t *fn = in->fn;
    fn->standby = NULL;
    buf_t go = {0};
    if (buf_append(&go, "g", 1) || !control_send(in, &go)) {
        instance_stop(in, "could not be started");
        return;
    }
    in->state = INSTANCE_STARTING;
    uv_timer_start(&in->timer, instance_timer_cb, START_TIMEOUT_MS, 0);
    LOGD("function %s: started standby instance pid %d", fn->spec.name, in->pid);
}

void instance_connected(instance_t *in, fconn_t *c)
{
    fn_t *fn = in->fn;
    in->conn = c;
    in->state = INSTANCE_READY;
    uv_timer_stop(&in->timer);
    snprintf(fn->state, sizeof fn->state, "running");
    LOGI("function %s: instance pid %d connected", fn->spec.name, in->pid);
    if (fn->spec.lifecycle == LIFECYCLE_LONG_LIVED && fn->owner->applying)
        apply_step(fn->owner, NULL);
    dispatch(fn);
}

void instance_disconnected(instance_t *in)
{
    in->conn = NULL;
    if (in->state != INSTANCE_STOPPING && !in->exited) {
        in->state = INSTANCE_STOPPING;
        uv_timer_start(&in->timer, instance_timer_cb, 3000, 0);
    }
}

static void assign(instance_t *in, invocation_t *inv)
{
    in->current = inv;
    in->state = INSTANCE_BUSY;
    in->invocations++;
    uv_timer_start(&in->timer, instance_timer_cb, in->fn->spec.timeout_ms, 0);
    ipc_send_invoke(in->conn, inv);
}

void instance_result(instance_t *in, uint64_t id, bool ok, const char *error, bytes_t payload)
{
    fn_t *fn = in->fn;
    if (!in->current || in->current->id != id) {
        LOGW("function %s (pid %d): result for an invocation it does not hold", fn->spec.name,
             in->pid);
        return;
    }
    invocation_t *inv = in->current;
    in->current = NULL;
    in->state = INSTANCE_READY;
    if (fn->spec.lifecycle == LIFECYCLE_ON_DEMAND)
        uv_timer_start(&in->timer, instance_timer_cb, fn->spec.idle_timeout_ms, 0);
    else
        uv_timer_stop(&in->timer);
    fn->restart_attempts = 0;
    fn->standby_failures = 0;
    invocation_end(fn, inv, ok ? SEDGE_OK : SEDGE_ERR_FAILED,
                   ok ? NULL : (error ? error : "the function reported an error"), payload);
    dispatch(fn);
}

static void dispatch(fn_t *fn)
{
    if (fn->retired || fn->owner->stopping)
        return;
    size_t starting = 0, live = 0;
    for (instance_t *in = fn->instances; in; in = in->next) {
        if (in->state == INSTANCE_STOPPING || in->state == INSTANCE_STANDBY)
            continue;
        live++;
        if (in->state == INSTANCE_STARTING)
            starting++;
    }
    while (fn->queue_head) {
        instance_t *idle = NULL;
        for (instance_t *in = fn->instances; in && !idle; in = in->next)
            if (in->state == INSTANCE_READY && in->conn)
                idle = in;
        if (!idle)
            break;
        assign(idle, queue_pop(fn));
    }
    /* Start instances for waiting work (or the long-lived one). */
    bool want = fn->spec.lifecycle == LIFECYCLE_LONG_LIVED ? live == 0 : fn->queue_len > starting;
    if (want && live < fn->spec.max_instances &&
        !(fn->restart_timer_open && uv_is_active((uv_handle_t *)&fn->restart_timer))) {
        if (fn->standby)
            instance_launch(fn->standby);
        else
            instance_spawn(fn, false);
    }
    /* A spare for the next start, unless preparing them keeps failing. */
    if (fn->spec.lifecycle == LIFECYCLE_ON_DEMAND && fn->spec.standby && !fn->standby &&
        fn->standby_failures < STANDBY_FAILURES_MAX)
        instance_spawn(fn, true);
}

sedge_err functions_invoke(functions_t *f, const char *name, bytes_t topic, bytes_t payload,
                           bytes_t source, invoke_done_fn done, void *ctx)
{
    if (f->stopping)
        return SEDGE_ERR_CLOSED;
    fn_t *fn = fn_find(f, name);
    if (!fn)
        return SEDGE_ERR_NOT_FOUND;
    if (fn->spec.json_encoding && payload.len) {
        json_error_t jerr;
        json_t *j = json_loadb((const char *)payload.data, payload.len, JSON_DECODE_ANY, &jerr);
        if (!j) {
            fn->errors++;
            fn->invalid++;
            uint64_t now = clock_mono_ms();
            if (fn->invalid == 1 || now - fn->invalid_logged_ms >= INVALID_LOG_INTERVAL_MS) {
                fn->invalid_logged_ms = now;
                LOGW("function %s: payload from %.*s refused: not JSON (line %d, column %d: "
                     "%s), and the function's encoding is json (%llu refused so far; one line per "
                     "%d s at most)",
                     fn->spec.name, (int)source.len, (const char *)source.data, jerr.line, jerr.column, jerr.text,
                     (unsigned long long)fn->invalid, INVALID_LOG_INTERVAL_MS / 1000);
            }
            return SEDGE_ERR_INVALID;
        }
        json_decref(j);
    }
    uint64_t room = (uint64_t)fn->spec.memory_mb << 20;
    bool bytes_full = fn->queue_bytes + payload.len > room && fn->queue_len > 0;
    if (fn->queue_len >= fn->spec.max_queue || bytes_full) {
        fn->refused++;
        if (fn->refused == 1 || fn->refused % 1000 == 0)
            LOGW("function %s: queue full (%s): invocation refused (%llu so far)", fn->spec.name,
                 bytes_full ? "its queued payloads would pass memory_mb" : "max_queue",
                 (unsigned long long)fn->refused);
        return SEDGE_ERR_FULL;
    }
    invocation_t *inv = calloc(1, sizeof *inv);
    if (inv)
        inv->queued_us = clock_mono_us();
    if (!inv || !(inv->topic = bytes_dup_cstr(topic)) || !(inv->source = bytes_dup_cstr(source)) ||
        buf_append(&inv->payload, payload.data, payload.len)) {
        if (inv)
            invocation_free(inv);
        return SEDGE_ERR_NOMEM;
    }
    inv->id = ++f->next_invocation;
    inv->done = done;
    inv->done_ctx = ctx;
    queue_push(fn, inv);
    dispatch(fn);
    return SEDGE_OK;
}

/* Take a function out of service: fail what waits, stop its instances. */
static void retire(fn_t *fn, const char *why)
{
    fn->retired = true;
    while (fn->queue_head)
        invocation_end(fn, queue_pop(fn), SEDGE_ERR_CLOSED, why, (bytes_t){0});
    fn->standby = NULL;
    for (instance_t *in = fn->instances; in; in = in->next)
        instance_stop(in, why);
    if (fn->restart_timer_open)
        uv_timer_stop(&fn->restart_timer);
}

static void fn_free(fn_t *fn)
{
    sharedns_close(&fn->shared_ns);
    spec_free(&fn->spec);
    logfile_close(fn->log);
    free(fn);
}

static void restart_timer_closed(uv_handle_t *h)
{
    fn_t *fn = h->data;
    struct functions *f = fn->owner;
    fn_free(fn);
    if (--f->handles == 0 && f->stop_done)
        f->stop_done(f->stop_ctx);
}

/* Free retired functions whose instances are all gone. */
static void collect_retired(struct functions *f)
{
    for (fn_t **pp = &f->fns; *pp;) {
        fn_t *fn = *pp;
        if (!fn->retired || fn->instances) {
            pp = &fn->next;
            continue;
        }
        *pp = fn->next;
        if (fn->restart_timer_open)
            uv_close((uv_handle_t *)&fn->restart_timer, restart_timer_closed);
        else
            fn_free(fn);
    }
}

static void apply_timeout_cb(uv_timer_t *t)
{
    apply_t *a = t->data;
    struct functions *f = a->owner;
    char failure[256];
    snprintf(failure, sizeof failure,
             "long-lived functions did not connect within %d s (see sedgectl functions)",
             APPLY_TIMEOUT_MS / 1000);
    if (f->applying) {
        f->applying->waiting = 1;
        apply_step(f, failure);
    }
}

static void apply_prepared(functions_t *f, const group_t *g,
                           void (*done)(void *token, sedge_err err, const char *why), void *token)
{
    collect_retired(f);
    char cache[600];
    resources_cache_dir(f->data_dir, cache, sizeof cache);
    /* Functions, then the connectors as the functions they run as. */
    json_t *functions = g ? group_functions(g) : NULL;
    json_t *connectors = g ? group_connectors(g) : NULL;
    size_t nfunctions = json_array_size(functions);
    size_t count = nfunctions + json_array_size(connectors);
    json_t *list = json_array();
    spec_t *specs = calloc(count ? count : 1, sizeof *specs);
    bool *keep = calloc(count ? count : 1, sizeof *keep);
    char err[512] = "";
    for (size_t i = 0; list && i < count; i++) {
        json_t *entry = i < nfunctions ? json_incref(json_array_get(functions, i))
                                       : connector_entry(json_array_get(connectors, i - nfunctions),
                                                         f->connectors_dir);
        json_t *expanded = entry ? resources_expand(entry, g, cache, err, sizeof err) : NULL;
        json_decref(entry);
        if (!expanded && err[0]) {
            json_decref(list);
            free(specs);
            free(keep);
            done(token, SEDGE_ERR_NOT_FOUND, err);
            return;
        }
        if (json_array_append_new(list, expanded) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (!specs || !keep || !list) {
        free(specs);
        free(keep);
        json_decref(list);
        done(token, SEDGE_ERR_NOMEM, "out of memory");
        return;
    }
    /* Check everything first; change nothing if any function is wrong. */
    size_t parsed = 0;
    sedge_err rc = SEDGE_OK;
    if (count && access(f->sandbox_program, X_OK) != 0) {
        snprintf(err, sizeof err,
                 "functions: cannot run the function sandbox %.300s: %s (it is built beside "
                 "sedged; SEDGE_SANDBOX names another)",
                 f->sandbox_program, strerror(errno));
        rc = SEDGE_ERR_NOT_FOUND;
    }
    spec_context_t ctx = {f->o.allow_root, f->data_dir, f->sdk_library, f->sdk_library_dir};
    for (; parsed < count && !rc; parsed++) {
        char where[48];
        if (parsed < nfunctions)
            snprintf(where, sizeof where, "functions[%zu]", parsed);
        else
            snprintf(where, sizeof where, "connectors[%zu]", parsed - nfunctions);
        rc = spec_parse(json_array_get(list, parsed), where, &ctx, &specs[parsed], err, sizeof err);
    }
    json_decref(list);
    if (rc) {
        for (size_t i = 0; i < parsed; i++)
            spec_free(&specs[i]);
        free(specs);
        free(keep);
        done(token, rc, err);
        return;
    }
    /* Unchanged functions keep running (and their state); others go. */
    for (fn_t *fn = f->fns; fn; fn = fn->next) {
        if (fn->retired)
            continue;
        bool unchanged = false;
        for (size_t i = 0; i < count && !unchanged; i++)
            if (!keep[i] && json_equal(fn->spec.source, specs[i].source))
                unchanged = keep[i] = true;
        if (!unchanged)
            retire(fn, "the function was removed or changed by a deployment");
    }
    apply_t *a = calloc(1, sizeof *a);
    if (!a) {
        for (size_t i = 0; i < count; i++)
            spec_free(&specs[i]);
        free(specs);
        free(keep);
        done(token, SEDGE_ERR_NOMEM, "out of memory");
        return;
    }
    a->owner = f;
    a->done = done;
    a->token = token;
    uv_timer_init(f->o.loop, &a->timer);
    a->timer.data = a;
    f->applying = a;
    a->waiting = 1; /* held until every function is set up */
    char failure[512] = "";
    for (size_t i = 0; i < count; i++) {
        if (keep[i]) {
            spec_free(&specs[i]);
            continue;
        }
        fn_t *fn = calloc(1, sizeof *fn);
        if (!fn) {
            spec_free(&specs[i]);
            continue;
        }
        fn->owner = f;
        fn->spec = specs[i];
        fn->shared_ns = (sharedns_t){-1, -1};
        fn->log = logfile_open(f->data_dir, fn->spec.name);
        snprintf(fn->state, sizeof fn->state, "idle");
        fn->next = f->fns;
        f->fns = fn;
        if (ipc_listen_function(f, fn, err, sizeof err)) {
            snprintf(fn->state, sizeof fn->state, "%s", err);
            if (!failure[0])
                snprintf(failure, sizeof failure, "%s", err);
            continue;
        }
        if (fn->spec.lifecycle == LIFECYCLE_LONG_LIVED)
            a->waiting++;
        dispatch(fn); /* starts a long-lived one; prepares an on-demand one's spare */
    }
    free(specs);
    free(keep);
    ipc_prune(f);
    uv_timer_start(&a->timer, apply_timeout_cb, APPLY_TIMEOUT_MS, 0);
    apply_step(f, failure[0] ? failure : NULL);
}

/* A deployment waiting for its models, then applied. */
typedef struct {
    functions_t *f;
    const group_t *g;
    void (*done)(void *token, sedge_err err, const char *why);
    void *token;
} pending_apply_t;

static void applied_prune(void *ctx, sedge_err err, const char *why)
{
    pending_apply_t *p = ctx;
    if (!err) {
        char cache[600];
        resources_cache_dir(p->f->data_dir, cache, sizeof cache);
        resources_prune(p->g, cache);
    }
    p->done(p->token, err, why);
    free(p);
}

static void models_ready(void *ctx, sedge_err err, const char *why)
{
    pending_apply_t *p = ctx;
    if (err) {
        p->done(p->token, err, why);
        free(p);
        return;
    }
    apply_prepared(p->f, p->g, applied_prune, p);
}

void functions_apply(functions_t *f, const group_t *g,
                     void (*done)(void *token, sedge_err err, const char *why), void *token)
{
    pending_apply_t *p = malloc(sizeof *p);
    if (!p) {
        done(token, SEDGE_ERR_NOMEM, "out of memory");
        return;
    }
    *p = (pending_apply_t){f, g, done, token};
    char cache[600];
    resources_cache_dir(f->data_dir, cache, sizeof cache);
    resources_prepare(f->o.loop, g, cache, models_ready, p);
}

sedge_err functions_start(const functions_options_t *opts, functions_t **out)
{
    functions_t *f = calloc(1, sizeof *f);
    if (!f)
        return SEDGE_ERR_NOMEM;
    f->o = *opts;
    f->data_dir = strdup(opts->data_dir);
    f->sandbox_program = strdup(opts->sandbox_program);
    f->python_sdk_dir = opts->python_sdk_dir ? strdup(opts->python_sdk_dir) : NULL;
    f->sdk_library = opts->sdk_library ? realpath(opts->sdk_library, NULL) : NULL;
    f->connectors_dir = strdup(opts->connectors_dir ? opts->connectors_dir : "");
    f->thing_name = strdup(opts->thing_name ? opts->thing_name : "");
    f->o.connectors_dir = f->o.thing_name = NULL; /* the copies above are the ones kept */
    f->is_root = runner_privileged();
    if (!f->data_dir || !f->sandbox_program || !f->connectors_dir || !f->thing_name) {
        functions_free(f);
        return SEDGE_ERR_NOMEM;
    }
    if (f->sdk_library) {
        f->sdk_library_dir = strdup(opts->sdk_library);
        char *slash = f->sdk_library_dir ? strrchr(f->sdk_library_dir, '/') : NULL;
        if (slash)
            *slash = '\0';
    }
    /* What the sandbox shows of the core's own files never includes its
     * data directory. */
    if (f->python_sdk_dir && paths_overlap(f->python_sdk_dir, f->data_dir)) {
        LOGW("the Python SDK %s overlaps the data directory: not shown to functions",
             f->python_sdk_dir);
        free(f->python_sdk_dir);
        f->python_sdk_dir = NULL;
    }
    cgroup_mode_t m = cgroup_detect();
    LOGI("function limits enforced by %s, devices by %s%s", cgroup_mode_name(m),
         cgroup_devices_name(),
         f->is_root ? "" : " (sedged is neither root nor given the sandbox's capabilities: no sandbox, "
                                "functions run as sedged's user)");
    sedge_err err = ipc_start(f);
    if (err) {
        functions_free(f);
        return err;
    }
    *out = f;
    return SEDGE_OK;
}

void functions_stop(functions_t *f, void (*done)(void *ctx), void *ctx)
{
    f->stopping = true;
    f->stop_done = done;
    f->stop_ctx = ctx;
    if (f->applying) {
        f->applying->waiting = 1;
        apply_step(f, "the core is stopping");
    }
    for (fn_t *fn = f->fns; fn; fn = fn->next)
        retire(fn, "the core is stopping");
    for (fn_t *fn = f->fns; fn; fn = fn->next)
        if (fn->restart_timer_open) {
            fn->restart_timer_open = false;
            uv_close((uv_handle_t *)&fn->restart_timer, (uv_close_cb)NULL);
            f->handles--;
        }
    ipc_close(f);
}

void functions_free(functions_t *f)
{
    if (!f)
        return;
    while (f->fns) {
        fn_t *fn = f->fns;
        f->fns = fn->next;
        fn_free(fn);
    }
    free(f->data_dir);
    free(f->sandbox_program);
    free(f->python_sdk_dir);
    free(f->sdk_library);
    free(f->sdk_library_dir);
    free(f->connectors_dir);
    free(f->thing_name);
    json_decref(f->cloud_secrets);
    free(f);
}

sedge_err functions_log_path(functions_t *f, const char *name, char *path, size_t len)
{
    for (fn_t *fn = f->fns; fn; fn = fn->next) {
        if (strcmp(fn->spec.name, name) == 0 && fn->log) {
            snprintf(path, len, "%s", logfile_path(fn->log));
            return SEDGE_OK;
        }
    }
    /* A function no longer deployed may still have its log. */
    snprintf(path, len, "%.400s/logs/%.64s.log", f->data_dir, name);
    return access(path, R_OK) == 0 ? SEDGE_OK : SEDGE_ERR_NOT_FOUND;
}
