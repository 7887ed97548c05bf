/*
 * discovery: the Greengrass discovery API, served by the core itself.
 *
 *   GET /greengrass/discover/thing/{thingName}
 *
 * over TLS with a client certificate from the group's CA (the handshake
 * refuses anything else). 200 when the certificate's CN is thingName and
 * that thing is in the deployed group, with AWS's body:
 *   {"GGGroups":[{"GGGroupId":..,"Cores":[{"thingArn":..,"Connectivity":
 *    [{"Id","HostAddress","PortNumber","Metadata"}]}],"CAs":["PEM",..]}]}
 * 403 {"message","traceId"} for another thing's certificate, 404
 * {"errorMessage":"The thing provided for discovery was not found"} for
 * a thing not in the group, 405 for other methods, 400 for bad names.
 *
 * Connectivity is the config's, or the host's addresses with the TLS MQTT
 * port (Id AUTOIP_<address>_<n>, as Greengrass names them). CAs are
 * every CA the core's TLS listeners trust (both, during a CA rotation).
 */
#include "front.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "discovery"

#define DISCOVERY_PREFIX "/greengrass/discover/thing/"

int discovery_parse_path(const char *path, char *out, size_t cap)
{
    size_t plen = sizeof DISCOVERY_PREFIX - 1;
    if (!path || strncmp(path, DISCOVERY_PREFIX, plen) != 0)
        return 404;
    const char *name = path + plen;
    size_t n = strlen(name);
    if (n == 0 || n >= cap || !group_valid_thing_name(name, n))
        return 400;
    memcpy(out, name, n);
    out[n] = '\0';
    return 0;
}

/* Every certificate in a PEM file, each as its own PEM string, added to
 * `cas` unless already there. */
static void add_cas(json_t *cas, const char *file)
{
    if (!file)
        return;
    BIO *in = BIO_new_file(file, "r");
    if (!in) {
        LOGW("cannot read the CA file %s", file);
        return;
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
        BIO *out = BIO_new(BIO_s_mem());
        char *pem = NULL;
        long n = 0;
        if (out && PEM_write_bio_X509(out, x) == 1)
            n = BIO_get_mem_data(out, &pem);
        if (n > 0) {
            json_t *s = json_stringn(pem, (size_t)n);
            bool seen = false;
            size_t i;
            json_t *v;
            json_array_foreach(cas, i, v) seen |= json_equal(v, s);
            if (!seen)
                json_array_append(cas, s);
            json_decref(s);
        }
        BIO_free(out);
        X509_free(x);
    }
    ERR_clear_error();
    BIO_free(in);
}

static void port_of(const char *bind, uint16_t *port)
{
    char host[128];
    int p;
    if (http_parse_bind(bind, host, sizeof host, &p) == SEDGE_OK)
        *port = (uint16_t)p;
}

/* The addresses discovery advertises, as a Connectivity array. */
static json_t *connectivity(front_t *f)
{
    const discovery_config_t *d = &f->core->cfg.discovery;
    json_t *list = json_array();
    if (d->connectivity_count) {
        for (size_t i = 0; i < d->connectivity_count; i++) {
            const connectivity_t *ct = &d->connectivity[i];
            json_array_append_new(list, json_pack("{s:s,s:s,s:i,s:s}", "Id", ct->id, "HostAddress",
                                                  ct->host_address, "PortNumber", ct->port,
                                                  "Metadata", ct->metadata));
        }
        return list;
    }
    uv_interface_address_t *ifs;
    int count;
    if (uv_interface_addresses(&ifs, &count) != 0)
        return list;
    size_t n = 0;
    for (int i = 0; i < count; i++) {
        if (ifs[i].is_internal)
            continue;
        char addr[64];
        if (ifs[i].address.address4.sin_family == AF_INET) {
            uv_ip4_name(&ifs[i].address.address4, addr, sizeof addr);
        } else {
            const struct in6_addr *a6 = &ifs[i].address.address6.sin6_addr;
            if (IN6_IS_ADDR_LINKLOCAL(a6)) /* needs a scope a thing cannot know */
                continue;
            uv_ip6_name(&ifs[i].address.address6, addr, sizeof addr);
        }
        char id[96];
        snprintf(id, sizeof id, "AUTOIP_%s_%zu", addr, n++);
        json_array_append_new(list, json_pack("{s:s,s:s,s:i,s:s}", "Id", id, "HostAddress", addr,
                                              "PortNumber", f->tls_port, "Metadata", ""));
    }
    uv_free_interface_addresses(ifs, count);
    return list;
}

/* The core's server certificate must cover every advertised address, or
 * things that verify it (all do) will not connect: say so at start. */
static void check_sans(front_t *f)
{
    const config_t *cfg = &f->core->cfg;
    const char *cert_file = NULL;
    for (size_t i = 0; i < cfg->listener_count && !cert_file; i++)
        if (cfg->listeners[i].type == LISTENER_TLS)
            cert_file = cfg->listeners[i].cert_file;
    if (!cert_file)
        return;
    BIO *in = BIO_new_file(cert_file, "r");
    X509 *cert = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    if (!cert) {
        ERR_clear_error();
        return;
    }
    json_t *list = connectivity(f);
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *host = json_string_value(json_object_get(e, "HostAddress"));
        bool ip = X509_check_ip_asc(cert, host, 0) >= 0;
        bool covered = ip ? X509_check_ip_asc(cert, host, 0) == 1
                          : X509_check_host(cert, host, 0, 0, NULL) == 1;
        if (!covered)
            LOGW("discovery advertises %s, which the core's certificate %s does not cover: "
                 "things will refuse the connection. Add it: sedgectl ca init --san %s ..., or "
                 "list the addresses to advertise in discovery.connectivity",
                 host, cert_file, host);
    }
    json_decref(list);
    X509_free(cert);
}

sedge_err discovery_start(front_t *f)
{
    const config_t *cfg = &f->core->cfg;
    f->cas = json_array();
    if (!f->cas)
        return SEDGE_ERR_NOMEM;
    for (size_t i = 0; i < cfg->listener_count; i++)
        if (cfg->listeners[i].type == LISTENER_TLS) {
            add_cas(f->cas, cfg->listeners[i].ca_file);
            if (!f->tls_port)
                port_of(cfg->listeners[i].bind, &f->tls_port);
        }
    for (size_t i = 0; i < cfg->ws_listener_count; i++)
        if (cfg->ws_listeners[i].type == LISTENER_TLS)
            add_cas(f->cas, cfg->ws_listeners[i].ca_file);
    add_cas(f->cas, cfg->discovery.ca_file);
    if (!f->tls_port && !cfg->discovery.connectivity_count) {
        LOGE("discovery needs a tls listener (things connect to its port) or "
             "discovery.connectivity");
        return SEDGE_ERR_INVALID;
    }
    check_sans(f);
    return SEDGE_OK;
}

static void trace_id(char out[37])
{
    uint8_t r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        memset(r, 0, sizeof r);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

static void answer(front_t *f, http_request_t *req, int status, json_t *body, const char *headers)
{
    static const int codes[] = {200, 400, 403, 404, 405};
    size_t k = 0;
    while (k < ARRAY_LEN(codes) && codes[k] != status)
        k++;
    f->discovery_counts[k]++;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    http_respond(req, status, "application/json", headers, bytes_of_cstr(text ? text : "{}"));
    free(text);
}

static json_t *forbidden(const char *message)
{
    char id[37];
    trace_id(id);
    return json_pack("{s:s,s:s}", "message", message, "traceId", id);
}

void discovery_handle(void *ctx, http_request_t *req, const http_request_info_t *info)
{
    front_t *f = ctx;
    core_t *c = f->core;
    char thing[GROUP_MAX_NAME + 1];
    int bad = discovery_parse_path(info->path, thing, sizeof thing);
    if (bad == 404) {
        answer(f, req, 404, json_pack("{s:s}", "message", "Not Found"), NULL);
        return;
    }
    if (strcmp(info->method, "GET") != 0) {
        answer(f, req, 405, json_pack("{s:s}", "message", "Method Not Allowed"), "Allow: GET\r\n");
        return;
    }
    if (bad) {
        answer(f, req, 400, forbidden("Invalid thing name"), NULL);
        return;
    }
    if (!info->client_cn || strcmp(info->client_cn, thing) != 0) {
        LOGW("discovery of '%s' refused: the certificate is %s%s%s's", thing,
             info->client_cn ? "'" : "", info->client_cn ? info->client_cn : "nobody",
             info->client_cn ? "'" : "");
        answer(f, req, 403, forbidden("The certificate does not belong to the thing provided"),
               NULL);
        return;
    }
    const group_t *g = deploy_active_group(c->deploy);
    bytes_t name = bytes_of_cstr(thing);
    if (!g || !group_has_thing(g, name) || group_is_revoked(g, name)) {
        LOGI("discovery of '%s': not in the deployed group", thing);
        answer(f, req, 404,
               json_pack("{s:s}", "errorMessage", "The thing provided for discovery was not found"),
               NULL);
        return;
    }
    const discovery_config_t *d = &c->cfg.discovery;
    char arn[512];
    if (d->core_arn)
        snprintf(arn, sizeof arn, "%s", d->core_arn);
    else
        snprintf(arn, sizeof arn, "arn:aws:iot:local:000000000000:thing/%s", c->cfg.thing_name);
    json_t *core = json_pack("{s:s,s:o}", "thingArn", arn, "Connectivity", connectivity(f));
    json_t *group = json_pack("{s:s,s:[o],s:O}", "GGGroupId", d->group_id ? d->group_id : g->name,
                              "Cores", core, "CAs", f->cas);
    LOGD("discovery of '%s' answered", thing);
    answer(f, req, 200, json_pack("{s:[o]}", "GGGroups", group), NULL);
}
