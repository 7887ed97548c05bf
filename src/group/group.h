/*
 * group: the group document — which things belong to the core, the routes
 * messages may take between things, functions, connectors, the shadow
 * service and the cloud, and the sections later services read (functions,
 * resources, connectors, shadows). Parsing validates everything before
 * anything is used, and reports every problem at once, each naming its
 * JSON path: `routes[2].target: unknown function "alarm"`.
 */
#ifndef SEDGE_GROUP_H
#define SEDGE_GROUP_H

#include "base/base.h"

#include <jansson.h>

#define GROUP_MAX_BYTES_DEFAULT (4u << 20)
#define GROUP_MAX_NAME 128
#define GROUP_MAX_ENV 64               /* variables in a function's "env" */
#define GROUP_MAX_ENV_BYTES (32 << 10) /* their names and values together */

typedef enum {
    ENDPOINT_THING,     /* thing:NAME */
    ENDPOINT_ANY_THING, /* thing:* */
    ENDPOINT_FUNCTION,  /* function:NAME */
    ENDPOINT_CONNECTOR, /* connector:NAME */
    ENDPOINT_CLOUD,     /* cloud */
    ENDPOINT_SHADOW,    /* shadow */
    ENDPOINT_KIND_COUNT
} endpoint_kind_t;

typedef struct {
    endpoint_kind_t kind;
    char *name; /* thing, function or connector name; NULL otherwise */
    size_t name_len;
} endpoint_t;

typedef struct {
    endpoint_t source;
    endpoint_t target;
    char *filter;
    size_t filter_len;
    int qos; /* the route's "qos" (0 or 1), or -1 when not given */
    /* Router-made reply routes of `thing:* -> shadow`: deliver only to the
     * thing the topic names ($aws/things/NAME/...), not to every thing. */
    bool own_shadow_only;
    char *text; /* "source -> filter -> target", for status and logs */
} route_t;

/* A certificate the group revokes: by the SHA-256 of its DER encoding,
 * or by its serial number (big-endian, without leading zero bytes). */
typedef struct {
    bool by_serial;
    uint8_t len;
    uint8_t bytes[32];
} revoked_cert_t;

typedef struct {
    char *name;
    char *checksum; /* sha256 of the document text, hex */
    char **things;
    size_t thing_count;
    route_t *routes;
    size_t route_count;
    char **revoked;
    size_t revoked_count;
    revoked_cert_t *revoked_certs; /* "revoked_certificates" */
    size_t revoked_cert_count;
    json_t *doc; /* the whole document, for the sections services read */
} group_t;

/* Parse and validate a group document. On SEDGE_ERR_INVALID (or
 * SEDGE_ERR_TOO_LARGE) `errors` holds one problem per line. */
NODISCARD sedge_err group_parse(const char *text, size_t len, size_t max_bytes, group_t **out,
                                buf_t *errors);
void group_free(group_t *g);

/* "thing:lamp", "cloud"... into buf (NUL-terminated). */
void endpoint_format(const endpoint_t *e, char *buf, size_t len);

bool group_has_thing(const group_t *g, bytes_t name);
bool group_is_revoked(const group_t *g, bytes_t name);
/* Does the group revoke the certificate with this SHA-256 fingerprint or
 * this serial number (big-endian bytes)? */
bool group_cert_revoked(const group_t *g, const uint8_t sha256[32], bytes_t serial);
/* The function and connector sections, as validated JSON (borrowed;
 * NULL when absent). */
json_t *group_functions(const group_t *g);
/* The group's "resources" (borrowed; NULL when absent), and one by id. */
json_t *group_resources(const group_t *g);
json_t *group_resource(const group_t *g, const char *id);
/* Resource ids: 1 to 128 of a-z A-Z 0-9 : _ - */
bool group_valid_resource_id(const char *s, size_t len);
json_t *group_connectors(const group_t *g);

/* The connector types Sedge ships (group/connectors.c): what the function
 * runtime needs to run one. */
typedef struct {
    const char *type;   /* "modbus", the program's name under the connectors directory */
    bool sysfs;         /* sees /sys */
    uint32_t memory_mb; /* default memory limit */
} connector_type_t;

/* The type of a validated connector entry; NULL for an unknown one. */
const connector_type_t *group_connector_type(json_t *connector);
/* Does this connector need the host's network (Modbus TCP, the HTTP
 * sink), or may it have an empty network namespace? */
bool group_connector_network(json_t *connector);

/* Secrets (secrets.c): seal every secret resource's "value" in a parsed
 * document into "sealed" (AES-256-GCM with the core's sealing key, asked
 * of `key` only when there is a value to seal: SEDGE_ERR_DENIED when it
 * cannot be had); *changed when one was. Unseal one: SEDGE_ERR_DENIED when
 * the key or the id is not the one it was sealed with. */
#define GROUP_SEAL_KEY_BYTES 32
/* The core's sealing key, made or derived on first use, so that a core
 * with no secrets never pays for it: get returns its GROUP_SEAL_KEY_BYTES
 * bytes, or NULL when it cannot be had (the provider logs why). A NULL
 * get: this core has no key. */
typedef struct {
    const uint8_t *(*get)(void *ctx);
    void *ctx;
} group_seal_key_t;
NODISCARD sedge_err group_seal_secrets(json_t *doc, const group_seal_key_t *key, bool *changed);
/* One value sealed for `id` (malloc'd; NULL: out of memory). */
char *group_seal_value(const char *id, const uint8_t *value, size_t len,
                       const uint8_t key[GROUP_SEAL_KEY_BYTES]);
NODISCARD sedge_err group_unseal(const char *id, const char *sealed,
                                 const uint8_t key[GROUP_SEAL_KEY_BYTES], buf_t *out);

/* Thing, shadow and function names Sedge accepts. */
bool group_valid_thing_name(const char *s, size_t len);

#endif
