/*
 * internal: the function runtime's own types. A function (fn_t) is one
 * entry of the group's "functions" with its queue and statistics; an
 * instance (instance_t) is one running process of it; an invocation
 * (invocation_t) is one event waiting for or being handled by an instance;
 * a connection (fconn_t) is one accepted connection of a function's socket.
 *
 * Files: resources.c (references to the group's resources, models
 * fetched into their cache), spec.c (the group document's function entries, checked on this
 * machine), program.c (whether a program can start, and in its sandbox),
 * launch.c (sedge-sandbox's command line and the function's environment),
 * logfile.c (captured output with rotation), ipc.c (the sockets and their
 * frames), runner.c (instances, queues, invocations, apply), status.c
 * (sedgectl functions), cgroup.c and devices.c (limits, device
 * allow-lists), sharedns.c (namespaces a function's instances share).
 */
#ifndef SEDGE_FUNCTIONS_INTERNAL_H
#define SEDGE_FUNCTIONS_INTERNAL_H

#include "base/histogram.h"
#include "cgroup.h"
#include "functions.h"

#define FRAME_MAX (16u << 20)

typedef enum { LIFECYCLE_ON_DEMAND, LIFECYCLE_LONG_LIVED } lifecycle_t;

typedef enum { RESOURCE_VOLUME, RESOURCE_DEVICE, RESOURCE_MODEL, RESOURCE_SECRET } resource_kind_t;

typedef struct {
    resource_kind_t kind;
    bool device;  /* kind == RESOURCE_DEVICE */
    char *id;     /* a group resource's id; NULL for the inline form */
    char *source; /* the host path (a volume's, resolved; a model's cache directory;
                     a secret's value, sealed unless `sealed` is false; a cloud
                     secret's topic) */
    bool sealed;
    bool cloud; /* a secret whose value comes from the cloud (functions_secret_arrived) */
    char *dest;   /* where the function sees it */
    bool rw;
    bool block; /* devices: a block device, else a character one */
    unsigned major, minor;
} resource_t;

#define SPEC_MAX_GROUPS 16

/* Host files the sandbox adds for a program (sedged's libsedge). */
typedef struct {
    char *paths[4];
    size_t count;
} program_binds_t;

typedef struct {
    char *name;
    char **argv; /* argv[0] resolved: the program's absolute path */
    size_t argc;
    char *code_dir; /* "code", resolved; NULL when none */
    program_binds_t binds;
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
    bool standby; /* on-demand: keep an instance prepared */
    char **env;   /* "K=V" */
    size_t env_count;
    resource_t *resources;
    size_t resource_count;
    uint32_t groups[SPEC_MAX_GROUPS]; /* supplementary groups from resources' owners */
    size_t group_count;
    char *config;   /* JSON text of "config" */
    json_t *source; /* the entry as deployed, to see whether it changed */
} spec_t;

/* What the machine's checks of a spec need to know of the core. */
typedef struct {
    bool allow_root;
    const char *data_dir;        /* never shown to a function */
    const char *sdk_library;     /* sedged's libsedge.so.0, or NULL */
    const char *sdk_library_dir; /* its directory */
} spec_context_t;

/* Is one of the two real paths the other or inside it? */
bool paths_overlap(const char *a, const char *b);

/* Fill a spec from a validated function entry found at JSON path `where`
 * ("functions[2]"); `err` names (by that path) what is wrong with it on
 * this machine: a program that cannot start, a resource that is not
 * there, root not allowed... */
NODISCARD sedge_err spec_parse(json_t *entry, const char *where, const spec_context_t *ctx,
                               spec_t *out, char *err, size_t errlen);

/* connector.c: the function entry a validated connector entry runs as (a
 * new reference; NULL: out of memory), its program `TYPE` in
 * connectors_dir. Its name is "connector:NAME", which is also its
 * endpoint. */
json_t *connector_entry(json_t *connector, const char *connectors_dir);
/* resources.c: the entry with its resource references ({id, access})
 * replaced by the resources they name, in the inline form with their id
 * (a new reference; NULL with `err` when one cannot be). */
json_t *resources_expand(json_t *entry, const group_t *g, const char *cache, char *err,
                         size_t errlen);
/* Where the models are unpacked: DATA_DIR/models. */
void resources_cache_dir(const char *data_dir, char *out, size_t len);
/* Bring the group's models into the cache (a worker thread), then done()
 * on the loop's thread; at once when all are there. */
void resources_prepare(uv_loop_t *loop, const group_t *g, const char *cache,
                       void (*done)(void *ctx, sedge_err err, const char *why), void *ctx);
/* Remove the models the group no longer names. */
void resources_prune(const group_t *g, const char *cache);

/* "function:NAME" for a function, the name itself for a connector. */
void fn_endpoint(const char *name, char *buf, size_t len);
void spec_free(spec_t *s);

/* program.c: can the program start — and in a sandbox, does it see what
 * it needs? */
typedef struct {
    bool sandbox;
    const char *code_dir;        /* real path, or NULL */
    const char *sdk_library;     /* sedged's libsedge.so.0, or NULL */
    const char *sdk_library_dir; /* its directory, for messages */
    program_binds_t *binds;      /* receives the files the sandbox must add */
} program_view_t;

NODISCARD sedge_err program_check(const char *program, const program_view_t *view, char *err,
                                  size_t errlen);
/* Does the sandbox show this host path (system directories, code)? */
bool program_visible(const program_view_t *view, const char *path);
NODISCARD sedge_err program_binds_add(program_binds_t *b, const char *path);
void program_binds_free(program_binds_t *b);

/* A started sedge-sandbox (spawn.c): its pid, a pidfd to watch for its
 * end, and the core's ends of its stdin, stdout and stderr. */
typedef struct {
    int pid, pidfd;
    int stdin_fd, stdout_fd, stderr_fd;
} spawned_t;

/* Namespaces a function's sandboxed instances share (sharedns.c). */
typedef struct {
    int net_fd, ipc_fd; /* -1: none made */
} sharedns_t;

typedef struct invocation {
    struct invocation *next;
    uint64_t id;
    char *topic;
    char *source;
    buf_t payload;
    invoke_done_fn done; /* NULL: asynchronous */
    void *done_ctx;
    uint64_t queued_us; /* monotonic: when it was asked for */
} invocation_t;

typedef struct fconn fconn_t;
typedef struct fn fn_t;

/* What the kernel reported of an instance's function process when it
 * connected (/proc/PID/status): the sandbox's confinement, observed. */
typedef struct {
    bool observed;
    bool no_new_privs, seccomp_filter, no_capabilities, empty_bounding_set;
} confinement_t;

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
    spawned_t process;    /* sedge-sandbox: pid, pidfd */
    uv_poll_t exit_watch; /* its pidfd: readable when it ended */
    uv_pipe_t go;         /* standby: one byte on it starts the function */
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
    confinement_t confinement;
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
    uint64_t queue_bytes;  /* payloads waiting: at most memory_mb */
    char socket_path[108]; /* its own function socket */
    sharedns_t shared_ns;  /* its instances' network and IPC namespaces */
    bool retired;          /* no longer in the group: stopping */
    char state[512];
    /* long-lived restarts */
    uint32_t restart_attempts;
    uv_timer_t restart_timer;
    bool restart_timer_open;
    logfile_t *log;
    uint64_t invocations, errors, timeouts, oom_kills, crashes, refused, publish_refused;
    histogram_t duration; /* of its invocations, from the request to the result */
    uint64_t invalid;           /* payloads refused for not being JSON */
    uint64_t invalid_logged_ms; /* when a refusal was last logged */
    confinement_t confinement;  /* as observed of its last instance */
    bool devices_enforced;      /* its last instance's allow-list is in force */
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
    char *sdk_library;     /* real path of sedged's libsedge.so.0, or NULL */
    char *sdk_library_dir; /* the directory it was found in */
    char *connectors_dir;  /* the connectors' programs */
    char *thing_name;      /* the core's */
    char socket_dir[500];
    struct listener *listeners; /* one socket per function name */
    uv_timer_t hello_timer;     /* closes connections slow to say hello */
    size_t unauthenticated;     /* connections without a hello yet */
    uint64_t refused_peers;
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
    json_t *cloud_secrets; /* id -> the value from the cloud, sealed (resources.c) */
};

/* runner.c */
fn_t *fn_find(struct functions *f, const char *name);
instance_t *instance_by_token(struct functions *f, const char *token);
void instance_connected(instance_t *in, fconn_t *c);
void instance_result(instance_t *in, uint64_t id, bool ok, const char *error, bytes_t payload);
void instance_disconnected(instance_t *in);

/* ipc.c */
NODISCARD sedge_err ipc_start(struct functions *f);
/* The socket of `fn` (made, or kept from a function of the same name),
 * owned by its user; sets fn->socket_path. */
NODISCARD sedge_err ipc_listen_function(struct functions *f, fn_t *fn, char *err, size_t errlen);
/* Close the sockets of functions no longer deployed. */
void ipc_prune(struct functions *f);
void ipc_close(struct functions *f);
/* What a connection holds in the core: its input buffer and unsent output. */
size_t ipc_buffered_bytes(const fconn_t *c);
/* Send an invocation to a connected instance. */
void ipc_send_invoke(fconn_t *c, const invocation_t *inv);
void ipc_close_conn(fconn_t *c);
/* Let the function's process behind `c` be: its instance is gone. */
void ipc_forget_instance(fconn_t *c);

/* launch.c: sedge-sandbox's command line and the function's environment
 * for one instance. */
typedef struct {
    char **argv;
    size_t argc, cap;
    char *kept[64]; /* strings made for argv */
    size_t kept_count;
    buf_t env;      /* written to the sandbox's stdin */
    bool shared_ns; /* the function's namespaces go as fds 3 and 4 */
    bool failed;
} launch_t;

NODISCARD sedge_err launch_build(const fn_t *fn, const instance_t *in, bool standby, launch_t *out);
void launch_free(launch_t *l);
/* The devices an instance may open: the basic ones and its declared ones. */
size_t launch_device_rules(const spec_t *s, device_rule_t *rules, size_t cap);

/* spawn.c: start `program` (sedge-sandbox) with `argv`, an empty
 * environment, its own session, and shared_fds (-1: none) as fds 3 and 4.
 * On failure *error is the errno. */
NODISCARD sedge_err spawn_sandbox(const char *program, char *const argv[], const int shared_fds[2],
                                  spawned_t *out, int *error);
/* Once its pidfd is readable: its exit status or signal (false: not yet). */
bool spawn_reap(const spawned_t *s, int64_t *status, int *term_signal);

/* sharedns.c: new network and IPC namespaces for a function's instances,
 * as O_CLOEXEC descriptors; false (and -1s) without privilege or kernel
 * support. */
NODISCARD bool sharedns_create(sharedns_t *ns);
void sharedns_close(sharedns_t *ns);

/* logfile.c */
logfile_t *logfile_open(const char *dir, const char *name);
/* One line (without its newline). */
void logfile_line(logfile_t *l, int pid, const char *stream, const uint8_t *data, size_t len);
void logfile_close(logfile_t *l);
const char *logfile_path(const logfile_t *l);

/* privilege.c: may sedged sandbox functions and run them as other users
 * (root, or the capabilities the packaged service grants)? */
bool runner_privileged(void);

#endif
