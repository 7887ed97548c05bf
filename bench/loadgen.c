/*
 * loadgen: the load generator of Sedge's benchmarks. It drives an MQTT
 * broker through libmosquitto — a client written independently of Sedge's
 * codec, so a misreading of the protocol shared by broker and client cannot
 * hide itself — and prints one line of key=value pairs per run, for
 * bench/run.sh and for people.
 *
 * One process holds every connection. Each worker thread runs an epoll
 * loop over its own clients with libmosquitto's non-blocking calls
 * (mosquitto_loop_read/write/misc); subscribers and publishers live on
 * different workers so that neither starves the other, and the main thread
 * only starts the run and watches the counters the workers publish through
 * atomics. Every payload carries a run id, its publisher's number, a
 * sequence number and the CLOCK_MONOTONIC time it was sent, so the
 * subscribers count losses, duplicates and reordering and measure latency
 * without any help from the broker.
 *
 * Flow control: QoS 1/2 publishers keep at most --inflight messages
 * unacknowledged; a QoS 0 publisher writes only when its socket takes more;
 * and all publishers together stay at most --window messages ahead of the
 * slowest subscriber, so a throughput run measures what the broker
 * sustains rather than how much it can buffer.
 *
 * Besides plain publish/subscribe it speaks to the device shadow service
 * (each client a thing that publishes shadow requests and counts the
 * replies, matched to their requests by clientToken), and counts what
 * arrives on a filter, possibly over mutual TLS and in a persistent
 * session, for the cloud side of the spool benchmark.
 */
#define _GNU_SOURCE
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "percentile.h"

extern char **environ;

#define NS_PER_S 1000000000ull
#define BURST 64         /* messages a publisher sends before the loop looks at sockets */
#define READ_BUDGET 1024 /* packets read from one socket per wake-up */
#define MAX_EVENTS 256

typedef enum {
    MODE_FAN_IN,
    MODE_FAN_OUT,
    MODE_LATENCY,
    MODE_SHADOW_UPDATE,
    MODE_SHADOW_GET,
    MODE_COUNT,
    MODE_IDLE,
    MODE_STARTUP,
    MODE_WAIT_PORT,
    MODE_FREE_PORT
} run_mode_t;
static const char *const mode_names[] = {"fan-in",     "fan-out",  "latency", "shadow-update",
                                         "shadow-get", "count",    "idle",    "startup",
                                         "wait-port",  "free-port"};

typedef struct {
    run_mode_t mode;
    const char *host;
    int port;
    int qos;
    int version; /* MQTT_PROTOCOL_V311 or MQTT_PROTOCOL_V5 */
    size_t payload;
    int publishers;
    int subscribers;
    uint64_t count;
    double duration_s;
    double rate;
    double warmup_s;
    bool persistent;
    int inflight;
    uint64_t window;
    int threads;
    double timeout_s;
    double drain_s;
    int keepalive;
    int connections;
    double hold_s;
    int connect_concurrency;
    const char *label;
    char **command;        /* startup: the broker's argv */
    const char *id_prefix; /* client ids PREFIX + p|s|i + index, instead of lg-RUNID- */
    const char *topic_prefix;
    const char *filter; /* count: what to subscribe to */
    uint32_t run_id;    /* given: publishers stamp it, a counter expects it */
    bool run_id_set;
    bool register_only;                      /* count: subscribe and leave (a persistent session) */
    const char *cafile, *certfile, *keyfile; /* mutual TLS */
} options_t;

/* The first bytes of every payload. Sender and receiver are one process,
 * so the layout needs no byte order. */
typedef struct {
    uint32_t run_id;
    uint32_t publisher;
    uint64_t seq;
    uint64_t sent_ns;
} stamp_t;

/* Which sequence numbers of one publisher a subscriber has seen. */
typedef struct {
    uint64_t *bits;
    uint64_t cap;  /* bits */
    uint64_t next; /* highest seen + 1 */
} seen_t;

typedef enum { ROLE_PUB, ROLE_SUB, ROLE_IDLE } role_t;

typedef struct worker worker_t;

typedef struct {
    struct mosquitto *m;
    worker_t *w;
    role_t role;
    int index;
    bool watching_out; /* EPOLLOUT registered */
    bool dead;
    char id[64];

    /* publisher */
    char topic[192];
    uint64_t quota; /* messages to send; UINT64_MAX until told to stop */
    uint64_t sent, acked, refused;
    uint32_t inflight;
    uint64_t next_due_ns, interval_ns; /* fixed rate */
    uint64_t lag_max_ns;
    bool finished;
    _Atomic uint64_t a_sent, a_acked;
    _Atomic bool a_finished;

    uint64_t last_ack_ns;
    char reply_topics[2][192]; /* shadow: accepted, rejected */

    /* subscriber (and a shadow thing, which receives its replies) */
    seen_t *seen;      /* one per publisher */
    uint64_t rejected; /* shadow: replies on .../rejected */
    uint64_t received, unique, dups, reordered, stale, malformed;
    uint64_t first_ns, last_ns;
    int granted_qos;
    uint64_t *lat;
    size_t lat_n, lat_cap;
    _Atomic uint64_t a_received, a_unique;
} client_t;

struct worker {
    int ep;
    int tfd;  /* paces fixed-rate publishers */
    int wake; /* eventfd: the window has opened again */
    pthread_t thread;
    client_t **clients;
    size_t n;
    client_t **pubs;
    size_t npubs;
    size_t nsubs;
    size_t next_connect; /* idle mode: clients are connected a few at a time */
    int pending;         /* connected, CONNACK not yet received */
    int max_pending;
    uint8_t *payload;
    double cpu_go_s, cpu_end_s; /* the thread's CPU time when the run started and ended */
};

static options_t opt = {
    .mode = MODE_FAN_IN,
    .host = "127.0.0.1",
    .port = 1883,
    .qos = 0,
    .version = MQTT_PROTOCOL_V311,
    .payload = 64,
    .publishers = -1,
    .subscribers = -1,
    .count = 0,
    .inflight = 32,
    .window = 10000,
    .threads = 2,
    .timeout_s = 120,
    .drain_s = 3,
    .keepalive = 60,
    .connections = 1000,
    .connect_concurrency = 100,
    .label = NULL,
    .topic_prefix = "bench",
};

static uint32_t run_id;
static client_t *pubs, *subs, *idles;
static int npubs, nsubs, nidles;
static int nsources; /* publishers whose stamps subscribers expect */
static worker_t *workers;
static char sub_filter[256];

static atomic_bool g_go, g_stop, g_stop_publishing;
static atomic_bool g_window_closed; /* publishers wait for the subscribers */
static atomic_int g_ready;          /* clients connected (and subscribed) */
static atomic_int g_lost;           /* idle connections lost while held */
static atomic_bool g_failed;
static pthread_mutex_t g_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_error[256];
static uint64_t g_start_ns, g_measure_from_ns; /* written before g_go is set */
static volatile sig_atomic_t g_signalled;

/* libmosquitto opens a socketpair per client only to wake its own select()
 * loop in mosquitto_loop_start(); this program drives sockets with epoll
 * and never needs it. Refusing it saves two descriptors per connection —
 * what lets 10,000 connections fit under a 20,000 descriptor limit — and
 * libmosquitto takes the refusal as a mere warning. */
static bool refuse_socketpair = true;

int socketpair(int domain, int type, int protocol, int fds[2])
{
    if (refuse_socketpair) {
        errno = EMFILE;
        return -1;
    }
    return (int)syscall(SYS_socketpair, domain, type, protocol, fds);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double thread_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !g_signalled)
        ;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool resolve_port(void);
static uint64_t wait_port(uint64_t t0, pid_t child, int *child_status, bool *child_exited);

/* Record the first failure of the run; the main thread ends it. */
static void fail(const char *fmt, ...)
{
    pthread_mutex_lock(&g_error_lock);
    if (!atomic_load(&g_failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_error, sizeof g_error, fmt, ap);
        va_end(ap);
        atomic_store(&g_failed, true);
    }
    pthread_mutex_unlock(&g_error_lock);
}

static bool shadow_mode(void)
{
    return opt.mode == MODE_SHADOW_UPDATE || opt.mode == MODE_SHADOW_GET;
}

static const char *role_name(role_t r)
{
    return r == ROLE_PUB ? "publisher" : r == ROLE_SUB ? "subscriber" : "idle client";
}

/* ---- the subscriber's bookkeeping ---- */

/* Returns 1 when seq is new, 0 for a duplicate, -1 without memory. */
static int seen_mark(seen_t *s, uint64_t seq)
{
    if (seq >= s->cap) {
        uint64_t cap = s->cap ? s->cap : 1u << 16;
        while (cap <= seq)
            cap *= 2;
        uint64_t *bits = realloc(s->bits, cap / 8);
        if (!bits)
            return -1;
        memset((uint8_t *)bits + s->cap / 8, 0, (cap - s->cap) / 8);
        s->bits = bits;
        s->cap = cap;
    }
    uint64_t bit = 1ull << (seq % 64);
    if (s->bits[seq / 64] & bit)
        return 0;
    s->bits[seq / 64] |= bit;
    return 1;
}

/* Count one arrival of message `seq` from the source `s` tracks: new (and
 * whether out of order) or a duplicate. 1 if new, 0 if a duplicate, -1 when
 * out of memory (the run has failed). */
static int count_arrival(client_t *c, seen_t *s, uint64_t seq)
{
    int r = seen_mark(s, seq);
    if (r < 0) {
        fail("out of memory");
        return -1;
    }
    if (r == 0) {
        c->dups++;
        return 0;
    }
    c->unique++;
    if (seq + 1 < s->next)
        c->reordered++;
    else
        s->next = seq + 1;
    return 1;
}

static void record_latency(client_t *c, uint64_t ns)
{
    if (c->lat_n == c->lat_cap) {
        size_t cap = c->lat_cap ? c->lat_cap * 2 : 1u << 16;
        uint64_t *lat = realloc(c->lat, cap * sizeof *lat);
        if (!lat)
            return;
        c->lat = lat;
        c->lat_cap = cap;
    }
    c->lat[c->lat_n++] = ns;
}

/* ---- libmosquitto callbacks; they run inside mosquitto_loop_* on the
 * client's own worker ---- */

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags,
                       const mosquitto_property *props)
{
    (void)flags;
    (void)props;
    client_t *c = ud;
    if (rc != 0) {
        fail("%s %s: the broker refused the connection: %s", role_name(c->role), c->id,
             opt.version == MQTT_PROTOCOL_V5 ? mosquitto_reason_string(rc)
                                             : mosquitto_connack_string(rc));
        return;
    }
    if (c->role == ROLE_SUB) {
        int rc2 = mosquitto_subscribe(m, NULL, sub_filter, opt.qos);
        if (rc2 != MOSQ_ERR_SUCCESS)
            fail("subscriber %s: cannot subscribe: %s", c->id, mosquitto_strerror(rc2));
        return;
    }
    if (c->role == ROLE_PUB && shadow_mode()) {
        char *topics[2] = {c->reply_topics[0], c->reply_topics[1]};
        int rc2 = mosquitto_subscribe_multiple(m, NULL, 2, topics, opt.qos, 0, NULL);
        if (rc2 != MOSQ_ERR_SUCCESS)
            fail("thing %s: cannot subscribe to its shadow replies: %s", c->id,
                 mosquitto_strerror(rc2));
        return;
    }
    if (c->role == ROLE_IDLE)
        c->w->pending--;
    atomic_fetch_add(&g_ready, 1);
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int qos_count,
                         const int *granted_qos, const mosquitto_property *props)
{
    (void)m;
    (void)mid;
    (void)props;
    client_t *c = ud;
    for (int i = 0; i < qos_count || i < 1; i++)
        if (qos_count < 1 || granted_qos[i] > 2) {
            fail("%s %s: the broker refused the subscription to %s (code %d)", role_name(c->role),
                 c->id, c->role == ROLE_SUB ? sub_filter : c->reply_topics[i],
                 qos_count < 1 ? -1 : granted_qos[i]);
            return;
        }
    c->granted_qos = granted_qos[0];
    atomic_fetch_add(&g_ready, 1);
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int reason_code,
                       const mosquitto_property *props)
{
    (void)m;
    (void)mid;
    (void)props;
    client_t *c = ud;
    if (reason_code >= 0x80)
        c->refused++;
    if (opt.qos > 0 && c->inflight > 0)
        c->inflight--;
    c->acked++;
    c->last_ack_ns = now_ns();
    atomic_store_explicit(&c->a_acked, c->acked, memory_order_relaxed);
}

/* A shadow reply to one of this thing's requests: its clientToken is
 * "RUN-SEQ-SENTNS". The request is answered whether accepted or rejected. */
static void shadow_reply(client_t *c, const struct mosquitto_message *msg, uint64_t now)
{
    static const char key[] = "\"clientToken\":\"";
    const char *p = msg->payloadlen > 0
                        ? memmem(msg->payload, (size_t)msg->payloadlen, key, sizeof key - 1)
                        : NULL;
    char token[64];
    uint32_t run;
    unsigned long long seq, sent;
    if (!p) {
        c->malformed++;
        return;
    }
    p += sizeof key - 1;
    size_t left = (size_t)((const char *)msg->payload + msg->payloadlen - p), n = 0;
    while (n < left && n < sizeof token - 1 && p[n] != '"')
        n++;
    memcpy(token, p, n);
    token[n] = '\0';
    if (sscanf(token, "%" SCNx32 "-%llu-%llu", &run, &seq, &sent) != 3) {
        c->malformed++;
        return;
    }
    if (run != run_id) {
        c->stale++;
        return;
    }
    c->received++;
    if (!c->first_ns)
        c->first_ns = now;
    c->last_ns = now;
    size_t tl = strlen(msg->topic);
    if (tl >= 9 && strcmp(msg->topic + tl - 9, "/rejected") == 0)
        c->rejected++;
    int r = count_arrival(c, &c->seen[0], seq);
    if (r < 0)
        return;
    if (r > 0 && sent >= g_measure_from_ns)
        record_latency(c, now - sent);
    atomic_store_explicit(&c->a_received, c->received, memory_order_relaxed);
    atomic_store_explicit(&c->a_unique, c->unique, memory_order_relaxed);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    (void)m;
    (void)props;
    client_t *c = ud;
    uint64_t now = now_ns();
    if (c->role == ROLE_PUB) {
        shadow_reply(c, msg, now);
        return;
    }
    stamp_t st;
    if (msg->payloadlen < (int)sizeof st) {
        c->malformed++;
        return;
    }
    memcpy(&st, msg->payload, sizeof st);
    if (st.run_id != run_id) {
        c->stale++; /* from an earlier run, kept by a persistent session */
        return;
    }
    if (st.publisher >= (uint32_t)nsources || (size_t)msg->payloadlen != opt.payload) {
        c->malformed++;
        return;
    }
    c->received++;
    if (!c->first_ns)
        c->first_ns = now;
    c->last_ns = now;
    if (count_arrival(c, &c->seen[st.publisher], st.seq) < 0)
        return;
    if (opt.rate > 0 && st.sent_ns >= g_measure_from_ns)
        record_latency(c, now - st.sent_ns);
    atomic_store_explicit(&c->a_received, c->received, memory_order_relaxed);
    atomic_store_explicit(&c->a_unique, c->unique, memory_order_relaxed);
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc, const mosquitto_property *props)
{
    (void)m;
    (void)props;
    client_t *c = ud;
    if (c->dead)
        return;
    c->dead = true;
    if (atomic_load(&g_stop))
        return;
    if (c->role == ROLE_IDLE) {
        atomic_fetch_add(&g_lost, 1);
        return;
    }
    fail("%s %s lost its connection (%s)", role_name(c->role), c->id,
         rc == MOSQ_ERR_CONN_LOST ? "closed by the broker"
         : rc > 0 && rc < 0x80    ? mosquitto_strerror(rc)
                                  : mosquitto_reason_string(rc));
}

/* ---- a worker's epoll loop ---- */

static void watch_output(client_t *c)
{
    if (c->dead)
        return;
    bool want = mosquitto_want_write(c->m);
    if (want == c->watching_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, mosquitto_socket(c->m), &ev) == 0)
        c->watching_out = want;
}

static void client_io(client_t *c, uint32_t events)
{
    if (c->dead)
        return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (int i = 0; i < READ_BUDGET; i++) {
            errno = 0;
            int rc = mosquitto_loop_read(c->m, 1);
            if (rc != MOSQ_ERR_SUCCESS || c->dead) {
                /* libmosquitto closed the socket and called on_disconnect */
                on_disconnect(c->m, c, rc, NULL);
                return;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
        }
    }
    if ((events & EPOLLOUT) || mosquitto_want_write(c->m)) {
        int rc = mosquitto_loop_write(c->m, 1);
        if (rc != MOSQ_ERR_SUCCESS || c->dead) {
            on_disconnect(c->m, c, rc, NULL);
            return;
        }
    }
    watch_output(c);
}

static bool client_connect(client_t *c)
{
    bool clean = !(c->role == ROLE_SUB && opt.persistent);
    c->m = mosquitto_new(c->id, clean, c);
    if (!c->m) {
        fail("cannot create a libmosquitto client: out of memory");
        return false;
    }
    mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, opt.version);
    mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    if (c->role == ROLE_PUB)
        mosquitto_max_inflight_messages_set(c->m, (unsigned)opt.inflight);
    if (c->role == ROLE_SUB && opt.version == MQTT_PROTOCOL_V5)
        mosquitto_int_option(c->m, MOSQ_OPT_RECEIVE_MAXIMUM, opt.inflight);
    if (opt.cafile) {
        int rc = mosquitto_tls_set(c->m, opt.cafile, NULL, opt.certfile, opt.keyfile, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            fail("%s %s: cannot use the TLS files: %s", role_name(c->role), c->id,
                 mosquitto_strerror(rc));
            return false;
        }
    }
    mosquitto_connect_v5_callback_set(c->m, on_connect);
    mosquitto_subscribe_v5_callback_set(c->m, on_subscribe);
    mosquitto_publish_v5_callback_set(c->m, on_publish);
    mosquitto_message_v5_callback_set(c->m, on_message);
    mosquitto_disconnect_v5_callback_set(c->m, on_disconnect);

    mosquitto_property *props = NULL;
    if (!clean && opt.version == MQTT_PROTOCOL_V5)
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600);
    /* A blocking TCP connect: to a local broker it takes microseconds, and
     * idle mode keeps few enough handshakes open that the broker's accept
     * queue never overflows. */
    int rc = mosquitto_connect_bind_v5(c->m, opt.host, opt.port, opt.keepalive, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS) {
        fail("%s %s: cannot connect to %s:%d: %s", role_name(c->role), c->id, opt.host, opt.port,
             rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return false;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, mosquitto_socket(c->m), &ev) != 0) {
        fail("epoll_ctl: %s", strerror(errno));
        return false;
    }
    watch_output(c);
    return true;
}

static void connect_more(worker_t *w)
{
    while (w->next_connect < w->n && w->pending < w->max_pending && !atomic_load(&g_failed) &&
           !atomic_load(&g_stop)) {
        client_t *c = w->clients[w->next_connect++];
        if (!client_connect(c))
            return;
        w->pending++;
    }
}

static bool send_one(worker_t *w, client_t *p)
{
    stamp_t st = {
        .run_id = run_id, .publisher = (uint32_t)p->index, .seq = p->sent, .sent_ns = now_ns()};
    int rc;
    if (shadow_mode()) {
        char doc[200];
        int n = opt.mode == MODE_SHADOW_UPDATE
                    ? snprintf(doc, sizeof doc,
                               "{\"state\":{\"reported\":{\"n\":%" PRIu64 "}},"
                               "\"clientToken\":\"%08" PRIx32 "-%" PRIu64 "-%" PRIu64 "\"}",
                               st.seq, st.run_id, st.seq, st.sent_ns)
                    : snprintf(doc, sizeof doc,
                               "{\"clientToken\":\"%08" PRIx32 "-%" PRIu64 "-%" PRIu64 "\"}",
                               st.run_id, st.seq, st.sent_ns);
        rc = mosquitto_publish(p->m, NULL, p->topic, n, doc, opt.qos, false);
    } else {
        memcpy(w->payload, &st, sizeof st);
        rc = mosquitto_publish(p->m, NULL, p->topic, (int)opt.payload, w->payload, opt.qos, false);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        if (!p->dead)
            fail("publisher %s: cannot publish: %s", p->id,
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return false;
    }
    p->sent++;
    if (opt.qos > 0)
        p->inflight++;
    atomic_store_explicit(&p->a_sent, p->sent, memory_order_relaxed);
    return true;
}

static bool publisher_done(client_t *p)
{
    if (p->finished)
        return true;
    if (p->sent >= p->quota || atomic_load_explicit(&g_stop_publishing, memory_order_relaxed)) {
        p->finished = true;
        atomic_store(&p->a_finished, true);
        return true;
    }
    return false;
}

/* How many more messages the window lets all publishers send. */
static uint64_t window_budget(void)
{
    if (!opt.window)
        return UINT64_MAX;
    uint64_t sent = 0, slowest = UINT64_MAX;
    for (int i = 0; i < npubs; i++)
        sent += atomic_load_explicit(&pubs[i].a_sent, memory_order_relaxed);
    for (int i = 0; i < nsubs; i++) {
        uint64_t r = atomic_load_explicit(&subs[i].a_received, memory_order_relaxed);
        if (r < slowest)
            slowest = r;
    }
    uint64_t ahead = sent > slowest ? sent - slowest : 0;
    return ahead < opt.window ? opt.window - ahead : 0;
}

/* Fixed rate: send what is due, then set the timer for the next one. */
static void publish_paced(worker_t *w)
{
    uint64_t now = now_ns(), next = UINT64_MAX;
    for (size_t i = 0; i < w->npubs; i++) {
        client_t *p = w->pubs[i];
        if (p->dead)
            continue;
        if (!p->next_due_ns)
            p->next_due_ns = g_start_ns + (uint64_t)((double)p->index * 1e9 / opt.rate);
        while (!publisher_done(p) && p->next_due_ns <= now) {
            if (opt.qos > 0 && p->inflight >= (uint32_t)opt.inflight)
                break; /* the next PUBACK wakes us */
            if (now - p->next_due_ns > p->lag_max_ns)
                p->lag_max_ns = now - p->next_due_ns;
            if (!send_one(w, p))
                return;
            p->next_due_ns += p->interval_ns;
            now = now_ns();
        }
        watch_output(p);
        if (!p->finished && p->next_due_ns > now && p->next_due_ns < next)
            next = p->next_due_ns;
    }
    if (next != UINT64_MAX) {
        struct itimerspec its = {
            .it_value = {.tv_sec = (time_t)(next / NS_PER_S), .tv_nsec = (long)(next % NS_PER_S)}};
        timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    }
}

/* As fast as flow control allows; returns the epoll timeout to use. */
static int publish_flat_out(worker_t *w)
{
    int timeout = 50;
    uint64_t budget = window_budget();
    for (size_t i = 0; i < w->npubs; i++) {
        client_t *p = w->pubs[i];
        int k = 0;
        while (!p->dead && k < BURST && budget > 0 && !publisher_done(p)) {
            if (shadow_mode()  ? p->sent - p->unique >= (uint64_t)opt.inflight
                : opt.qos == 0 ? mosquitto_want_write(p->m)
                               : p->inflight >= (uint32_t)opt.inflight)
                break; /* the socket, a PUBACK or a shadow reply wakes us */
            if (!send_one(w, p))
                return timeout;
            k++;
            budget--;
        }
        watch_output(p);
        if (k == BURST)
            timeout = 0;
    }
    if (budget == 0) {
        /* The subscribers' workers wake us when they have caught up; the
         * flag is set before looking again so that no wake-up is lost. */
        atomic_store(&g_window_closed, true);
        if (window_budget() > 0)
            timeout = 0;
    }
    return timeout;
}

/* On a subscribers' worker: wake the publishers once half the window is free. */
static void reopen_window(void)
{
    if (!atomic_load_explicit(&g_window_closed, memory_order_relaxed) ||
        window_budget() < opt.window / 2 || !atomic_exchange(&g_window_closed, false))
        return;
    uint64_t one = 1;
    for (int i = 0; i < opt.threads; i++)
        if (workers[i].npubs && write(workers[i].wake, &one, sizeof one) < 0 && errno != EAGAIN)
            fail("eventfd: %s", strerror(errno));
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    for (size_t i = 0; i < w->n; i++)
        if (w->clients[i]->role != ROLE_IDLE && !client_connect(w->clients[i]))
            return NULL;
    struct epoll_event evs[MAX_EVENTS];
    uint64_t next_misc = now_ns() + NS_PER_S;
    bool going = false;
    while (!atomic_load(&g_stop)) {
        int timeout = 50;
        if (!going && atomic_load(&g_go)) {
            going = true;
            w->cpu_go_s = thread_cpu_seconds();
        }
        if (opt.mode == MODE_IDLE) {
            connect_more(w);
            if (w->next_connect < w->n)
                timeout = 5;
        } else if (!atomic_load(&g_go)) {
            timeout = 2;
        } else if (w->npubs) {
            if (opt.rate > 0)
                publish_paced(w);
            else
                timeout = publish_flat_out(w);
        }
        int n = epoll_wait(w->ep, evs, MAX_EVENTS, timeout);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &w->tfd || evs[i].data.ptr == &w->wake) {
                uint64_t count;
                if (read(*(int *)evs[i].data.ptr, &count, sizeof count) < 0 && errno != EAGAIN)
                    fail("timerfd/eventfd: %s", strerror(errno));
                continue;
            }
            client_io(evs[i].data.ptr, evs[i].events);
        }
        if (w->nsubs && opt.window)
            reopen_window();
        uint64_t now = now_ns();
        if (now >= next_misc) {
            /* keep alive: PINGREQ when due, and notice a broker gone silent */
            for (size_t i = 0; i < w->n; i++) {
                client_t *c = w->clients[i];
                if (c->m && !c->dead) {
                    if (mosquitto_loop_misc(c->m) != MOSQ_ERR_SUCCESS)
                        on_disconnect(c->m, c, MOSQ_ERR_CONN_LOST, NULL);
                    else
                        watch_output(c);
                }
            }
            next_misc = now + NS_PER_S;
        }
    }
    w->cpu_end_s = thread_cpu_seconds();
    return NULL;
}

/* ---- setting up and reporting a run ---- */

static void client_init(client_t *c, role_t role, int index, worker_t *w)
{
    c->role = role;
    c->index = index;
    c->w = w;
    char letter = role == ROLE_PUB ? 'p' : role == ROLE_SUB ? 's' : 'i';
    if (opt.id_prefix)
        snprintf(c->id, sizeof c->id, "%.40s%c%d", opt.id_prefix, letter, index);
    else
        snprintf(c->id, sizeof c->id, "lg-%08" PRIx32 "-%c%d", run_id, letter, index);
    w->clients[w->n++] = c;
    if (role == ROLE_PUB)
        w->pubs[w->npubs++] = c;
    if (role == ROLE_SUB)
        w->nsubs++;
}

static bool workers_create(int nclients)
{
    workers = calloc((size_t)opt.threads, sizeof *workers);
    if (!workers)
        return false;
    for (int i = 0; i < opt.threads; i++) {
        worker_t *w = &workers[i];
        w->clients = calloc((size_t)nclients, sizeof *w->clients);
        w->pubs = calloc((size_t)nclients, sizeof *w->pubs);
        w->payload = calloc(1, opt.payload);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        w->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (!w->clients || !w->pubs || !w->payload || w->ep < 0 || w->tfd < 0 || w->wake < 0)
            return false;
        memset(w->payload, 'x', opt.payload);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->tfd};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->tfd, &ev) != 0)
            return false;
        ev.data.ptr = &w->wake;
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev) != 0)
            return false;
    }
    return true;
}

static bool workers_start(void)
{
    /* Signals go to the main thread only. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    bool ok = true;
    for (int i = 0; i < opt.threads && ok; i++)
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            ok = false;
            opt.threads = i;
        }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ok;
}

static void workers_stop(void)
{
    atomic_store(&g_stop, true);
    for (int i = 0; i < opt.threads; i++)
        pthread_join(workers[i].thread, NULL);
}

static void clients_destroy(client_t *cs, int n)
{
    for (int i = 0; i < n; i++)
        if (cs[i].m)
            mosquitto_destroy(cs[i].m);
}

static const char *mqtt_name(void)
{
    return opt.version == MQTT_PROTOCOL_V5 ? "5" : "3.1.1";
}

/* The error text, quoted for a key=value line. */
static void print_error(void)
{
    printf(" error=\"");
    for (const char *p = g_error; *p; p++)
        putchar(*p == '"' ? '\'' : *p);
    printf("\"");
}

static bool wait_ready(int want, double timeout_s)
{
    uint64_t deadline = now_ns() + (uint64_t)(timeout_s * 1e9);
    while (atomic_load(&g_ready) < want) {
        if (atomic_load(&g_failed) || g_signalled)
            return false;
        if (now_ns() > deadline) {
            fail("only %d of %d clients were connected and subscribed after %.0f s",
                 atomic_load(&g_ready), want, timeout_s);
            return false;
        }
        sleep_ns(1000000);
    }
    return true;
}

static int run_pubsub(void)
{
    bool counting = opt.mode == MODE_COUNT, shadow = shadow_mode();
    npubs = counting ? 0 : opt.publishers;
    nsubs = shadow ? 0 : opt.subscribers;
    nsources = counting ? opt.publishers : npubs;
    if (opt.rate > 0 && opt.duration_s > 0)
        opt.count = (uint64_t)(opt.rate * opt.duration_s);
    pubs = calloc((size_t)npubs + 1, sizeof *pubs);
    subs = calloc((size_t)nsubs + 1, sizeof *subs);
    if (!pubs || !subs || !workers_create(npubs + nsubs)) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    if (counting)
        snprintf(sub_filter, sizeof sub_filter, "%s", opt.filter);
    else
        snprintf(sub_filter, sizeof sub_filter, "%s/%08" PRIx32 "/+", opt.topic_prefix, run_id);
    /* Subscribers on the first half of the workers, publishers on the rest;
     * without subscribers, publishers on all. */
    int subw = opt.threads > 1 && nsubs ? opt.threads / 2 : nsubs ? 1 : 0;
    int pubw = opt.threads - subw > 0 ? opt.threads - subw : 1;
    for (int i = 0; i < nsubs; i++) {
        client_init(&subs[i], ROLE_SUB, i, &workers[i % (subw ? subw : 1)]);
        subs[i].seen = calloc((size_t)nsources + 1, sizeof *subs[i].seen);
        if (!subs[i].seen)
            return 1;
    }
    for (int i = 0; i < npubs; i++) {
        client_t *p = &pubs[i];
        client_init(p, ROLE_PUB, i, &workers[subw < opt.threads ? subw + i % pubw : 0]);
        if (shadow) {
            snprintf(p->topic, sizeof p->topic, "$aws/things/%s/shadow/%s", p->id,
                     opt.mode == MODE_SHADOW_GET ? "get" : "update");
            snprintf(p->reply_topics[0], sizeof p->reply_topics[0], "%.180s/accepted", p->topic);
            snprintf(p->reply_topics[1], sizeof p->reply_topics[1], "%.180s/rejected", p->topic);
            p->seen = calloc(1, sizeof *p->seen);
            if (!p->seen)
                return 1;
        } else {
            snprintf(p->topic, sizeof p->topic, "%s/%08" PRIx32 "/%d", opt.topic_prefix, run_id, i);
        }
        p->quota = opt.count
                       ? opt.count / (uint64_t)npubs + ((uint64_t)i < opt.count % (uint64_t)npubs)
                       : UINT64_MAX;
        if (opt.rate > 0)
            p->interval_ns = (uint64_t)((double)npubs * 1e9 / opt.rate);
    }

    /* Who receives: subscribers, or the things themselves (their shadow replies). */
    client_t *rcv = shadow ? pubs : subs;
    int nrcv = shadow ? npubs : nsubs;

    const char *status = "ok";
    uint64_t end_ns = 0, t0 = now_ns(), port_ns = 0, ready_ns = 0;
    double cpu0 = 0, cpu1 = 0;
    if (counting) {
        /* The counter may be started with its broker: wait for the port. */
        if (!resolve_port()) {
            fail("cannot resolve %s", opt.host);
        } else {
            uint64_t waited = wait_port(t0, 0, NULL, NULL);
            if (!waited)
                fail("port %d did not accept connections within %.0f s", opt.port, opt.timeout_s);
            port_ns = t0 + waited;
        }
    }
    if (atomic_load(&g_failed)) {
        status = "error";
    } else if (!workers_start()) {
        fail("cannot start the worker threads");
        status = "error";
    } else if (!wait_ready(npubs + nsubs, 10)) {
        status = g_signalled ? "interrupted" : "error";
    } else if (opt.register_only) {
        ready_ns = now_ns();
        g_start_ns = ready_ns;
        end_ns = now_ns();
    } else {
        ready_ns = now_ns();
        if (counting) {
            /* for a script that starts the publishers once this is there */
            printf("event=subscribed\n");
            fflush(stdout);
        }
        cpu0 = cpu_seconds();
        g_start_ns = now_ns();
        g_measure_from_ns = g_start_ns + (uint64_t)(opt.warmup_s * 1e9);
        atomic_store(&g_go, true);
        uint64_t last_progress = g_start_ns, last_sig = 0;
        for (;;) {
            sleep_ns(2000000);
            uint64_t now = now_ns();
            if (atomic_load(&g_failed)) {
                status = "error";
                break;
            }
            if (g_signalled) {
                status = "interrupted";
                break;
            }
            if (opt.duration_s > 0 && opt.rate <= 0 &&
                now - g_start_ns >= (uint64_t)(opt.duration_s * 1e9))
                atomic_store(&g_stop_publishing, true);
            uint64_t sent = 0, acked = 0, rx = 0, replies = 0;
            bool pubs_done = true, all_in = true;
            for (int i = 0; i < npubs; i++) {
                sent += atomic_load(&pubs[i].a_sent);
                acked += atomic_load(&pubs[i].a_acked);
                pubs_done = pubs_done && atomic_load(&pubs[i].a_finished);
            }
            if (opt.qos > 0 && acked < sent)
                pubs_done = false;
            for (int i = 0; i < nrcv; i++) {
                rx += atomic_load(&rcv[i].a_received);
                replies += atomic_load(&rcv[i].a_unique);
                if (!shadow)
                    all_in =
                        all_in && atomic_load(&rcv[i].a_unique) >= (counting ? opt.count : sent);
            }
            if (shadow)
                all_in = replies >= sent;
            if (sent + acked + rx != last_sig) {
                last_sig = sent + acked + rx;
                last_progress = now;
            }
            if (pubs_done && all_in)
                break;
            /* A counter waits for the first message as long as --timeout allows. */
            if (now - last_progress > (uint64_t)(opt.drain_s * 1e9) && (!counting || rx > 0)) {
                if (counting) {
                    status = "incomplete";
                    fail("no message for %.1f s after %" PRIu64 " received", opt.drain_s, rx);
                } else if (!pubs_done) {
                    status = "stalled";
                    fail("no progress for %.1f s: %" PRIu64 " sent, %" PRIu64
                         " acknowledged, %" PRIu64 " received",
                         opt.drain_s, sent, acked, rx);
                }
                break;
            }
            if (now - g_start_ns > (uint64_t)(opt.timeout_s * 1e9)) {
                status = "timeout";
                fail("the run did not finish within %.0f s", opt.timeout_s);
                break;
            }
        }
        end_ns = now_ns();
        cpu1 = cpu_seconds();
    }
    workers_stop();
    /* A counter leaves with DISCONNECT (and a TLS close), as clients should:
     * its persistent session stays at the broker either way. */
    for (int i = 0; counting && i < nsubs; i++)
        if (subs[i].m && !subs[i].dead && mosquitto_disconnect(subs[i].m) == MOSQ_ERR_SUCCESS)
            mosquitto_loop_write(subs[i].m, 1);

    uint64_t sent = 0, acked = 0, refused = 0, lag_max = 0, last_ack = 0;
    for (int i = 0; i < npubs; i++) {
        sent += pubs[i].sent;
        acked += pubs[i].acked;
        refused += pubs[i].refused;
        if (pubs[i].lag_max_ns > lag_max)
            lag_max = pubs[i].lag_max_ns;
        if (pubs[i].last_ack_ns > last_ack)
            last_ack = pubs[i].last_ack_ns;
    }
    uint64_t received = 0, unique = 0, dups = 0, reordered = 0, stale = 0, malformed = 0;
    uint64_t rejected = 0, first = UINT64_MAX, last = 0;
    size_t lat_n = 0;
    int granted = 2;
    for (int i = 0; i < nrcv; i++) {
        client_t *s = &rcv[i];
        received += s->received;
        rejected += s->rejected;
        unique += s->unique;
        dups += s->dups;
        reordered += s->reordered;
        stale += s->stale;
        malformed += s->malformed;
        lat_n += s->lat_n;
        if (s->first_ns && s->first_ns < first)
            first = s->first_ns;
        if (s->last_ns > last)
            last = s->last_ns;
        if (s->granted_qos < granted)
            granted = s->granted_qos;
    }
    uint64_t expected = counting ? opt.count : shadow ? sent : sent * (uint64_t)nsubs;
    double elapsed = last > first && first != UINT64_MAX ? (double)(last - first) / 1e9 : 0;
    double wall = end_ns > g_start_ns ? (double)(end_ns - g_start_ns) / 1e9 : 0;

    printf("mode=%s", mode_names[opt.mode]);
    if (opt.label)
        printf(" label=%s", opt.label);
    printf(" mqtt=%s qos=%d pubs=%d subs=%d payload=%zu persistent=%d status=%s", mqtt_name(),
           opt.qos, npubs, nsubs, opt.payload, opt.persistent, status);
    printf(" sent=%" PRIu64 " acked=%" PRIu64 " refused=%" PRIu64 " expected=%" PRIu64
           " received=%" PRIu64 " unique=%" PRIu64 " lost=%" PRIu64 " dup=%" PRIu64
           " reordered=%" PRIu64 " stale=%" PRIu64 " malformed=%" PRIu64 " granted_qos=%d",
           sent, acked, refused, expected, received, unique,
           expected > unique ? expected - unique : 0, dups, reordered, stale, malformed, granted);
    printf(" elapsed_s=%.3f rate=%.0f", elapsed, elapsed > 0 ? (double)received / elapsed : 0);
    /* What publishers saw: messages acknowledged per second, from the start
     * to the last acknowledgement (QoS 0: to the last write). */
    printf(" run=%08" PRIx32 " pub_rate=%.0f", run_id,
           last_ack > g_start_ns && g_start_ns
               ? (double)acked * 1e9 / (double)(last_ack - g_start_ns)
               : 0);
    if (shadow)
        printf(" rejected=%" PRIu64, rejected);
    if (counting) {
        /* When the port accepted (from start), and the first and last
         * message (from then), in milliseconds. */
        double base = (double)port_ns;
        printf(" port_ms=%.3f ready_ms=%.3f first_ms=%.3f last_ms=%.3f",
               port_ns ? (double)(port_ns - t0) / 1e6 : 0,
               ready_ns && port_ns ? ((double)ready_ns - base) / 1e6 : 0,
               first != UINT64_MAX && port_ns ? ((double)first - base) / 1e6 : 0,
               last && port_ns ? ((double)last - base) / 1e6 : 0);
    }
    if (opt.rate > 0 || shadow) {
        uint64_t *all = malloc((lat_n ? lat_n : 1) * sizeof *all);
        size_t k = 0;
        double sum = 0;
        for (int i = 0; all && i < nrcv; i++)
            for (size_t j = 0; j < rcv[i].lat_n; j++) {
                all[k++] = rcv[i].lat[j];
                sum += (double)rcv[i].lat[j];
            }
        if (all) {
            qsort(all, k, sizeof *all, cmp_u64);
            printf(" target_rate=%.0f lat_n=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f"
                   " max_us=%.1f mean_us=%.1f send_lag_max_us=%.1f",
                   opt.rate, k, percentile_us(all, k, 0.50), percentile_us(all, k, 0.90),
                   percentile_us(all, k, 0.99), percentile_us(all, k, 0.999),
                   k ? (double)all[k - 1] / 1e3 : 0, k ? sum / (double)k / 1e3 : 0,
                   (double)lag_max / 1e3);
            free(all);
        }
    }
    /* Whether the load generator itself was the bottleneck: its CPU use,
     * in all and per worker (subscribers' workers first). */
    printf(" wall_s=%.3f lg_cpu_s=%.3f lg_cpu_pct=%.0f lg_threads_pct=", wall, cpu1 - cpu0,
           wall > 0 ? 100 * (cpu1 - cpu0) / wall : 0);
    for (int i = 0; i < opt.threads; i++)
        printf("%s%.0f", i ? "," : "",
               wall > 0 && workers[i].cpu_go_s > 0
                   ? 100 * (workers[i].cpu_end_s - workers[i].cpu_go_s) / wall
                   : 0);
    if (atomic_load(&g_failed))
        print_error();
    printf("\n");
    fflush(stdout);

    clients_destroy(pubs, npubs);
    clients_destroy(subs, nsubs);
    return strcmp(status, "ok") == 0 ? 0 : 1;
}

static int run_idle(void)
{
    nidles = opt.connections;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)nidles + 64 > rl.rlim_cur) {
        printf("mode=idle connections=%d status=error error=\"%d connections need %d file "
               "descriptors, the limit is %llu (raise ulimit -n)\"\n",
               nidles, nidles, nidles + 64, (unsigned long long)rl.rlim_cur);
        return 1;
    }
    idles = calloc((size_t)nidles, sizeof *idles);
    if (!idles || !workers_create(nidles / opt.threads + 1)) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    for (int i = 0; i < opt.threads; i++)
        workers[i].max_pending =
            opt.connect_concurrency / opt.threads > 0 ? opt.connect_concurrency / opt.threads : 1;
    for (int i = 0; i < nidles; i++)
        client_init(&idles[i], ROLE_IDLE, i, &workers[i % opt.threads]);

    const char *status = "ok";
    uint64_t t0 = now_ns();
    double connect_s = 0, held_s = 0;
    if (!workers_start()) {
        fail("cannot start the worker threads");
        status = "error";
    } else if (!wait_ready(nidles, opt.timeout_s)) {
        status = g_signalled ? "interrupted" : "error";
    } else {
        uint64_t t1 = now_ns();
        connect_s = (double)(t1 - t0) / 1e9;
        printf("event=connected connections=%d connect_s=%.3f\n", nidles, connect_s);
        fflush(stdout);
        while (!g_signalled && !atomic_load(&g_failed) &&
               (opt.hold_s <= 0 || now_ns() - t1 < (uint64_t)(opt.hold_s * 1e9)))
            sleep_ns(10000000);
        held_s = (double)(now_ns() - t1) / 1e9;
        if (atomic_load(&g_failed))
            status = "error";
        else if (atomic_load(&g_lost))
            status = "lost";
    }
    int connected = atomic_load(&g_ready), lost = atomic_load(&g_lost);
    workers_stop();
    printf("mode=idle");
    if (opt.label)
        printf(" label=%s", opt.label);
    printf(" mqtt=%s connections=%d connected=%d lost=%d connect_s=%.3f held_s=%.3f status=%s",
           mqtt_name(), nidles, connected, lost, connect_s, held_s, status);
    if (atomic_load(&g_failed))
        print_error();
    printf("\n");
    fflush(stdout);
    clients_destroy(idles, nidles);
    return strcmp(status, "ok") == 0 ? 0 : 1;
}

/* ---- start-up timing ---- */

static struct sockaddr_storage port_addr;
static socklen_t port_addr_len;

static bool resolve_port(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", opt.port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(opt.host, port, &hints, &res) != 0)
        return false;
    memcpy(&port_addr, res->ai_addr, res->ai_addrlen);
    port_addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

static bool port_accepts(void)
{
    int fd = socket(port_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&port_addr, port_addr_len) == 0;
    close(fd);
    return ok;
}

/* Polls the port every 100 µs; returns the time it took, or 0. */
static uint64_t wait_port(uint64_t t0, pid_t child, int *child_status, bool *child_exited)
{
    uint64_t deadline = t0 + (uint64_t)(opt.timeout_s * 1e9);
    for (;;) {
        if (port_accepts())
            return now_ns() - t0;
        if (child > 0 && waitpid(child, child_status, WNOHANG) == child) {
            *child_exited = true;
            return 0;
        }
        if (now_ns() > deadline || g_signalled)
            return 0;
        sleep_ns(100000);
    }
}

static int run_wait_port(void)
{
    if (!resolve_port()) {
        printf("mode=wait-port status=error error=\"cannot resolve %s\"\n", opt.host);
        return 1;
    }
    uint64_t t = wait_port(now_ns(), 0, NULL, NULL);
    printf("mode=wait-port port=%d status=%s ready_ms=%.3f\n", opt.port, t ? "ok" : "timeout",
           (double)t / 1e6);
    return t ? 0 : 1;
}

/* A port nobody listens on now, chosen by the kernel; other programs on
 * the machine may use fixed ones. */
static int run_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        fprintf(stderr, "loadgen: cannot find a free port: %s\n", strerror(errno));
        return 1;
    }
    close(fd);
    printf("%d\n", ntohs(a.sin_port));
    return 0;
}

static int run_startup(void)
{
    if (!opt.command || !opt.command[0]) {
        fprintf(stderr, "loadgen: --mode startup needs the broker's command after --\n");
        return 2;
    }
    if (!resolve_port()) {
        printf("mode=startup status=error error=\"cannot resolve %s\"\n", opt.host);
        return 1;
    }
    if (port_accepts()) {
        printf("mode=startup status=error error=\"port %d already accepts connections\"\n",
               opt.port);
        return 1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 2, 1); /* our stdout is for the result */
    pid_t pid;
    uint64_t t0 = now_ns();
    int rc = posix_spawnp(&pid, opt.command[0], &fa, NULL, opt.command, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        printf("mode=startup status=error error=\"cannot run %s: %s\"\n", opt.command[0],
               strerror(rc));
        return 1;
    }
    int wstatus = 0;
    bool exited = false;
    uint64_t ready = wait_port(t0, pid, &wstatus, &exited);
    const char *status = "ok";
    char error[200] = "";
    double stop_ms = 0;
    if (!ready) {
        status = "error";
        if (exited)
            snprintf(error, sizeof error, "%s exited before its port accepted connections",
                     opt.command[0]);
        else
            snprintf(error, sizeof error, "port %d did not accept connections within %.1f s",
                     opt.port, opt.timeout_s);
    }
    if (!exited) {
        uint64_t t1 = now_ns();
        kill(pid, SIGTERM);
        while (waitpid(pid, &wstatus, WNOHANG) == 0) {
            if (now_ns() - t1 > 10 * NS_PER_S) {
                kill(pid, SIGKILL);
                waitpid(pid, &wstatus, 0);
                status = "error";
                snprintf(error, sizeof error, "%s did not stop within 10 s of SIGTERM",
                         opt.command[0]);
                break;
            }
            sleep_ns(200000);
        }
        stop_ms = (double)(now_ns() - t1) / 1e6;
    }
    /* A clean stop exits 0; 128+N is death by signal N, which for SIGTERM
     * means the broker had not yet installed its handler. */
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    printf("mode=startup");
    if (opt.label)
        printf(" label=%s", opt.label);
    printf(" port=%d status=%s ready_ms=%.3f stop_ms=%.3f exit_code=%d", opt.port, status,
           (double)ready / 1e6, stop_ms, code);
    if (error[0])
        printf(" error=\"%s\"", error);
    printf("\n");
    return strcmp(status, "ok") == 0 ? 0 : 1;
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: loadgen --mode MODE [options]\n"
            "Drives an MQTT broker through libmosquitto and prints one key=value line.\n"
            "\n"
            "Modes:\n"
            "  fan-in      N publishers -> 1 subscriber (default 4 publishers)\n"
            "  fan-out     1 publisher -> N subscribers (default 8 subscribers)\n"
            "  latency     1 -> 1 at a fixed rate (default 10000 msg/s for 10 s)\n"
            "  shadow-update  N things (default 4) each publish shadow updates to\n"
            "              $aws/things/ID/shadow/update and count the accepted/rejected\n"
            "              replies; --inflight requests outstanding per thing\n"
            "  shadow-get  the same with $aws/things/ID/shadow/get (default 1 thing)\n"
            "  count       wait for --port, subscribe to --filter and count --count\n"
            "              messages of the loadgen run --run-id\n"
            "  idle        hold --connections idle connections until SIGTERM or --hold\n"
            "  startup     run the broker given after --, time until --port accepts, stop it\n"
            "  wait-port   wait until --port accepts connections\n"
            "  free-port   print a TCP port of 127.0.0.1 that is free now\n"
            "\n"
            "Options:\n"
            "  --host H           broker address (127.0.0.1)\n"
            "  --port P           broker port (1883)\n"
            "  --mqtt 3|5         protocol version 3.1.1 or 5 (3)\n"
            "  --qos 0|1|2        QoS of publications and subscriptions (0)\n"
            "  --payload BYTES    payload size, at least %zu (64)\n"
            "  --publishers N     --subscribers N   override the mode's shape\n"
            "  --count N          messages to publish in all (100000)\n"
            "  --duration S       publish for S seconds instead of --count\n"
            "  --rate R           fixed total rate in msg/s; reports latency percentiles\n"
            "  --warmup S         fixed rate: leave out messages sent in the first S s (0)\n"
            "  --persistent       subscribers keep their session (clean session false;\n"
            "                     MQTT 5: session expiry 3600 s)\n"
            "  --inflight N       unacknowledged QoS 1/2 messages per publisher, and the\n"
            "                     subscribers' receive maximum (32)\n"
            "  --window N         most messages publishers may be ahead of the slowest\n"
            "                     subscriber; 0 = no limit (10000)\n"
            "  --threads N        worker threads (2)\n"
            "  --timeout S        give up after S seconds (120)\n"
            "  --drain S          end a run after S seconds without progress (3)\n"
            "  --keepalive S      MQTT keep alive (60)\n"
            "  --connections N    idle: connections to hold (1000)\n"
            "  --hold S           idle: hold for S seconds; 0 = until SIGTERM/SIGINT/SIGUSR1\n"
            "  --connect-concurrency N  idle: handshakes in progress at once (100)\n"
            "  --label TEXT       copied into the output line\n"
            "  --client-id-prefix P  client ids P + p|s|i + index (a thing of a group)\n"
            "  --topic-prefix T   publish to T/RUN/N (bench)\n"
            "  --filter F         count: the subscription\n"
            "  --run-id HEX       the run's id, which publishers stamp and a counter\n"
            "                     expects (others are stale); random by default\n"
            "  --register         count: subscribe and leave (use with --persistent)\n"
            "  --cafile F --cert F --key F  connect with mutual TLS\n"
            "  --publishers/--subscribers 0 is allowed where it makes sense: fan-in\n"
            "  without subscribers reports pub_rate, the publishers' acknowledged rate\n"
            "Exit status: 0 when the run completed (losses are reported, not fatal),\n"
            "1 when it failed, 2 on bad usage.\n",
            sizeof(stamp_t));
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static bool parse_int(const char *s, int min, int max, int *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v < (uint64_t)min || v > (uint64_t)max)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv)
{
    enum {
        O_MODE = 256,
        O_HOST,
        O_PORT,
        O_MQTT,
        O_QOS,
        O_PAYLOAD,
        O_PUBS,
        O_SUBS,
        O_COUNT,
        O_DURATION,
        O_RATE,
        O_WARMUP,
        O_PERSISTENT,
        O_INFLIGHT,
        O_WINDOW,
        O_THREADS,
        O_TIMEOUT,
        O_DRAIN,
        O_KEEPALIVE,
        O_CONNECTIONS,
        O_HOLD,
        O_CONCURRENCY,
        O_LABEL,
        O_ID_PREFIX,
        O_TOPIC_PREFIX,
        O_FILTER,
        O_RUN_ID,
        O_REGISTER,
        O_CAFILE,
        O_CERT,
        O_KEY,
        O_HELP
    };
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, O_MODE},
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"mqtt", required_argument, NULL, O_MQTT},
        {"qos", required_argument, NULL, O_QOS},
        {"payload", required_argument, NULL, O_PAYLOAD},
        {"publishers", required_argument, NULL, O_PUBS},
        {"subscribers", required_argument, NULL, O_SUBS},
        {"count", required_argument, NULL, O_COUNT},
        {"duration", required_argument, NULL, O_DURATION},
        {"rate", required_argument, NULL, O_RATE},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"persistent", no_argument, NULL, O_PERSISTENT},
        {"inflight", required_argument, NULL, O_INFLIGHT},
        {"window", required_argument, NULL, O_WINDOW},
        {"threads", required_argument, NULL, O_THREADS},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"drain", required_argument, NULL, O_DRAIN},
        {"keepalive", required_argument, NULL, O_KEEPALIVE},
        {"connections", required_argument, NULL, O_CONNECTIONS},
        {"hold", required_argument, NULL, O_HOLD},
        {"connect-concurrency", required_argument, NULL, O_CONCURRENCY},
        {"label", required_argument, NULL, O_LABEL},
        {"client-id-prefix", required_argument, NULL, O_ID_PREFIX},
        {"topic-prefix", required_argument, NULL, O_TOPIC_PREFIX},
        {"filter", required_argument, NULL, O_FILTER},
        {"run-id", required_argument, NULL, O_RUN_ID},
        {"register", no_argument, NULL, O_REGISTER},
        {"cafile", required_argument, NULL, O_CAFILE},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    bool mode_set = false;
    int o;
    uint64_t u;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        const char *a = optarg;
        bool ok = true;
        switch (o) {
        case O_MODE:
            ok = false;
            for (size_t i = 0; i < sizeof mode_names / sizeof *mode_names; i++)
                if (strcmp(a, mode_names[i]) == 0) {
                    opt.mode = (run_mode_t)i;
                    ok = mode_set = true;
                }
            break;
        case O_HOST: opt.host = a; break;
        case O_PORT: ok = parse_int(a, 1, 65535, &opt.port); break;
        case O_MQTT:
            if (strcmp(a, "3") == 0 || strcmp(a, "311") == 0 || strcmp(a, "3.1.1") == 0)
                opt.version = MQTT_PROTOCOL_V311;
            else if (strcmp(a, "5") == 0)
                opt.version = MQTT_PROTOCOL_V5;
            else
                ok = false;
            break;
        case O_QOS: ok = parse_int(a, 0, 2, &opt.qos); break;
        case O_PAYLOAD:
            ok = parse_u64(a, &u) && u >= sizeof(stamp_t) && u <= 256u << 20;
            opt.payload = (size_t)u;
            break;
        case O_PUBS: ok = parse_int(a, 1, 100000, &opt.publishers); break;
        case O_SUBS: ok = parse_int(a, 0, 100000, &opt.subscribers); break;
        case O_COUNT: ok = parse_u64(a, &opt.count) && opt.count > 0; break;
        case O_DURATION: ok = parse_double(a, &opt.duration_s) && opt.duration_s > 0; break;
        case O_RATE: ok = parse_double(a, &opt.rate) && opt.rate > 0; break;
        case O_WARMUP: ok = parse_double(a, &opt.warmup_s); break;
        case O_PERSISTENT: opt.persistent = true; break;
        case O_INFLIGHT: ok = parse_int(a, 1, 65535, &opt.inflight); break;
        case O_WINDOW: ok = parse_u64(a, &opt.window); break;
        case O_THREADS: ok = parse_int(a, 1, 256, &opt.threads); break;
        case O_TIMEOUT: ok = parse_double(a, &opt.timeout_s) && opt.timeout_s > 0; break;
        case O_DRAIN: ok = parse_double(a, &opt.drain_s) && opt.drain_s > 0; break;
        case O_KEEPALIVE: ok = parse_int(a, 5, 65535, &opt.keepalive); break;
        case O_CONNECTIONS: ok = parse_int(a, 1, 1000000, &opt.connections); break;
        case O_HOLD: ok = parse_double(a, &opt.hold_s); break;
        case O_CONCURRENCY: ok = parse_int(a, 1, 100000, &opt.connect_concurrency); break;
        case O_LABEL: opt.label = a; break;
        case O_ID_PREFIX: opt.id_prefix = a; break;
        case O_TOPIC_PREFIX: opt.topic_prefix = a; break;
        case O_FILTER: opt.filter = a; break;
        case O_RUN_ID: {
            char *end;
            unsigned long v = strtoul(a, &end, 16);
            ok = end != a && !*end && v <= UINT32_MAX;
            opt.run_id = (uint32_t)v;
            opt.run_id_set = true;
            break;
        }
        case O_REGISTER: opt.register_only = true; break;
        case O_CAFILE: opt.cafile = a; break;
        case O_CERT: opt.certfile = a; break;
        case O_KEY: opt.keyfile = a; break;
        case O_HELP:
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
        if (!ok) {
            fprintf(stderr, "loadgen: invalid value '%s' for --%s (see --help)\n", a,
                    longopts[o - O_MODE].name);
            return 2;
        }
    }
    if (!mode_set) {
        fprintf(stderr, "loadgen: --mode is required (see --help)\n");
        return 2;
    }
    if (optind < argc)
        opt.command = &argv[optind];
    if ((opt.certfile != NULL) != (opt.keyfile != NULL) || (opt.certfile && !opt.cafile)) {
        fprintf(stderr, "loadgen: --cert and --key go together, with --cafile\n");
        return 2;
    }
    if (opt.command && opt.mode != MODE_STARTUP) {
        fprintf(stderr, "loadgen: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    switch (opt.mode) {
    case MODE_FAN_IN:
        opt.publishers = opt.publishers > 0 ? opt.publishers : 4;
        opt.subscribers = opt.subscribers >= 0 ? opt.subscribers : 1;
        break;
    case MODE_FAN_OUT:
        opt.publishers = opt.publishers > 0 ? opt.publishers : 1;
        opt.subscribers = opt.subscribers > 0 ? opt.subscribers : 8;
        break;
    case MODE_SHADOW_UPDATE:
    case MODE_SHADOW_GET:
        opt.publishers = opt.publishers > 0               ? opt.publishers
                         : opt.mode == MODE_SHADOW_UPDATE ? 4
                                                          : 1;
        opt.window = 0;
        break;
    case MODE_COUNT:
        opt.publishers = opt.publishers > 0 ? opt.publishers : 1;
        opt.subscribers = 1;
        if (!opt.filter) {
            fprintf(stderr, "loadgen: --mode count needs --filter\n");
            return 2;
        }
        break;
    case MODE_LATENCY:
        opt.publishers = opt.publishers > 0 ? opt.publishers : 1;
        opt.subscribers = opt.subscribers > 0 ? opt.subscribers : 1;
        if (opt.rate <= 0)
            opt.rate = 10000;
        if (opt.duration_s <= 0 && !opt.count)
            opt.duration_s = 10;
        break;
    default: break;
    }
    if (!opt.count && opt.duration_s <= 0)
        opt.count = 100000;
    if (opt.count && opt.duration_s > 0 && opt.rate <= 0) {
        fprintf(stderr, "loadgen: give --count or --duration, not both\n");
        return 2;
    }
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    g_signalled = 1;
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc)
        return rc;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Every connection is a descriptor: take all the kernel allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (opt.mode == MODE_STARTUP)
        return run_startup();
    if (opt.mode == MODE_WAIT_PORT)
        return run_wait_port();
    if (opt.mode == MODE_FREE_PORT)
        return run_free_port();

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    run_id = opt.run_id_set ? opt.run_id : (uint32_t)(ts.tv_nsec ^ (ts.tv_sec << 16) ^ getpid());
    mosquitto_lib_init();
    rc = opt.mode == MODE_IDLE ? run_idle() : run_pubsub();
    mosquitto_lib_cleanup();
    return rc;
}
