/*
 * config: sedged's configuration — the JSON file given with --config, or
 * the embedded default when there is none — loaded, validated whole, with
 * errors that name the key, its line and what is expected. Relative paths
 * in the file are made relative to the file's directory.
 */
#ifndef SEDGE_CONFIG_H
#define SEDGE_CONFIG_H

#include "base/base.h"
#include "broker/broker.h"
#include "uplink/uplink.h"

#define CONFIG_MAX_LISTENERS 16
#define CONFIG_MAX_BINDS 4
#define CONFIG_MAX_CONNECTIVITY 16
#define CONFIG_MAX_ADMINS 16
#define CONSOLE_LOGIN_TTL_S 300 /* http.login_ttl_s by default */

/* One way a thing can reach the core, as discovery advertises it. */
typedef struct {
    char *id;
    char *host_address;
    uint16_t port;
    char *metadata; /* "" when none */
} connectivity_t;

/* The Greengrass discovery API, served by the core (off unless
 * "discovery" is configured). Files default to the first tls listener's. */
typedef struct {
    bool enabled;
    char *binds[CONFIG_MAX_BINDS];
    size_t bind_count;
    char *ca_file, *cert_file, *key_file, *crl_file;
    connectivity_t connectivity[CONFIG_MAX_CONNECTIVITY];
    size_t connectivity_count; /* 0: the host's addresses with the TLS MQTT port */
    char *group_id;            /* NULL: the deployed group's name */
    char *core_arn;            /* NULL: arn:aws:iot:local:000000000000:thing/CORE */
} discovery_config_t;

/* The HTTP front: /metrics and the web console on a loopback HTTP port,
 * and/or over TLS with client certificates; the limits of every HTTP and
 * WebSocket connection (discovery's and MQTT over WebSockets' too). */
typedef struct {
    char *bind;     /* plain HTTP, loopback only; NULL: none */
    char *tls_bind; /* HTTPS, a client certificate required; NULL: none */
    char *ca_file, *cert_file, *key_file, *crl_file; /* tls_bind's: default the first tls listener's */
    char *admins[CONFIG_MAX_ADMINS]; /* identities (certificate CNs) allowed the console over TLS */
    size_t admin_count;
    bool console, metrics;
    uint32_t max_connections;
    uint32_t timeout_s;
    uint32_t max_ws_frame_bytes;
    uint32_t login_ttl_s; /* how long a console login URL may wait to be used */
} http_config_t;

/* "ota": over-the-air updates (docs/ota.md); off without the section. */
typedef struct {
    bool enabled;
    char *root;          /* release slots and update state; default DATA_DIR/ota */
    char **trusted_keys; /* Ed25519 public keys (PEM) bundles must be signed by */
    size_t key_count;
    uint32_t health_timeout_s; /* a new release's health window */
    uint32_t tries;            /* starts a release on trial gets */
    char *ca_file;             /* CAs for https downloads; NULL: the system's */
    uint64_t max_bundle_bytes; /* a larger download is refused */
    uint64_t max_rate_bytes_s; /* download rate limit; 0: none */
    uint32_t stall_timeout_s;  /* a download with no byte for this long is cut */
    bool trial;                /* not config: sedged runs a release on trial (ota_boot) */
} ota_settings_t;

typedef struct {
    char *data_dir;
    char *thing_name;
    listener_config_t listeners[CONFIG_MAX_LISTENERS];
    size_t listener_count;
    /* MQTT over WebSockets, served by the HTTP front: type LISTENER_TCP
     * for "ws" (loopback only), LISTENER_TLS for "wss" (client
     * certificates, like tls). */
    listener_config_t ws_listeners[CONFIG_MAX_LISTENERS];
    size_t ws_listener_count;
    discovery_config_t discovery;
    http_config_t http;
    broker_limits_t limits;
    bool store_sync_full;
    uint32_t store_busy_timeout_ms;   /* 0: the store's default */
    size_t shadow_max_bytes;          /* largest shadow state document */
    bool functions_allow_root;        /* may functions run as uid 0 */
    size_t functions_max_frame_bytes; /* largest frame on the function socket */
    bool cloud_enabled;
    uplink_config_t cloud;
    ota_settings_t ota;
    log_level_t log_level;
    bool embedded_default; /* no file: generate a demo CA on first start */
} config_t;

/* The embedded default: ./sedge-data, TCP 127.0.0.1:1883, mTLS 0.0.0.0:8883
 * with the data directory's demo CA. */
NODISCARD sedge_err config_default(config_t *out);
/* Load and validate `path`; on error `err` holds every problem found, one
 * per line. */
NODISCARD sedge_err config_load(const char *path, config_t *out, char *err, size_t errlen);
void config_free(config_t *c);

#endif
