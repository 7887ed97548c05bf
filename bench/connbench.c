/*
 * connbench: connections rather than messages. It opens MQTT connections
 * to a broker, over plain TCP or mutual TLS, with its own minimal client
 * (a CONNECT, a CONNACK) on OpenSSL directly, because what it measures is
 * what libmosquitto hides or does badly at scale: session resumption
 * (libmosquitto cannot resume a TLS session) and tens of thousands of
 * connections (libmosquitto builds an SSL_CTX, and reads the PEM files,
 * per client). All connections share one client SSL_CTX.
 *
 *   --mode rate  connect, handshake, CONNECT, CONNACK, DISCONNECT, close,
 *                again, for --duration seconds on --threads threads; the
 *                rate of completed connections. With --resume each thread
 *                offers the TLS session (a TLS 1.3 ticket) of its previous
 *                connection, and the line says how many were resumed.
 *                The CONNACK is awaited so that the broker's whole work is
 *                counted: in TLS 1.3 the client is done with the handshake
 *                before the broker has verified the client's certificate.
 *   --mode hold  open --connections connections, each CONNECTed, and hold
 *                them idle until SIGTERM or --hold seconds; prints a line
 *                "event=connected ... connect_s=" once all are up, and at
 *                the end how many the broker closed meanwhile.
 *
 * --sources N binds connection i to 127.0.0.(1 + i % N): one source address
 * has about 28,000 ephemeral ports, so 50,000 connections need several.
 * Output: one line of key=value pairs, as bench/loadgen's.
 */
#define _GNU_SOURCE
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull
#define IO_TIMEOUT_S 10 /* a broker that stops answering fails the run, it does not hang it */

typedef enum { MODE_RATE, MODE_HOLD } bench_mode_t;

static struct {
    bench_mode_t mode;
    const char *host;
    int port;
    bool tls;
    bool resume;
    const char *cafile, *certfile, *keyfile;
    int threads;
    double duration_s;
    int connections;
    int sources;
    int keepalive;
    double hold_s;
    double timeout_s;
    const char *label;
} opt = {
    .mode = MODE_RATE,
    .host = "127.0.0.1",
    .port = 8883,
    .threads = 4,
    .duration_s = 3,
    .connections = 1000,
    .sources = 1,
    .keepalive = 60,
    .timeout_s = 300,
};

static SSL_CTX *ctx;
static struct sockaddr_in broker;
static uint32_t run_id;
static uint64_t deadline_ns;
static atomic_int next_index; /* hold: the next connection to open */
static atomic_bool failed;
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static char error_text[256];
static volatile sig_atomic_t signalled;

/* hold: the descriptors held open, by connection index. */
static int *held_fds;

/* What the threads counted; summed at the end. */
typedef struct {
    pthread_t thread;
    int index;
    uint64_t done, reused, failures;
    SSL_SESSION *session; /* rate --resume: offered to the next connection */
    char protocol[16], cipher[64], group[32];
} worker_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    pthread_mutex_lock(&error_lock);
    if (!atomic_load(&failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error_text, sizeof error_text, fmt, ap);
        va_end(ap);
        atomic_store(&failed, true);
    }
    pthread_mutex_unlock(&error_lock);
}

static const char *ssl_error(void)
{
    static __thread char buf[160];
    unsigned long e = ERR_get_error();
    if (!e)
        return errno ? strerror(errno) : "closed by the broker";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

/* A TCP connection to the broker from source address 127.0.0.(1 + index % sources). */
static int tcp_connect(int index)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.sources > 1) {
        struct sockaddr_in src = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(index % opt.sources))};
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&broker, sizeof broker) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* An MQTT 3.1.1 CONNECT with a clean session and client id `id`. */
static size_t connect_packet(uint8_t *out, const char *id)
{
    size_t idlen = strlen(id), rem = 10 + 2 + idlen, n = 0;
    out[n++] = 0x10;
    out[n++] = (uint8_t)rem; /* ids are short: one length byte */
    static const uint8_t head[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02};
    memcpy(out + n, head, sizeof head);
    n += sizeof head;
    out[n++] = (uint8_t)(opt.keepalive >> 8);
    out[n++] = (uint8_t)opt.keepalive;
    out[n++] = (uint8_t)(idlen >> 8);
    out[n++] = (uint8_t)idlen;
    memcpy(out + n, id, idlen);
    return n + idlen;
}

static bool io_write(int fd, SSL *ssl, const uint8_t *p, size_t len)
{
    if (ssl)
        return SSL_write(ssl, p, (int)len) == (int)len;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

static bool io_read(int fd, SSL *ssl, uint8_t *p, size_t len)
{
    while (len > 0) {
        int r = ssl ? SSL_read(ssl, p, (int)len) : (int)recv(fd, p, len, 0);
        if (r <= 0)
            return false;
        p += r;
        len -= (size_t)r;
    }
    return true;
}

/* One connection up to its CONNACK. On success *sslp holds the TLS state
 * (NULL over TCP) and the descriptor is returned; -1 on failure, said. */
static int open_connection(worker_t *w, int index, SSL **sslp)
{
    errno = 0;
    *sslp = NULL;
    int fd = tcp_connect(index);
    if (fd < 0) {
        fail("connection %d: cannot connect to %s:%d: %s", index, opt.host, opt.port,
             strerror(errno));
        return -1;
    }
    SSL *ssl = NULL;
    if (opt.tls) {
        ssl = SSL_new(ctx);
        if (!ssl || !SSL_set_fd(ssl, fd)) {
            fail("SSL_new: %s", ssl_error());
            goto fail;
        }
        if (w->session)
            SSL_set_session(ssl, w->session);
        if (SSL_connect(ssl) != 1) {
            fail("connection %d: TLS handshake failed: %s", index, ssl_error());
            goto fail;
        }
    }
    char id[48];
    snprintf(id, sizeof id, "cb-%08x-%d-%llu", run_id, index, (unsigned long long)w->done);
    uint8_t pkt[96], ack[4];
    size_t n = connect_packet(pkt, id);
    if (!io_write(fd, ssl, pkt, n) || !io_read(fd, ssl, ack, sizeof ack)) {
        fail("connection %d: no CONNACK: %s", index, ssl ? ssl_error() : strerror(errno));
        goto fail;
    }
    if (ack[0] != 0x20 || ack[1] != 2 || ack[3] != 0) {
        fail("connection %d: the broker refused the CONNECT (CONNACK %02x %02x %02x %02x)", index,
             ack[0], ack[1], ack[2], ack[3]);
        goto fail;
    }
    if (ssl && !w->protocol[0]) {
        snprintf(w->protocol, sizeof w->protocol, "%s", SSL_get_version(ssl));
        snprintf(w->cipher, sizeof w->cipher, "%s", SSL_get_cipher_name(ssl));
        int g = SSL_get_negotiated_group(ssl);
        const char *gn = g > 0 ? OBJ_nid2sn(g) : NULL;
        snprintf(w->group, sizeof w->group, "%s", gn ? gn : "none");
    }
    *sslp = ssl;
    return fd;
fail:
    if (ssl)
        SSL_free(ssl);
    close(fd);
    return -1;
}

static void *rate_worker(void *arg)
{
    worker_t *w = arg;
    static const uint8_t disconnect[] = {0xe0, 0};
    while (now_ns() < deadline_ns && !atomic_load(&failed) && !signalled) {
        SSL *ssl;
        int fd = open_connection(w, w->index, &ssl);
        if (fd < 0) {
            w->failures++;
            return NULL;
        }
        w->done++;
        if (ssl && SSL_session_reused(ssl))
            w->reused++;
        io_write(fd, ssl, disconnect, sizeof disconnect);
        if (ssl) {
            if (opt.resume) {
                /* The newest ticket, for the next connection. */
                SSL_SESSION *s = SSL_get1_session(ssl);
                if (s && SSL_SESSION_is_resumable(s)) {
                    SSL_SESSION_free(w->session);
                    w->session = s;
                } else {
                    SSL_SESSION_free(s);
                }
            }
            SSL_shutdown(ssl);
            SSL_free(ssl);
        }
        close(fd);
    }
    return NULL;
}

static void *hold_worker(void *arg)
{
    worker_t *w = arg;
    int i;
    while ((i = atomic_fetch_add(&next_index, 1)) < opt.connections) {
        if (atomic_load(&failed) || signalled || now_ns() > deadline_ns)
            return NULL;
        SSL *ssl;
        int fd = open_connection(w, i, &ssl);
        if (fd < 0) {
            w->failures++;
            return NULL;
        }
        /* The broker keeps its TLS state; ours is not needed to stay idle. */
        if (ssl)
            SSL_free(ssl);
        held_fds[i] = fd;
        w->done++;
    }
    return NULL;
}

static bool make_context(void)
{
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return false;
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, opt.cafile, NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, opt.certfile) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, opt.keyfile, SSL_FILETYPE_PEM) != 1) {
        fail("cannot load the TLS files: %s", ssl_error());
        return false;
    }
    /* The session object keeps its ticket only with a client cache mode. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return true;
}

static void on_signal(int sig)
{
    (void)sig;
    signalled = 1;
}

static void print_error(void)
{
    if (!atomic_load(&failed))
        return;
    printf(" error=\"");
    for (const char *p = error_text; *p; p++)
        putchar(*p == '"' ? '\'' : *p);
    printf("\"");
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: connbench --mode rate|hold [options]\n"
            "Opens MQTT connections (TCP or mutual TLS) and prints one key=value line.\n"
            "  --mode rate        connect, CONNECT/CONNACK, close, repeat (--duration S)\n"
            "  --mode hold        hold --connections N idle connections\n"
            "  --host H --port P  the broker (127.0.0.1:8883)\n"
            "  --cafile F --cert F --key F  mutual TLS (all three; else plain TCP)\n"
            "  --resume           rate: offer the previous connection's TLS session\n"
            "  --threads N        connecting threads (4)\n"
            "  --duration S       rate: seconds (3)\n"
            "  --connections N    hold: connections (1000)\n"
            "  --sources N        source addresses 127.0.0.1 .. 127.0.0.N (1)\n"
            "  --keepalive S      the CONNECT's keep alive (60)\n"
            "  --hold S           hold: seconds; 0 = until SIGTERM/SIGINT (0)\n"
            "  --timeout S        hold: give up connecting after S seconds (300)\n"
            "  --label TEXT       copied into the output line\n");
}

static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, 'm'},      {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},      {"cafile", required_argument, NULL, 'A'},
        {"cert", required_argument, NULL, 'C'},      {"key", required_argument, NULL, 'K'},
        {"resume", no_argument, NULL, 'r'},          {"threads", required_argument, NULL, 't'},
        {"duration", required_argument, NULL, 'd'},  {"connections", required_argument, NULL, 'n'},
        {"sources", required_argument, NULL, 's'},   {"keepalive", required_argument, NULL, 'k'},
        {"hold", required_argument, NULL, 'o'},      {"timeout", required_argument, NULL, 'T'},
        {"label", required_argument, NULL, 'l'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (o) {
        case 'm':
            if (strcmp(optarg, "rate") == 0)
                opt.mode = MODE_RATE;
            else if (strcmp(optarg, "hold") == 0)
                opt.mode = MODE_HOLD;
            else
                goto bad;
            break;
        case 'H': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'A': opt.cafile = optarg; break;
        case 'C': opt.certfile = optarg; break;
        case 'K': opt.keyfile = optarg; break;
        case 'r': opt.resume = true; break;
        case 't': opt.threads = atoi(optarg); break;
        case 'd': opt.duration_s = atof(optarg); break;
        case 'n': opt.connections = atoi(optarg); break;
        case 's': opt.sources = atoi(optarg); break;
        case 'k': opt.keepalive = atoi(optarg); break;
        case 'o': opt.hold_s = atof(optarg); break;
        case 'T': opt.timeout_s = atof(optarg); break;
        case 'l': opt.label = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
    }
    opt.tls = opt.cafile || opt.certfile || opt.keyfile;
    if (opt.tls && !(opt.cafile && opt.certfile && opt.keyfile)) {
        fprintf(stderr, "connbench: --cafile, --cert and --key go together\n");
        return 2;
    }
    if (opt.port < 1 || opt.port > 65535 || opt.threads < 1 || opt.threads > 256 ||
        opt.connections < 1 || opt.sources < 1 || opt.sources > 254 || opt.keepalive < 0 ||
        opt.keepalive > 65535 || opt.duration_s <= 0 || (opt.resume && !opt.tls))
        goto bad;
    return 0;
bad:
    fprintf(stderr, "connbench: invalid arguments (see --help)\n");
    return 2;
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
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    const char *mode = opt.mode == MODE_RATE ? "rate" : "hold";
    if (opt.mode == MODE_HOLD && (rlim_t)opt.connections + 32 > rl.rlim_cur) {
        printf("mode=hold connections=%d status=error error=\"%d connections need %d file "
               "descriptors, the limit is %llu (raise ulimit -n)\"\n",
               opt.connections, opt.connections, opt.connections + 32,
               (unsigned long long)rl.rlim_cur);
        return 1;
    }
    broker.sin_family = AF_INET;
    broker.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &broker.sin_addr) != 1) {
        fprintf(stderr, "connbench: --host takes an IPv4 address\n");
        return 2;
    }
    run_id = (uint32_t)(now_ns() ^ (uint64_t)getpid() << 16);
    worker_t *ws = calloc((size_t)opt.threads, sizeof *ws);
    held_fds = opt.mode == MODE_HOLD ? malloc((size_t)opt.connections * sizeof *held_fds) : NULL;
    if (!ws || (opt.mode == MODE_HOLD && !held_fds)) {
        fprintf(stderr, "connbench: out of memory\n");
        return 1;
    }
    for (int i = 0; opt.mode == MODE_HOLD && i < opt.connections; i++)
        held_fds[i] = -1;
    const char *status = "ok";
    double elapsed = 0, held = 0;
    if (opt.tls && !make_context()) {
        status = "error";
    } else {
        uint64_t t0 = now_ns();
        deadline_ns =
            t0 + (uint64_t)((opt.mode == MODE_RATE ? opt.duration_s : opt.timeout_s) * 1e9);
        int started = 0;
        for (int i = 0; i < opt.threads; i++) {
            ws[i].index = i;
            if (pthread_create(&ws[i].thread, NULL, opt.mode == MODE_RATE ? rate_worker : hold_worker,
                               &ws[i]) != 0) {
                fail("cannot start a thread");
                break;
            }
            started++;
        }
        for (int i = 0; i < started; i++)
            pthread_join(ws[i].thread, NULL);
        elapsed = (double)(now_ns() - t0) / 1e9;
        if (atomic_load(&failed))
            status = "error";
        else if (signalled)
            status = "interrupted";
        else if (opt.mode == MODE_HOLD && atomic_load(&next_index) < opt.connections)
            status = "timeout";
    }
    uint64_t done = 0, reused = 0, failures = 0;
    for (int i = 0; i < opt.threads; i++) {
        done += ws[i].done;
        reused += ws[i].reused;
        failures += ws[i].failures;
    }
    int lost = 0;
    if (opt.mode == MODE_HOLD && strcmp(status, "ok") == 0) {
        printf("event=connected connections=%d connect_s=%.3f\n", opt.connections, elapsed);
        fflush(stdout);
        uint64_t t1 = now_ns();
        while (!signalled && (opt.hold_s <= 0 || now_ns() - t1 < (uint64_t)(opt.hold_s * 1e9)))
            usleep(10000);
        held = (double)(now_ns() - t1) / 1e9;
        /* A held connection has nothing to read: readable means closed. */
        for (int i = 0; i < opt.connections; i++) {
            struct pollfd p = {.fd = held_fds[i], .events = POLLIN};
            if (poll(&p, 1, 0) == 1)
                lost++;
        }
        if (lost)
            status = "lost";
    }
    const worker_t *w0 = &ws[0];
    printf("mode=%s", mode);
    if (opt.label)
        printf(" label=%s", opt.label);
    printf(" tls=%d resume=%d threads=%d sources=%d status=%s", opt.tls, opt.resume, opt.threads,
           opt.sources, status);
    if (opt.mode == MODE_RATE)
        printf(" connections=%llu reused=%llu failed=%llu elapsed_s=%.3f rate=%.0f",
               (unsigned long long)done, (unsigned long long)reused,
               (unsigned long long)failures, elapsed, elapsed > 0 ? (double)done / elapsed : 0);
    else
        printf(" connections=%d connected=%llu lost=%d connect_s=%.3f held_s=%.3f", opt.connections,
               (unsigned long long)done, lost, elapsed, held);
    if (opt.tls && w0->protocol[0])
        printf(" protocol=%s cipher=%s group=%s", w0->protocol, w0->cipher, w0->group);
    print_error();
    printf("\n");
    fflush(stdout);
    for (int i = 0; held_fds && i < opt.connections; i++)
        if (held_fds[i] >= 0)
            close(held_fds[i]);
    for (int i = 0; i < opt.threads; i++)
        SSL_SESSION_free(ws[i].session);
    SSL_CTX_free(ctx);
    free(ws);
    free(held_fds);
    return strcmp(status, "ok") == 0 ? 0 : 1;
}
