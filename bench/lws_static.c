/*
 * lws_static: the reference of the discovery benchmark — libwebsockets
 * (the library sedged's HTTP front uses), on a libuv loop of its own given
 * as a foreign loop as sedged does, with the same TLS setup (a server
 * certificate, client certificates required from a CA), answering every
 * request with a fixed body of --size bytes. What it costs is what lws and
 * TLS cost; what sedged's discovery costs beyond it is ours.
 *
 *   lws_static --port N --ca CA --cert CERT --key KEY [--size BYTES]
 * Stops on SIGTERM.
 */
#include <libwebsockets.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static char *body;
static size_t body_len = 1500;
static struct lws_context *context;
static uv_signal_t sigterm;

typedef struct {
    int sent;
} pss_t;

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    pss_t *pss = user;
    (void)in;
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        return !len; /* refuse what OpenSSL refused */
    case LWS_CALLBACK_HTTP: {
        uint8_t buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
        pss->sent = 0;
        if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "application/json", body_len, &p,
                                        end) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return 1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        uint8_t *buf = malloc(LWS_PRE + body_len);
        if (!buf)
            return -1;
        memcpy(buf + LWS_PRE, body, body_len);
        int w = lws_write(wsi, buf + LWS_PRE, body_len, LWS_WRITE_HTTP_FINAL);
        free(buf);
        if (w != (int)body_len)
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static void on_sigterm(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_close((uv_handle_t *)h, NULL);
    lws_context_destroy(context);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"port", 1, 0, 'p'}, {"ca", 1, 0, 'a'},
                                         {"cert", 1, 0, 'c'}, {"key", 1, 0, 'k'},
                                         {"size", 1, 0, 's'}, {0, 0, 0, 0}};
    int port = 0, o;
    const char *ca = NULL, *cert = NULL, *key = NULL;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p': port = atoi(optarg); break;
        case 'a': ca = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 's': body_len = (size_t)atol(optarg); break;
        default: return 2;
        }
    }
    if (!port || !ca || !cert || !key) {
        fprintf(stderr, "usage: lws_static --port N --ca CA --cert CERT --key KEY [--size N]\n");
        return 2;
    }
    body = malloc(body_len);
    memset(body, 'x', body_len);
    lws_set_log_level(LLL_ERR, NULL);
    uv_loop_t *loop = uv_default_loop();
    static const struct lws_protocols protocols[] = {
        {"http", callback, sizeof(pss_t), 0, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {loop};
    info.foreign_loops = loops;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                   LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
                   LWS_SERVER_OPTION_NO_LWS_SYSTEM_STATES;
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.ssl_cert_filepath = cert;
    info.ssl_private_key_filepath = key;
    info.ssl_ca_filepath = ca;
    info.alpn = "http/1.1";
    info.fd_limit_per_thread = 1024;
    info.pcontext = &context;
    context = lws_create_context(&info);
    if (!context) {
        fprintf(stderr, "lws_static: cannot start\n");
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_sigterm, SIGTERM);
    fprintf(stderr, "lws_static ready on 127.0.0.1:%d\n", port);
    uv_run(loop, UV_RUN_DEFAULT);
    lws_context_destroy(context);
    free(body);
    return 0;
}
