/*
 * broker: Sedge's MQTT 3.1.1/5.0 server — listeners (TCP, TLS with client
 * certificates, unix sockets), connections, sessions, subscriptions, QoS
 * 0/1/2 in both directions, retained messages, wills, $SYS statistics — on
 * one libuv loop.
 *
 * Durability: a QoS 1/2 message owed to a persistent session, and a
 * retained message, are written through the store, and the publisher's
 * PUBACK/PUBREC is held back until the store reports that batch committed.
 * Messages to persistent sessions leave the broker only once their row is
 * committed, so nothing acknowledged is lost to kill -9.
 *
 * Other services (through routing) plug in with broker_hooks_t and inject
 * messages with broker_publish().
 *
 * Owns the listeners, every connection and its buffers, the sessions with
 * their subscriptions and queues, the topic tree with the retained
 * messages, and their rows in the store.
 */
#ifndef SEDGE_BROKER_H
#define SEDGE_BROKER_H

#include "base/base.h"
#include "store/store.h"

#include <netinet/in.h>
#include <uv.h>

typedef struct broker broker_t;

typedef enum { LISTENER_TCP, LISTENER_TLS, LISTENER_UNIX } listener_type_t;

typedef struct {
    listener_type_t type;
    const char *bind; /* "host:port", or a socket path for LISTENER_UNIX */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    const char *crl_file; /* TLS: PEM CRLs from the CA, reloaded on SIGHUP; NULL: none */
} listener_config_t;

typedef struct {
    uint32_t max_connections;
    uint32_t max_packet_bytes;      /* largest packet accepted and sent */
    uint32_t max_queued_messages;   /* QoS 1/2 messages per session */
    uint16_t max_inflight;          /* unacknowledged QoS 1/2, each way */
    uint16_t topic_alias_maximum;   /* aliases a v5 client may set */
    uint16_t max_keepalive;         /* seconds; longer requests are lowered */
    uint32_t max_session_expiry;    /* seconds */
    uint32_t sys_interval_s;        /* $SYS publishing period; 0 = off */
    size_t max_output_bytes;        /* unsent bytes per client before QoS 0 drops */
    uint32_t slow_reader_timeout_s; /* no write progress for this long: the policy below */
    bool slow_reader_drop;          /* then drop its QoS 0 (past max_output_bytes) instead of
                                     * disconnecting it */
    uint32_t connect_timeout_s;     /* from accept to CONNECT (TLS handshake included) */
    uint32_t max_connect_bytes;     /* largest packet before CONNECT is accepted */
    size_t max_buffered_bytes;      /* input and output buffered by all connections */
    uint32_t max_subscriptions;     /* per session */
    uint32_t max_filters_per_packet; /* in one SUBSCRIBE or UNSUBSCRIBE */
} broker_limits_t;

void broker_limits_default(broker_limits_t *l);

typedef struct {
    uint64_t started_at;  /* wall seconds */
    uint64_t connections; /* open now */
    uint64_t connections_total;
    uint64_t sessions; /* known now, online or not */
    uint64_t sessions_online; /* of those, with a connection (CONNECT accepted) */
    uint64_t sessions_persistent;
    uint64_t subscriptions;
    uint64_t retained;
    uint64_t msgs_in;
    uint64_t msgs_out;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t msgs_dropped; /* every message not delivered because of a limit */
    uint64_t queued;       /* QoS 1/2 messages waiting in sessions */
    uint64_t refused_connections;
    uint64_t protocol_errors;
    uint64_t buffered_bytes; /* input and output held by connections now */
    uint64_t flow_pauses;    /* publishers paused for a subscriber behind */
    uint64_t slow_readers;   /* subscribers that made no progress for slow_reader_timeout_s */
} broker_stats_t;

/* A message as services see it: views valid during the call. `source` is
 * an endpoint: "thing:NAME" for a client (NAME its identity), or the
 * service's own ("shadow", "function:NAME", "cloud"). */
typedef struct {
    bytes_t source;
    bytes_t topic;
    bytes_t payload;
    uint8_t qos;
    bool retain;
} broker_message_t;

/* What the service that authorises and routes (the router) decides. All
 * are optional; an absent hook allows everything. `identity` is a client's
 * authenticated name: the certificate's CN on TLS, the client id on TCP and
 * unix sockets. */
typedef struct {
    /* May this identity connect at all? */
    bool (*may_connect)(void *ctx, bytes_t identity);
    /* May a TLS client use this certificate (SHA-256 of its DER encoding,
     * big-endian serial number)? Asked at the handshake and again by
     * broker_recheck_connections. */
    bool (*may_use_certificate)(void *ctx, const uint8_t sha256[32], bytes_t serial);
    /* May it subscribe to this filter? */
    bool (*may_subscribe)(void *ctx, bytes_t identity, bytes_t filter);
    /* Where may a message from `source` on `topic` go? NULL: nowhere — the
     * publish is refused. The decision stays valid until the next call. */
    const void *(*route)(void *ctx, bytes_t source, bytes_t topic);
    /* Does that decision let the message reach subscriber `identity`? */
    bool (*reaches)(void *ctx, const void *route, bytes_t identity);
    /* After local delivery: the services the route names (shadow,
     * functions, cloud) take the message here, and answer with
     * BROKER_ROUTED_* flags: DURABLE when one wrote it to the store (the
     * publisher's acknowledgement then waits for the commit), REFUSED when
     * one refused it for lack of room (MQTT 5 publishers get 0x97), INVALID
     * when one refused its payload (a function that takes JSON; MQTT 5
     * publishers get 0x99). */
    int (*on_routed)(void *ctx, const void *route, const broker_message_t *m);
} broker_hooks_t;

enum { BROKER_ROUTED_DURABLE = 1, BROKER_ROUTED_REFUSED = 2, BROKER_ROUTED_INVALID = 4 };

NODISCARD sedge_err broker_create(uv_loop_t *loop, const broker_limits_t *limits, store_t *store,
                                  broker_t **out);
/* Restore persistent sessions, subscriptions, queues and retained
 * messages from the store. Call once, before listening. */
NODISCARD sedge_err broker_load(broker_t *b);
NODISCARD sedge_err broker_listen(broker_t *b, const listener_config_t *cfg);
/* Would broker_listen accept this address for this type? (ADDRESS:PORT
 * with a numeric address; tcp only on loopback; a unix path that fits.)
 * The config checks it at load, before anything is created. */
NODISCARD sedge_err broker_check_bind(listener_type_t type, const char *bind, char *why,
                                      size_t len);
void broker_set_hooks(broker_t *b, const broker_hooks_t *hooks, void *ctx);
void broker_get_stats(broker_t *b, broker_stats_t *out);

/* The end of a loop turn (core's before-wait hook): write the output
 * this turn produced, one write per connection. */
void broker_before_wait(broker_t *b);

/* Publish a message from a service, routed like any other (the buffers
 * are copied). SEDGE_ERR_DENIED when no route lets it flow. */
NODISCARD sedge_err broker_publish(broker_t *b, const broker_message_t *m);

/* Is some client subscribed to a filter matching `topic`? (Routes are not
 * consulted: a true answer may still reach nobody.) */
bool broker_has_subscribers(broker_t *b, bytes_t topic);

/* Disconnect every client whose identity or certificate is not accepted by
 * may_connect / may_use_certificate any more (after a deployment), within
 * this loop turn. Returns how many. */
size_t broker_recheck_connections(broker_t *b);

/* A connected client as sedgectl things shows it: views valid during
 * the call. */
typedef struct {
    const char *identity;  /* the certificate's CN (TLS), else the client id */
    const char *client_id;
    const char *address;   /* "ip:port", or "unix:PATH" */
    const char *listener;  /* the bind of the listener it came through, or "" */
    const char *transport; /* "tcp", "tls", "unix", "ws", "wss" */
    int64_t connected_at;  /* wall seconds of its accepted CONNECT */
    uint8_t version;       /* 4: MQTT 3.1.1, 5: MQTT 5 */
    bool persistent;       /* its session outlives the connection */
    uint32_t session_expiry_s;
    uint16_t keep_alive_s;
    uint32_t subscriptions;
    uint32_t queued;       /* messages waiting for it */
} broker_client_info_t;

/* Call `fn` for each client whose CONNECT was accepted, in no order. */
void broker_each_client(broker_t *b, void (*fn)(void *ctx, const broker_client_info_t *info),
                        void *ctx);

/* Reload the TLS listeners' certificates, keys, CAs and CRLs from their
 * files (SIGHUP; a listener whose files do not load keeps its previous
 * ones, logged) and disconnect the clients whose certificates the CRLs
 * revoke. Returns how many were disconnected; `*reloaded`: how many
 * listeners took new files. */
size_t broker_reload_tls(broker_t *b, size_t *reloaded);
/* New limits (SIGHUP), in force from now on; a connection's own
 * (max_inflight, topic_alias_maximum, max_keepalive) from its next
 * CONNECT. */
void broker_set_limits(broker_t *b, const broker_limits_t *limits);

/* Watching the messages the broker routes (the console's topic viewer):
 * `fn` sees each message whose topic matches `filter` once it has been
 * routed, whatever the routes let it reach. The views are valid during
 * the call. */
typedef struct broker_watch broker_watch_t;
typedef void (*broker_watch_fn)(void *ctx, const broker_message_t *m);
broker_watch_t *broker_watch(broker_t *b, const char *filter, broker_watch_fn fn, void *ctx);
void broker_unwatch(broker_t *b, broker_watch_t *w);

/* Connections over another transport (MQTT over WebSockets, served by
 * the core's HTTP front): the broker reads and writes their bytes through
 * these calls and knows nothing else of the transport. Each is a client
 * like any other, under the same limits, deadlines and identity rules. */
typedef struct client broker_conn_t;
typedef struct {
    /* Send `len` bytes (copied). One write at a time: the transport calls
     * broker_conn_written once it has taken them all, never from within
     * this call. Nonzero: it failed at once. */
    int (*write)(void *ctx, const uint8_t *data, size_t len);
    /* Stop or resume delivering input. */
    void (*pause)(void *ctx, bool paused);
    /* The broker is done with the connection: close it once what was
     * written has gone out. Nothing follows, from either side. */
    void (*close)(void *ctx);
    /* The peer's verified certificate (an X509 *), or NULL. */
    void *(*peer_certificate)(void *ctx);
} broker_transport_t;

typedef struct {
    const char *kind;                      /* for logs: "ws", "wss" */
    const struct sockaddr_storage *peer;   /* NULL: unknown */
    bytes_t identity; /* authenticated (a certificate's CN), or empty: the client id at CONNECT */
} broker_conn_info_t;

/* A new connection; NULL when refused (max_connections, NOMEM), logged. */
broker_conn_t *broker_conn_open(broker_t *b, const broker_transport_t *t, void *ctx,
                                const broker_conn_info_t *info);
/* Bytes from the peer. */
void broker_conn_input(broker_conn_t *c, const uint8_t *data, size_t len);
/* The transport took the last write (status 0) or failed it (< 0). */
void broker_conn_written(broker_conn_t *c, int status);
/* The transport's connection ended on its own (peer gone, or the
 * transport stopping): the broker closes its side and makes no call on
 * the transport any more. */
void broker_conn_gone(broker_conn_t *c);

/* Stop listening and close every connection (v5 clients get DISCONNECT
 * 0x8B); `done` runs once all are closed. */
void broker_shutdown(broker_t *b, void (*done)(void *ctx), void *ctx);
/* Free everything; the loop must have closed the broker's handles. */
void broker_free(broker_t *b);

#endif
