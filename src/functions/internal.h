/*
 * internal: the function runtime's own types. A function (fn_t) is one
 * entry of the group's "functions" with its queue and statistics; an
 * instance (instance_t) is one running process of it; an invocation
 * (invocation_t) is one event waiting for or being handled by an instance;
 * a connection (fconn_t) is one accepted socket of the function socket.
 *
 * Files: spec.c (the group document's function entries), logfile.c
 * (captured output with rotation), ipc.c (the socket and its frames),
 * runner.c (instances, queues, invocations, apply), cgroup.c.
 */
#ifndef SEDGE_FUNCTIONS_INTERNAL_H
#define SEDGE_FUNCTIONS_INTERNAL_H

#include "cgroup.h"
#include "functions.h"

#define FRAME_MAX (16u << 20)

typedef enum { LIFECYCLE_ON_DEMAND, LIFECYCLE_LONG_LIVED } lifecycle_t;

typedef struct {
    char *type; /* device or volume */
    char *source, *dest;
    bool rw;
} resource_t;

typedef struct {
    char *name;
    char **argv;
    size_t argc;
    lifecycle_t lifecycle;
    uint64_t timeout_ms;
    uint32_t memory_mb;
    uint32_t max_instances;
    uint32_t max_queue;
    uint32_t max_processes;
    uint64_t idle_timeout_ms;
    bool has_user;
    uint32_t uid, gid;
    bool sandbox;
    bool network;
    bool sysfs;
    bool json_encoding;
    char **env; /* "K=V" */
    size_t env_count;
    resource_t *resources;
    size_t resource_count;
    char *config;   /* JSON text of "config" */
    json_t *source; /* the entry as deployed, to see whether it changed */
} spec_t;

/* Fill a spec from a validated group entry; `err` names what is wrong
 * with it at run time (an unreadable program, root not allowed...). */
NODISCARD sedge_err spec_parse(json_t *entry, bool allow_root, spec_t *out, char *err,
                               size_t errlen);
void spec_free(spec_t *s);

typedef struct invocation {
    struct invocation *next;
    uint64_t id;
    char *topic;
    char *source;
    buf_t payload;
    invoke_done_fn done; /* NULL: asynchronous */
    void *done_ctx;
} invocation_t;

typedef struct fconn fconn_t;
typedef struct fn fn_t;

typedef enum {
    INSTANCE_STANDBY,  /* set up (cgroup, sandbox) and waiting to be used */
    INSTANCE_STARTING, /* spawned, not connected yet */
    INSTANCE_READY,    /* connected, idle */
    INSTANCE_BUSY,     /* handling `current` */
    INSTANCE_STOPPING, /* killed or told to stop, waiting for its exit */
} instance_state_t;

typedef struct instance {
    struct instance *next;
    fn_t *fn;
    uv_process_t proc;
    uv_pipe_t go; /* standby: one byte on it starts the function */
    uv_pipe_t out, err;
    uv_timer_t timer; /* start, invocation timeout, idle */
    int open_handles;
    int pid;
    uint64_t seq;
    char token[33];
    instance_state_t state;
    fconn_t *conn;
    invocation_t *current;
    cgroup_t cgroup;
    uint64_t oom_before;
    bool timed_out;
    bool start_timed_out;
    bool stop_requested; /* the core ended it: its exit is no failure */
    bool exited;
    int64_t exit_status;
    int term_signal;
    uint64_t invocations;
    char root_dir[560];        /* the sandbox's root mount point, removed at the end */
    char last_error_line[256]; /* from stderr, to explain a failed start */
    buf_t partial[2];          /* an unfinished line of stdout, of stderr */
} instance_t;

typedef struct logfile logfile_t;

struct fn {
    struct fn *next;
    struct functions *owner;
    spec_t spec;
    instance_t *instances;
    size_t instance_count;
    instance_t *standby;       /* an instance set up ahead of need (on-demand) */
    uint32_t standby_failures; /* in a row: past a few, no more are prepared */
    invocation_t *queue_head, *queue_tail;
    size_t queue_len;
    bool retired; /* no longer in the group: stopping */
    char state[512];
    /* long-lived restarts */
    uint32_t restart_attempts;
    uv_timer_t restart_timer;
    bool restart_timer_open;
    logfile_t *log;
    uint64_t invocations, errors, timeouts, oom_kills, crashes, refused, publish_refused;
};

typedef struct {
    struct functions *owner;
    void (*done)(void *token, sedge_err err, const char *why);
    void *token;
    size_t waiting; /* long-lived functions not connected yet */
    char failure[512];
    uv_timer_t timer;
} apply_t;

struct functions {
    functions_options_t o;
    char *data_dir;
    char *sandbox_program;
    char *python_sdk_dir;
    char socket_path[512];
    uv_pipe_t server;
    fn_t *fns;
    fconn_t *conns;
    uint64_t next_invocation;
    uint64_t next_instance;
    apply_t *applying;
    int handles;
    bool stopping;
    void (*stop_done)(void *);
    void *stop_ctx;
    bool is_root;
};

/* runner.c */
fn_t *fn_find(struct functions *f, const char *name);
instance_t *instance_by_token(struct functions *f, const char *token);
void instance_connected(instance_t *in, fconn_t *c);
void instance_result(instance_t *in, uint64_t id, bool ok, const char *error, bytes_t payload);
void instance_disconnected(instance_t *in);

/* ipc.c */
NODISCARD sedge_err ipc_listen(struct functions *f);
void ipc_close(struct functions *f);
/* Send an invocation to a connected instance. */
void ipc_send_invoke(fconn_t *c, const invocation_t *inv);
void ipc_close_conn(fconn_t *c);
/* Let the function's process behind `c` be: its instance is gone. */
void ipc_forget_instance(fconn_t *c);

/* logfile.c */
logfile_t *logfile_open(const char *dir, const char *name);
/* One line (without its newline). */
void logfile_line(logfile_t *l, int pid, const char *stream, const uint8_t *data, size_t len);
void logfile_close(logfile_t *l);
const char *logfile_path(const logfile_t *l);

#endif
