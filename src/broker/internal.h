/*
 * internal: the broker's own types, shared by its files and by nobody
 * else. A client (client_t) is one network connection; a session
 * (session_t) is the MQTT state that outlives connections; a message
 * (msg_t) is one application message, shared by every queue that holds it;
 * the topic tree (tree_t) holds subscriptions and retained messages.
 *
 * Files: conn.c (socket and TLS I/O, framing, dispatch, output), client.c
 * (a connection's identity, peer, aliases and busy state), listener.c,
 * handle_connect.c, handle_publish.c, handle_subscribe.c, handle_ack.c,
 * held.c, session.c (queues, inflight window, expiry, the index by client
 * id), deliver.c (matching and sending), tree.c, msg.c, will.c, sys.c,
 * persist.c, broker.c.
 */
#ifndef SEDGE_BROKER_INTERNAL_H
#define SEDGE_BROKER_INTERNAL_H

#include "base/map.h"
#include "broker.h"
#include "mqtt/mqtt.h"

#include <openssl/ssl.h>

typedef struct session session_t;

/* The timing wheel's size in one-second slots (wheel.c); a deadline
 * further away is looked at once a lap. */
#define WHEEL_SLOTS 512u
#define WHEEL_DUE 0xFFFFu /* wheel_slot of a connection being looked at */
typedef struct {
    session_t **buckets;
    size_t bucket_count; /* a power of two, or 0 */
    size_t count;
    uint64_t seed;
} session_index_t;
typedef struct client client_t;
typedef struct tree_node tree_node_t;

/* An application message. A heap message is reference counted; a
 * borrowed message lives on the stack of the code handling a PUBLISH and
 * points into the receive buffer — msg_hold() gives anyone who keeps it a
 * heap copy, made once. */
typedef struct msg {
    uint32_t refs;       /* holders (heap messages) */
    uint32_t store_refs; /* store rows naming it: queued entries + retained */
    uint64_t store_id;   /* 0 until written to the store */
    int64_t expires_at;  /* wall seconds; 0 = never */
    uint8_t qos;
    bool retain;
    bool heap;
    bytes_t topic;
    bytes_t props; /* forwarded v5 properties in wire form */
    bytes_t payload;
    bytes_t source;    /* who published it: an endpoint, for routing */
    const void *route; /* the routing decision, while being routed */
    struct msg *copy;  /* borrowed: its heap copy, once made */
    uint8_t data[];    /* heap: topic, source, props, payload */
} msg_t;

msg_t *msg_new(bytes_t topic, bytes_t props, bytes_t payload, bytes_t source);
/* A reference the caller keeps; NULL on NOMEM. */
msg_t *msg_hold(msg_t *m);
void msg_release(broker_t *b, msg_t *m);
/* End of a borrowed message's life: drops its heap copy's reference. */
void msg_borrowed_done(broker_t *b, msg_t *m);
bool msg_expired(const msg_t *m, int64_t now);
/* Write the message to the store (once) and count one more store row. */
void msg_store_ref(broker_t *b, msg_t *m);
void msg_store_unref(broker_t *b, msg_t *m);

/* One subscription of a session. */
typedef struct sub {
    session_t *session;
    tree_node_t *node;
    char *filter; /* as subscribed, including a $share/GROUP/ prefix */
    size_t filter_len;
    uint8_t qos;
    bool no_local;
    bool retain_as_published;
    uint8_t retain_handling;
    uint32_t sub_id;            /* 0 = none */
    struct shared_group *group; /* set for shared subscriptions */
    size_t index;               /* position in its node's or group's array */
} sub_t;

typedef struct shared_group {
    struct shared_group *next;
    char *name;
    size_t name_len;
    sub_t **members;
    size_t count, cap;
    size_t next_pick;
} shared_group_t;

struct tree_node {
    tree_node_t *parent;
    tree_node_t *hash_next;   /* in the tree's edge table */
    tree_node_t *first_child; /* for walking retained messages */
    tree_node_t *next_sibling;
    tree_node_t *prev_sibling;
    char *level;
    size_t level_len;
    uint64_t hash;
    sub_t **subs;
    size_t sub_count, sub_cap;
    shared_group_t *groups;
    msg_t *retained;
};

typedef struct {
    tree_node_t root;
    tree_node_t **buckets;
    size_t bucket_count;
    size_t node_count;
    uint64_t seed;
} tree_t;

NODISCARD sedge_err tree_init(tree_t *t);
void tree_free(broker_t *b, tree_t *t);
/* The node for a filter or topic, created on demand. */
tree_node_t *tree_ensure(tree_t *t, bytes_t path);
tree_node_t *tree_find(tree_t *t, bytes_t path);
/* Free nodes left with nothing, from `n` up. */
void tree_prune(tree_t *t, tree_node_t *n);
NODISCARD sedge_err tree_add_sub(tree_t *t, sub_t *s, bytes_t node_path, bytes_t group);
void tree_remove_sub(tree_t *t, sub_t *s);
/* Every subscription matching `topic`: `fn` gets each plain one and one
 * member of each matching shared group, picked in turn among those
 * `accept` takes (the members the message may reach; NULL: all). */
typedef void (*tree_match_fn)(void *ctx, sub_t *s);
typedef bool (*tree_accept_fn)(void *ctx, const sub_t *s);
void tree_match(tree_t *t, bytes_t topic, tree_match_fn fn, tree_accept_fn accept, void *ctx);
/* Every retained message matching `filter` (not shared). */
typedef void (*tree_retained_fn)(void *ctx, msg_t *m);
void tree_match_retained(tree_t *t, bytes_t filter, tree_retained_fn fn, void *ctx);

/* A QoS 1/2 message owed to a session. */
enum { OUT_QUEUED, OUT_SENT, OUT_RELEASED };

typedef struct out_msg {
    struct out_msg *next, *prev;
    msg_t *msg;
    uint64_t seq;         /* order (broker-wide, never reused), and its store key */
    uint64_t ready_batch; /* batch that must commit before it is sent */
    uint16_t packet_id;   /* 0 until assigned */
    uint8_t qos;
    uint8_t state;
    bool retain;
    uint8_t sub_id_count;
    uint32_t sub_ids[]; /* subscription identifiers to send with it */
} out_msg_t;

/* A will: the connection's while it lasts, then the session's while it
 * waits for its delay (or for the session to end). */
typedef struct {
    msg_t *msg;
    uint32_t delay;           /* seconds, as the client asked */
    uint32_t expiry_interval; /* the will's message expiry, from publication */
    uint64_t due_ms;          /* monotonic; set when the connection ends */
} will_t;

/* Free a will and its message reference (NULL is fine). */
void will_free(broker_t *b, will_t *w);

struct session {
    /* Grouped by size, so that an idle session stays small. */
    session_t *index_next; /* in the broker's session index */
    client_t *client;      /* NULL while offline */
    const char *client_id; /* in `text`, NUL-terminated */
    const char *owner;     /* identity it belongs to: `text`, the same as client_id or not */
    sub_t **subs;
    map_t *sub_index; /* filter -> sub_t, once there are more than a few */
    /* Outgoing QoS 1/2: one list in order; entries before `unsent` were
     * sent and wait for their acknowledgement. */
    out_msg_t *head, *tail, *unsent;
    uint16_t *qos2_in;                      /* incoming QoS 2 packet identifiers awaiting PUBREL */
    will_t *will;                           /* pending while offline, or NULL */
    session_t *offline_next, *offline_prev; /* the broker's offline list */
    session_t *commit_wait_next; /* in the broker's list of sessions waiting for a commit */
    uint64_t disconnected_ms;    /* monotonic, while offline */
    uint64_t match_epoch;        /* delivery de-duplication, see deliver.c */
    uint32_t match_index;
    uint32_t expiry_interval; /* seconds, UINT32_MAX = never */
    uint32_t sub_count, sub_cap;
    uint32_t queued;   /* entries in the list */
    uint32_t inflight; /* entries sent and not completed */
    uint32_t qos2_in_count, qos2_in_cap;
    uint16_t client_id_len;
    uint16_t owner_len;
    uint16_t next_packet_id;
    uint8_t version;
    bool persistent; /* lives in the store */
    bool queue_full_logged;
    bool in_commit_wait;
    /* Its key (session_key): the client id, or when the owner differs
     * (a TLS identity using another client id) owner NUL client id. */
    char text[];
};

/* A reply held until a store batch commits (held.c). */
typedef enum {
    HELD_ACK,     /* PUBACK, PUBREC, PUBREL or PUBCOMP, encoded when released */
    HELD_SUBACK,  /* or UNSUBACK; then the retained messages of `filters`, if any */
    HELD_CONNACK, /* then the connection starts */
} held_kind_t;

typedef struct held {
    struct held *next;
    uint64_t batch;
    held_kind_t kind;
    uint8_t type; /* HELD_ACK: its packet type */
    uint8_t reason;
    uint16_t packet_id;
    buf_t packet;   /* SUBACK, CONNACK: the encoded packet */
    char **filters; /* SUBACK: filters whose retained messages follow */
    size_t filter_count;
} held_t;

typedef struct listener {
    struct listener *next;
    broker_t *broker;
    listener_type_t type;
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    SSL_CTX *ssl_ctx;
    char *name;     /* for logs */
    char *path;     /* unix socket path to unlink */
    char *ca_file;  /* TLS: the CA, and the CRLs reloaded on SIGHUP */
    char *crl_file; /* NULL: no CRL */
    char *cert_file; /* TLS: the listener's certificate and key, reloaded on SIGHUP */
    char *key_file;
} listener_t;

/* A v5 connection's topic aliases. */
typedef struct {
    bytes_t *in;       /* theirs: alias -> topic (owned copies); NULL until used */
    map_t out;         /* ours: topic (owned copy) -> alias */
    uint16_t out_next; /* aliases of ours in use */
} topic_aliases_t;

/* Why a connection is not being read. */
typedef enum {
    PAUSE_CONNACK = 1, /* its CONNACK waits for the session's commit */
    PAUSE_ACKS = 2,    /* MQTT 3.1.1: as many acknowledgements held as max_inflight */
    PAUSE_FLOW = 4,    /* a subscriber it publishes to is behind (flow.c) */
} pause_reason_t;

typedef enum {
    CLIENT_TLS_HANDSHAKE, /* TLS: waiting for the handshake */
    CLIENT_AWAIT_CONNECT, /* connected, no CONNECT yet */
    CLIENT_CONNACK_HELD,  /* accepted; CONNACK waits for the session's commit */
    CLIENT_CONNECTED,
    CLIENT_CLOSING,
} client_state_t;

/* Closing after the broker's last word (linger.c). */
typedef enum {
    LINGER_NONE,   /* close the socket once the output is written */
    LINGER_WANTED, /* the output ends with a refusal or a DISCONNECT */
    LINGER_ACTIVE, /* written and shut down; input read and dropped */
} linger_state_t;

/* What a connection needs only while it is busy: bytes of a partial
 * packet, bytes to send, the write in progress, replies held for a commit.
 * Allocated when first needed (client_io); the broker's tick gives it back
 * once the connection is idle again (client_io_trim), so an idle
 * connection carries none of it. */
/* A payload in a connection's output, sent from the message that holds
 * it rather than copied: it goes out after out.data[0..at). */
typedef struct out_ref {
    msg_t *msg; /* one reference held */
    const uint8_t *data;
    size_t len; /* what is left to send */
    size_t at;
} out_ref_t;

typedef struct client_io {
    buf_t in;                      /* bytes of a packet not yet complete */
    buf_t out;                     /* bytes to send (on TLS: plaintext for the engine) */
    out_ref_t *refs;               /* payloads shared into `out`, in order */
    size_t ref_count, ref_cap;
    size_t ref_bytes; /* what the refs have left to send */
    buf_t tls_in, tls_out;         /* TLS: records not yet taken; records to write (tls_io.c) */
    struct write_op *writing;      /* the write in progress, if any */
    uint64_t last_tx_progress_ms;  /* monotonic: last write started or done */
    held_t *held_head, *held_tail; /* replies waiting for commits, in order */
    /* flow.c: the subscriber this publisher waits on, its neighbours in
     * that subscriber's line, and this client's own line of waiters. */
    struct client *blocked_on, *blocked_next, *blocked_prev;
    struct client *waiters, *waiters_tail;
} client_io_t;

/* A connection over another transport (broker_conn_open). */
typedef struct {
    const broker_transport_t *ops;
    void *ctx;
    const char *kind; /* "ws", "wss": for listings */
    bool gone;        /* no call on the transport any more */
} transport_link_t;

struct client {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_check_t check; /* a transport's connection: never started, closed to free it */
    } h;
    transport_link_t *transport; /* NULL: the socket in h */
    broker_t *broker;
    listener_t *listener;
    client_t *next, *prev;   /* open: in its wheel slot; closed: closing or lingering */
    client_t *flush_next;    /* clients with output to flush this turn */
    client_t *ack_wait_next; /* in the broker's list of clients holding acks */
    session_t *session;
    client_io_t *io; /* NULL while idle */
    /* Who it is, once known (TLS: from the handshake; else at CONNECT):
     * stored as "thing:" + identity, the source of its messages, with
     * `identity` pointing past the prefix (client_source). */
    char *identity;
    will_t *will;             /* this connection's will, or NULL */
    topic_aliases_t *aliases; /* allocated on first use */
    SSL *ssl;                 /* TLS, with its memory BIOs: SSL_get_rbio / SSL_get_wbio */
    uint64_t last_rx_ms; /* connected: last input; before CONNECT: accept; lingering: its start */
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } peer; /* TCP: the peer's address (logs); AF_UNSPEC on unix sockets */
    /* Limits the client announced (v5). */
    uint32_t max_packet_out;
    uint16_t receive_max_out;
    uint16_t topic_alias_max_out;
    uint16_t identity_len;
    uint16_t keep_alive;
    /* Incoming QoS 1/2 not yet completed, for receive maximum. */
    uint32_t inflight_in;
    uint32_t connected_at; /* wall seconds of its accepted CONNECT (sedgectl things) */
    uint8_t state; /* client_state_t */
    uint8_t version;
    bool in_flush_list;
    bool in_closing_list;
    bool in_ack_wait;
    uint8_t paused; /* pause_reason_t bits: not reading while any is set */
    bool in_wheel;
    uint16_t wheel_slot; /* the second of its next deadline, modulo WHEEL_SLOTS (wheel.c) */
    bool send_will;      /* on close: publish the will */
    bool slow; /* made no progress for slow_reader_timeout_s: holds nobody back (flow.c) */
    bool request_problem_info;
    uint8_t linger;     /* linger_state_t */
    bool tls_resumable; /* TLS: let in, its session may be resumed (tls_tune.c) */
};

struct broker {
    uv_loop_t *loop;
    broker_limits_t limits;
    store_t *store;
    broker_hooks_t hooks;
    void *hooks_ctx;
    listener_t *listeners;
    /* Every open connection, by the second of its next deadline (wheel.c). */
    client_t *wheel[WHEEL_SLOTS];
    client_t *wheel_due; /* the slot being looked at */
    size_t wheel_count;
    uint64_t wheel_second; /* the next second the tick looks at */
    client_t *closing;     /* closed, their last output still being written */
    client_t *lingering;   /* closed, waiting for the peer to close (linger.c) */
    size_t lingering_count;
    client_t *flush_list;
    session_index_t sessions; /* client id -> session_t (session.c) */
    session_t *offline;       /* sessions without a connection */
    tree_t tree;
    uint64_t next_msg_id;
    uint64_t next_queue_seq;       /* numbers queued entries across all sessions */
    struct route_outcome *outcome; /* of the broker_route under way, or NULL */
    uint64_t awaited_batch;        /* newest batch the store will tell us of */
    client_t *ack_waiters;         /* clients holding acknowledgements */
    session_t *commit_waiters;     /* sessions with entries waiting for a commit */
    uint64_t match_epoch;
    /* Scratch for deliver_message: the matched subscriptions, then one
     * entry per receiving session. */
    sub_t **matched;
    size_t matched_count, matched_cap;
    struct delivery *deliveries;
    size_t delivery_cap;
    uint32_t *sub_id_scratch;
    size_t sub_id_scratch_cap;
    uint32_t *match_slots; /* per matched subscription: its delivery */
    /* The PUBLISH last encoded whole during a deliver_message that reaches
     * more than one session, so that each further subscriber of the same
     * shape (MQTT version, QoS, retain; nothing per subscriber in it) gets
     * a copy, its packet id patched in: a fan-out encodes a message once
     * per shape, not once per subscriber. Valid only inside that call. */
    struct {
        bool armed;       /* in a deliver_message with several sessions */
        const msg_t *msg; /* NULL: nothing kept */
        uint8_t version, qos;
        bool retain;
        size_t packet_id_at; /* offset of the packet id (QoS > 0) */
        buf_t bytes;
    } encoded;
    /* Output is flushed once per loop turn, just before the loop waits for
     * I/O (broker_before_wait), after the previous turn's reads and this
     * turn's timers. */
    uv_timer_t tick; /* once a second: keep alive, expiry, wills, $SYS */
    /* The next delayed will or session expiry, to the millisecond. */
    uv_timer_t deadline;
    uint64_t deadline_ms; /* when it fires; 0 when not armed */
    uint64_t last_sys_ms;
    size_t buffered_bytes; /* input and output held by all connections (max_buffered_bytes) */
    uint8_t *read_buf;     /* shared by every connection's reads */
    uint8_t *tls_plain;    /* shared: the plaintext of one TLS record (TLS_PLAIN_MAX) */
    client_t *tls_input_owner; /* tls_io.c: whose read is in read_buf now */
    listener_t transport_listener; /* what transport connections name as their listener */
    struct broker_watch *watches;  /* broker_watch */
    bytes_t tls_input;         /* and what of it the engine has not taken */
    size_t read_buf_len;
    broker_stats_t stats;
    bool shutting_down;
    uv_timer_t shutdown_timer; /* bounds how long the shutdown waits for clients */
    void (*shutdown_done)(void *);
    void *shutdown_ctx;
    size_t handles_open;
};

/* client.c */
/* Text naming a connection in logs. */
typedef struct {
    char text[300];
} client_label_t;
/* "address:port", or "unix:PATH" for a unix socket. */
client_label_t client_peer(const client_t *c);
/* The identity once known, else the peer. */
client_label_t client_name(const client_t *c);
/* The connection's topic aliases, allocated on first use; NULL on NOMEM. */
topic_aliases_t *client_aliases(client_t *c);
/* Its busy state, allocated on first use; NULL on NOMEM. */
client_io_t *client_io(client_t *c);
/* Give back the busy state of a connection that is idle (the tick). */
void client_io_trim(client_t *c);
/* Record the identity (at most UINT16_MAX bytes), stored as its source. */
NODISCARD sedge_err client_set_identity(client_t *c, bytes_t identity);
/* "thing:" + identity: where its messages come from, for routing. */
bytes_t client_source(const client_t *c);
/* Free what the client owns besides its handle, TLS and held replies. */
void client_free_state(client_t *c);
/* The broker's lists of clients (all, closing, lingering) through
 * next/prev: a client is on one at a time. */
void client_list_push(client_t **head, client_t *c);
void client_list_remove(client_t **head, client_t *c);

/* conn.c */
void client_accepted(listener_t *l, client_t *c);
/* Queue bytes for the client; they go out at the end of this loop turn. */
void client_send(client_t *c, const uint8_t *data, size_t len);
/* Room for an encoding of `len` bytes at the end of the output buffer;
 * commit with client_sent(). NULL on NOMEM. */
uint8_t *client_out_reserve(client_t *c, size_t len);
void client_out_commit(client_t *c, size_t len);
/* Should a payload of `len` bytes be shared (client_out_share) rather than
 * copied into the output? Big ones are, on TCP and TLS; a copy is cheaper
 * than the reference for small ones, and a transport copies anyway. */
bool client_out_shares(const client_t *c, size_t len);
/* Commit the `head` bytes written at client_out_reserve's pointer and
 * m's payload after them, holding a reference to the message instead of
 * copying the payload; false on NOMEM (nothing is queued). */
bool client_out_share(client_t *c, size_t head, msg_t *m);
/* Free the output queue (and its references) of a client going away. */
void client_out_free(client_t *c);
/* Close with a v5 DISCONNECT carrying `reason` (when v5 and connected),
 * logging why. */
void client_disconnect(client_t *c, uint8_t reason, const char *why);
void client_close(client_t *c);
/* Close every closed client still writing its last output (shutdown). */
void closing_cut_all(broker_t *b);
/* Close the socket now; the client is freed when libuv is done with it. */
void client_close_handle(client_t *c);
/* libuv's allocation callback for reads: the broker's shared read buffer. */
void client_read_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
/* Reading stops while any reason holds, and starts again (handling what
 * was buffered first) once none does. */
void client_pause_reading(client_t *c, pause_reason_t why);
void client_resume_reading(client_t *c, pause_reason_t why);
void broker_flush_all(broker_t *b);
size_t client_output_pending(const client_t *c);

/* flow.c: backpressure from subscribers that fall behind to the
 * connections publishing to them. */
bool flow_congested(const client_t *subscriber);
/* After delivering to `subscriber`: pause `publisher` (NULL: a service)
 * until the subscriber drains, if it is behind. */
void flow_block(client_t *publisher, client_t *subscriber);
/* The subscriber's output or queue shrank: resume its waiters once it has
 * drained enough. */
void flow_drained(client_t *subscriber);
/* The client is going away: stop waiting, and let its waiters go. */
void flow_forget(client_t *c);
/* Is the client in a waiting line (its busy state must stay)? */
bool flow_busy(const client_t *c);

/* How long a TLS session may be resumed after its full handshake. */
#define TLS_SESSION_LIFETIME_S 7200
/* How many sessions a TLS listener keeps for resumption (tls_tune.c). */
#define TLS_SESSION_CACHE_MAX 256
/* How long the session of a closed connection stays resumable. */
#define TLS_SESSION_CLOSED_S 300
/* tls_tune.c: a listener's context set up once for cheaper handshakes. */
void tls_tune_server(SSL_CTX *ctx);
/* Free a connection's TLS engine, keeping its session in the listener's
 * cache only when `resumable`. */
void tls_tune_free(SSL *ssl, bool resumable);
/* Once a second: free the sessions that expired. */
void tls_tune_tick(broker_t *b);

/* tls_verify.c: a listener's memory of the client certificates it
 * verified (by SHA-256 fingerprint, against its trust store and CRLs, while
 * the answer holds). */
NODISCARD sedge_err tls_verify_attach(SSL_CTX *ctx);
/* Was `cert` verified against the context's current store, and does the
 * answer still hold? */
bool tls_verify_known(SSL_CTX *ctx, X509 *cert);

/* tls_io.c: the TLS engine's I/O over the connection's own buffers. */
#define TLS_PLAIN_MAX 16384 /* the largest record's plaintext */
NODISCARD sedge_err tls_io_attach(client_t *c);
/* Around one read: the engine reads what the socket delivered; what it
 * left is kept (NOMEM: the connection must close). */
void tls_io_input(client_t *c, const uint8_t *data, size_t len);
NODISCARD sedge_err tls_io_input_done(client_t *c);
/* Move the records the engine produced to `out`. */
void tls_io_take_output(client_t *c, buf_t *out);
bool tls_io_output_pending(const client_t *c);

/* wheel.c: the open connections by the second of their next deadline. */
void wheel_add(broker_t *b, client_t *c, uint64_t due_ms);
void wheel_remove(broker_t *b, client_t *c);
/* Its deadline moved earlier: file it again. */
void wheel_refile(broker_t *b, client_t *c, uint64_t due_ms);
/* Look at the connections whose second has come, each taken out of the
 * wheel first; `visit` files it again or closes it. */
typedef void (*wheel_visit_fn)(broker_t *b, client_t *c, uint64_t now_ms);
void wheel_advance(broker_t *b, uint64_t now_ms, wheel_visit_fn visit);
/* A snapshot of the open connections (malloc'd; NULL, 0 on NOMEM): safe
 * to walk while handling them closes some. */
size_t broker_clients(broker_t *b, client_t ***out);
/* When the connection next needs the tick: its CONNECT deadline, keep
 * alive or slow-reader limit. */
uint64_t client_deadline(const broker_t *b, const client_t *c);

/* linger.c: a connection the broker ends with a refusal or a DISCONNECT
 * is shut down for writing once that is written, and what the peer still
 * sends is read and dropped until it closes too or LINGER_MS pass. Closing
 * a socket with unread input makes the kernel reset the connection, and a
 * reset can destroy the reason code before the peer has read it. */
#define LINGER_MS 2000u
/* At most this many at once: each holds a socket, and a flood of refused
 * connections must not use up the descriptors; past it, close at once. */
#define LINGER_MAX 1024u
/* Start lingering; an error (SEDGE_ERR_FULL past LINGER_MAX) means the
 * socket is to be closed now. */
NODISCARD sedge_err linger_start(client_t *c);
/* Close the lingering connections whose time is up (the tick). */
void lingering_expire(broker_t *b, uint64_t now_ms);
/* Close every lingering connection now (the broker is stopping). */
void lingering_close_all(broker_t *b);

/* handle_*.c: one per packet family; each returns an error only when the
 * connection must close (having logged and answered as appropriate). */
NODISCARD sedge_err handle_connect(client_t *c, const mqtt_frame_t *f);
NODISCARD sedge_err handle_publish(client_t *c, const mqtt_frame_t *f);
NODISCARD sedge_err handle_subscribe(client_t *c, const mqtt_frame_t *f);
NODISCARD sedge_err handle_unsubscribe(client_t *c, const mqtt_frame_t *f);
NODISCARD sedge_err handle_ack(client_t *c, const mqtt_frame_t *f);
NODISCARD sedge_err handle_disconnect(client_t *c, const mqtt_frame_t *f);
NODISCARD sedge_err handle_auth(client_t *c, const mqtt_frame_t *f);

/* held.c: replies that wait for the store. A reply with batch 0 needs no
 * commit but still waits behind earlier held ones, so order is kept. */
void held_ack(client_t *c, uint8_t type, uint16_t packet_id, uint8_t reason, uint64_t batch);
/* Takes `packet`'s bytes and the filters array (each malloc'd). */
void held_packet(client_t *c, held_kind_t kind, buf_t *packet, uint64_t batch, char **filters,
                 size_t filter_count);
/* Every batch up to `committed` is durable: release what waited for them. */
void broker_release_held(broker_t *b, uint64_t committed);
/* The client is going away: free its held replies and take it out of the
 * broker's list of clients waiting for a commit. */
void held_free_all(client_t *c);
/* Send the retained messages matching a subscription of the client's. */
void send_retained_for(client_t *c, sub_t *sub);
/* A protocol failure: v5 DISCONNECT with the reason, a log line, close. */
NODISCARD sedge_err protocol_violation(client_t *c, uint8_t reason, const char *why);

/* handle_connect.c: the properties a PUBLISH or will passes on to its
 * receivers, in wire form; returns the bytes needed. */
size_t forwarded_props_encode(const mqtt_props_t *in, uint8_t *out, size_t cap);

/* deliver.c: route a message to every matching subscription. `from` is
 * the publishing session (NULL for services); returns the number of
 * subscriptions it reached. */
size_t deliver_message(broker_t *b, msg_t *m, session_t *from);
/* Encode one PUBLISH to a connected client. False when it could not be
 * sent and never will (larger than the client accepts): the caller treats
 * the message as delivered, as MQTT 5 requires. */
bool send_publish(client_t *c, msg_t *m, uint8_t qos, bool retain, uint16_t packet_id, bool dup,
                  const uint32_t *sub_ids, size_t sub_id_count);
/* Set a retained message (or clear it, when the payload is empty);
 * `durable` writes it through the store ($SYS messages are not). */
void retain_message(broker_t *b, msg_t *m, bool durable);

/* session.c. Sessions are keyed by client id within their owner's
 * identity: on TLS another thing using the same client id has another
 * session, and can neither take over nor block this one. */
session_t *session_find(broker_t *b, bytes_t key);
/* The key of `owner`'s session `client_id`, built in `scratch` when it
 * differs from the client id; empty on NOMEM. */
bytes_t session_key_of(bytes_t owner, bytes_t client_id, buf_t *scratch);
/* The session's key: what the index and the store know it by. */
bytes_t session_key(const session_t *s);
session_t *session_create(broker_t *b, bytes_t client_id, bytes_t owner);
/* Loading from the store: append an entry as it was stored (in order of
 * seq), then settle the queue once every entry is in. */
void session_restore_entry(broker_t *b, session_t *s, out_msg_t *o);
void session_restore_done(session_t *s);
/* At broker shutdown: free every session, leaving the store as it is. */
void sessions_free_all(broker_t *b);
void session_destroy(broker_t *b, session_t *s);
void session_attach(session_t *s, client_t *c);
void session_detach(broker_t *b, session_t *s);
/* Queue a QoS 1/2 message; false when the queue is full (counted). */
bool session_enqueue(broker_t *b, session_t *s, msg_t *m, uint8_t qos, bool retain,
                     const uint32_t *sub_ids, size_t sub_id_count);
/* Send what the window and the store allow. */
void session_pump(broker_t *b, session_t *s);
/* Resend what was in flight (a session resumed). */
void session_resend_inflight(broker_t *b, session_t *s);
out_msg_t *session_find_inflight(session_t *s, uint16_t packet_id);
void session_complete(broker_t *b, session_t *s, out_msg_t *o);
void session_persist_state(broker_t *b, session_t *s, out_msg_t *o);
void session_save(broker_t *b, session_t *s);
sub_t *session_find_sub(session_t *s, bytes_t filter);
NODISCARD sedge_err session_add_sub(broker_t *b, session_t *s, sub_t *sub);
/* Write a persistent session's subscription (after its options changed). */
void session_save_sub(broker_t *b, session_t *s, const sub_t *sub);
void session_remove_sub(broker_t *b, session_t *s, sub_t *sub);
bool session_qos2_pending(session_t *s, uint16_t packet_id);
NODISCARD sedge_err session_qos2_add(session_t *s, uint16_t packet_id);
void session_qos2_remove(session_t *s, uint16_t packet_id);
/* When an offline session's own clock next needs the broker: its delayed
 * will or its expiry, whichever is first; UINT64_MAX for never. */
uint64_t session_next_deadline(const session_t *s);
/* Publish the delayed wills and end the sessions whose time has come, in
 * one pass over the offline sessions; returns the next deadline of those
 * left (UINT64_MAX for none). */
uint64_t sessions_run_deadlines(broker_t *b, uint64_t now_ms);
/* Arm the deadline timer for DUE_MS unless it fires earlier already. */
void broker_deadline_at(broker_t *b, uint64_t due_ms);

/* will.c */
void will_on_close(broker_t *b, client_t *c);
void will_cancel(broker_t *b, session_t *s);
void will_publish_now(broker_t *b, session_t *s);

void session_set_persistent(broker_t *b, session_t *s, bool persistent);

/* sys.c */
void sys_publish(broker_t *b);

/* persist.c */
NODISCARD sedge_err persist_load(broker_t *b);

/* listener.c */
void listeners_close(broker_t *b);
/* A TLS listener's context built again from its files, replacing the
 * old one for the next handshakes (connections keep theirs); on failure
 * (logged) the old one stays. */
NODISCARD sedge_err listener_reload_tls(listener_t *l);

/* revoke.c */
/* Does the deployed group revoke the client's certificate? */
bool client_certificate_revoked(client_t *c);
/* Does its listener's CRL revoke it? For a resumed session, whose chain
 * the handshake did not verify again. */
bool client_revoked_by_crl(client_t *c);
/* A TLS listener's trust: its CA, and the CRLs of crl_file (NULL: none). */
NODISCARD sedge_err listener_trust_store(const char *ca_file, const char *crl_file,
                                         X509_STORE **out);

/* broker.c */
void broker_handle_closed(broker_t *b);
/* Show a routed message to the watches whose filter matches. */
void broker_notify_watches(broker_t *b, const msg_t *m);
/* Pump the session again once `batch` has committed. */
void broker_wait_commit(broker_t *b, session_t *s, uint64_t batch);
/* Have the store tell the broker when `batch` has committed (once per
 * batch), to release what is held for it. */
void broker_await_batch(broker_t *b, uint64_t batch);
/* Is every write of `batch` durable? */
bool batch_durable(const broker_t *b, uint64_t batch);
/* What routing one message came to. */
typedef struct route_outcome {
    bool routed;  /* false: no route lets it flow (nothing was done) */
    bool durable; /* something was written to the store for it: acknowledge after the commit */
    bool refused; /* a queue, the store or a service had no room for it */
    bool invalid; /* a service refused its payload */
} route_outcome_t;
/* Route a message from a client (`from`: its session) or a service: ask
 * the router, then retain, deliver and hand it to the services. */
route_outcome_t broker_route(broker_t *b, msg_t *m, session_t *from);
/* Note, for the broker_route under way, a store write or a refusal. */
static inline void broker_note_durable(broker_t *b)
{
    if (b->outcome)
        b->outcome->durable = true;
}
static inline void broker_note_refused(broker_t *b)
{
    if (b->outcome)
        b->outcome->refused = true;
}
/* May a message reach this session (the router's decision)? Computes the
 * decision when the message carries none (retained, queued). */
bool broker_reaches(broker_t *b, msg_t *m, const session_t *s);

#define BROKER_READ_BUF (64 * 1024)

#endif
