/*
 * tls_conn_mem: what OpenSSL keeps per idle server-side mTLS connection,
 * and what each way of releasing it saves. One process plays both ends:
 * N clients and N servers, each pair wired by memory BIOs as sedged's
 * connections are (or by a socketpair, as mosquitto's are, which read
 * and write the socket directly). Every allocation OpenSSL makes goes
 * through counting functions (CRYPTO_set_mem_functions) that charge it
 * to the side being driven, so the server's live bytes after the
 * handshake, one application record each way and the clients' end are
 * exactly what a broker holds in OpenSSL for its idle connections.
 *
 *   tls_conn_mem CA CERT KEY CLIENT_CERT CLIENT_KEY [N]
 *
 * Prints one line per variant: requested bytes and allocations per
 * connection (malloc adds about 16 bytes to each allocation).
 */
#define _GNU_SOURCE
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { SIDE_OTHER, SIDE_SERVER, SIDE_CLIENT, SIDES };

static int side = SIDE_OTHER;
static int64_t live_bytes[SIDES], live_allocs[SIDES];

/* A header before each block: its size and the side it was charged to. */
typedef struct {
    size_t size;
    int side;
    int pad;
} head_t;

static void *count_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    head_t *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->size = n;
    h->side = side;
    live_bytes[side] += (int64_t)n;
    live_allocs[side]++;
    return h + 1;
}

static void count_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (!p)
        return;
    head_t *h = (head_t *)p - 1;
    live_bytes[h->side] -= (int64_t)h->size;
    live_allocs[h->side]--;
    free(h);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
    if (!p)
        return count_malloc(n, file, line);
    head_t *h = (head_t *)p - 1;
    size_t old = h->size;
    int s = h->side;
    head_t *nh = realloc(h, sizeof *nh + n);
    if (!nh)
        return NULL;
    nh->size = n;
    live_bytes[s] += (int64_t)n - (int64_t)old;
    return nh + 1;
}

typedef struct {
    const char *name;
    bool release_buffers;
    bool no_tickets;
    bool socketpair; /* SSL_set_fd on a socketpair instead of memory BIOs */
    bool fresh_bios; /* memory BIOs replaced by empty ones once idle */
} variant_t;

typedef struct {
    SSL *server, *client;
    int fds[2];
} pair_t;

/* Bytes waiting in `from`'s write BIO go to `to`'s read BIO. */
static void shuttle(SSL *from, SSL *to, int from_side, int to_side)
{
    char buf[16384];
    int n;
    for (;;) {
        side = from_side;
        n = BIO_read(SSL_get_wbio(from), buf, sizeof buf);
        if (n <= 0)
            break;
        side = to_side;
        BIO_write(SSL_get_rbio(to), buf, n);
    }
    side = SIDE_OTHER;
}

static void pump(pair_t *p, bool sockets)
{
    if (!sockets) {
        shuttle(p->client, p->server, SIDE_CLIENT, SIDE_SERVER);
        shuttle(p->server, p->client, SIDE_SERVER, SIDE_CLIENT);
    }
}

/* The handshake, the client's CONNECT-sized record, the server's answer. */
static bool converse(pair_t *p, bool sockets)
{
    for (int i = 0; i < 50 && !(SSL_is_init_finished(p->client) && SSL_is_init_finished(p->server));
         i++) {
        side = SIDE_CLIENT;
        SSL_do_handshake(p->client);
        pump(p, sockets);
        side = SIDE_SERVER;
        SSL_do_handshake(p->server);
        pump(p, sockets);
    }
    if (!SSL_is_init_finished(p->client) || !SSL_is_init_finished(p->server))
        return false;
    char msg[64] = "CONNECT", in[64];
    side = SIDE_CLIENT;
    SSL_write(p->client, msg, sizeof msg);
    pump(p, sockets);
    side = SIDE_SERVER;
    bool ok = SSL_read(p->server, in, sizeof in) == (int)sizeof in;
    SSL_write(p->server, "ACK!", 4);
    pump(p, sockets);
    side = SIDE_CLIENT;
    ok = ok && SSL_read(p->client, in, 4) == 4; /* reads the tickets too */
    side = SIDE_OTHER;
    return ok;
}

static SSL_CTX *server_ctx(const variant_t *v, char **argv)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (v->release_buffers)
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (v->no_tickets)
        SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_use_certificate_chain_file(ctx, argv[2]);
    SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM);
    SSL_CTX_load_verify_locations(ctx, argv[1], NULL);
    SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(argv[1]));
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"bench", 5);
    return ctx;
}

static SSL_CTX *client_ctx(char **argv)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_load_verify_locations(ctx, argv[1], NULL);
    SSL_CTX_use_certificate_chain_file(ctx, argv[4]);
    SSL_CTX_use_PrivateKey_file(ctx, argv[5], SSL_FILETYPE_PEM);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static void attach(SSL *s, bool sockets, int fd)
{
    if (sockets)
        SSL_set_fd(s, fd);
    else
        SSL_set_bio(s, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
}

static int run(const variant_t *v, char **argv, int n)
{
    SSL_CTX *sctx = server_ctx(v, argv), *cctx = client_ctx(argv);
    pair_t *pairs = calloc((size_t)n, sizeof *pairs);
    if (!pairs)
        return 1;
    int64_t base = live_bytes[SIDE_SERVER], base_allocs = live_allocs[SIDE_SERVER];
    for (int i = 0; i < n; i++) {
        pair_t *p = &pairs[i];
        if (v->socketpair && socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fds) != 0) {
            perror("socketpair");
            return 1;
        }
        side = SIDE_SERVER;
        p->server = SSL_new(sctx);
        attach(p->server, v->socketpair, p->fds[0]);
        SSL_set_accept_state(p->server);
        side = SIDE_CLIENT;
        p->client = SSL_new(cctx);
        attach(p->client, v->socketpair, p->fds[1]);
        SSL_set_connect_state(p->client);
        side = SIDE_OTHER;
        if (!converse(p, v->socketpair)) {
            fprintf(stderr, "%s: connection %d: handshake failed: %s\n", v->name, i,
                    ERR_error_string(ERR_get_error(), NULL));
            return 1;
        }
        if (v->fresh_bios) {
            /* An idle connection's BIOs are empty: new ones hold nothing. */
            side = SIDE_SERVER;
            SSL_set_bio(p->server, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
        }
        side = SIDE_CLIENT;
        SSL_free(p->client); /* the client's end is not the broker's */
        p->client = NULL;
        side = SIDE_OTHER;
    }
    double per = (double)(live_bytes[SIDE_SERVER] - base) / n;
    double allocs = (double)(live_allocs[SIDE_SERVER] - base_allocs) / n;
    printf("%-58s %8.0f bytes %6.1f allocations per idle connection (%s %s)\n", v->name, per,
           allocs, SSL_get_version(pairs[0].server), SSL_get_cipher_name(pairs[0].server));
    side = SIDE_SERVER;
    for (int i = 0; i < n; i++) {
        SSL_free(pairs[i].server);
        if (v->socketpair) {
            close(pairs[i].fds[0]);
            close(pairs[i].fds[1]);
        }
    }
    side = SIDE_OTHER;
    free(pairs);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}

/* What the parsed client certificate alone takes: the session keeps it. */
static void certificate_size(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    int64_t before = live_bytes[SIDE_SERVER], ab = live_allocs[SIDE_SERVER];
    side = SIDE_SERVER;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    side = SIDE_OTHER;
    fclose(f);
    printf("%-58s %8lld bytes %6lld allocations\n", "of which: the client certificate, parsed (X509)",
           (long long)(live_bytes[SIDE_SERVER] - before), (long long)(live_allocs[SIDE_SERVER] - ab));
    side = SIDE_SERVER;
    X509_free(x);
    side = SIDE_OTHER;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: tls_conn_mem CA CERT KEY CLIENT_CERT CLIENT_KEY [N]\n");
        return 2;
    }
    if (!CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free)) {
        fprintf(stderr, "tls_conn_mem: OpenSSL has allocated already\n");
        return 1;
    }
    int n = argc > 6 ? atoi(argv[6]) : 200;
    static const variant_t variants[] = {
        {"memory BIOs, OpenSSL defaults", false, false, false, false},
        {"memory BIOs + SSL_MODE_RELEASE_BUFFERS (sedged today)", true, false, false, false},
        {"  + no session tickets (num_tickets 0)", true, true, false, false},
        {"  + empty BIOs once idle (drop the BUF_MEMs' capacity)", true, false, false, true},
        {"  + both", true, true, false, true},
        {"socket BIO (SSL_set_fd, mosquitto's way) + RELEASE_BUFFERS", true, false, true, false},
        {"socket BIO, OpenSSL defaults", false, false, true, false},
    };
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++)
        if (run(&variants[i], argv, n))
            return 1;
    certificate_size(argv[4]);
    return 0;
}
