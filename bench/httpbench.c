/*
 * httpbench: the HTTP front's load generator, on plain sockets and OpenSSL
 * (no HTTP or WebSocket library shared with the server). One line of
 * key=value pairs per run, for bench/sections/http.sh.
 *
 *   --mode get        keep-alive HTTPS GETs of --path with a client
 *                     certificate, --connections in parallel (one thread
 *                     each, one request at a time): requests per second
 *   --mode handshake  the same, a new TLS connection (full handshake) for
 *                     every request
 *   --mode ws-mqtt    MQTT 3.1.1 over a WebSocket (ws://, path /mqtt,
 *                     subprotocol mqtt): one subscriber to bench/#, one
 *                     publisher of QoS 0 --payload byte messages, at most
 *                     --window messages ahead of what the subscriber has
 *                     received: messages per second through the broker;
 *                     --transport tcp: the same over plain MQTT/TCP
 */
#define _GNU_SOURCE
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *mode = "get", *path = "/", *ca, *cert, *key, *host_header = "bench";
static bool over_tcp; /* --transport tcp: the same MQTT without WebSockets */
static int port, connections = 4, payload = 64, window = 2000;
static double duration = 3;
static SSL_CTX *ctx;
static atomic_long done_count, errors;
static atomic_bool stop;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static SSL *tls_dial(int *fd_out)
{
    int fd = dial();
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    *fd_out = fd;
    return ssl;
}

/* One request and its whole response (Content-Length bodies). */
static bool request(SSL *ssl)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host_header);
    if (SSL_write(ssl, req, n) != n)
        return false;
    char buf[65536];
    size_t have = 0;
    long body = -1;
    size_t head_len = 0;
    for (;;) {
        int r = SSL_read(ssl, buf + have, (int)(sizeof buf - have - 1));
        if (r <= 0)
            return false;
        have += (size_t)r;
        buf[have] = '\0';
        if (body < 0) {
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                continue;
            head_len = (size_t)(end - buf) + 4;
            char *cl = strcasestr(buf, "content-length:");
            body = cl ? strtol(cl + 15, NULL, 10) : 0;
            if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
                return false;
        }
        if (have >= head_len + (size_t)body)
            return have == head_len + (size_t)body;
    }
}

static void *http_worker(void *arg)
{
    (void)arg;
    bool fresh = strcmp(mode, "handshake") == 0;
    int fd = -1;
    SSL *ssl = NULL;
    while (!atomic_load(&stop)) {
        if (!ssl && !(ssl = tls_dial(&fd))) {
            atomic_fetch_add(&errors, 1);
            usleep(1000);
            continue;
        }
        if (request(ssl))
            atomic_fetch_add(&done_count, 1);
        else
            atomic_fetch_add(&errors, 1);
        if (fresh || !SSL_is_init_finished(ssl)) {
            SSL_shutdown(ssl);
            SSL_free(ssl);
            close(fd);
            ssl = NULL;
        }
    }
    if (ssl) {
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

/* ---- MQTT over WebSockets ---- */

static bool send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* A masked binary frame holding `len` bytes. */
static size_t ws_frame(uint8_t *out, const uint8_t *data, size_t len)
{
    size_t h = 0;
    out[h++] = 0x82;
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)(len >> (8 * i));
    }
    uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(out + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        out[h + i] = data[i] ^ mask[i & 3];
    return h + len;
}

static int ws_open(void)
{
    int fd = dial();
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
                     port);
    send_all(fd, (uint8_t *)req, (size_t)n);
    char head[2048];
    size_t have = 0;
    while (have < sizeof head - 1) {
        ssize_t r = recv(fd, head + have, 1, 0);
        if (r <= 0)
            break;
        have++;
        if (have >= 4 && memcmp(head + have - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[have] = '\0';
    if (!strstr(head, " 101 ")) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool mqtt_send(int fd, const uint8_t *pkt, size_t len)
{
    if (over_tcp)
        return send_all(fd, pkt, len);
    uint8_t frame[70000];
    if (len + 14 > sizeof frame)
        return false;
    return send_all(fd, frame, ws_frame(frame, pkt, len));
}

static bool mqtt_connect(int fd, const char *id)
{
    uint8_t p[128];
    size_t idl = strlen(id);
    size_t rl = 10 + 2 + idl;
    size_t i = 0;
    p[i++] = 0x10;
    p[i++] = (uint8_t)rl;
    memcpy(p + i, "\x00\x04MQTT\x04\x02\x00\x3c", 10);
    i += 10;
    p[i++] = 0;
    p[i++] = (uint8_t)idl;
    memcpy(p + i, id, idl);
    i += idl;
    return mqtt_send(fd, p, i);
}

/* The subscriber: read frames, count PUBLISH packets (they may span or
 * share frames: the MQTT stream is reassembled). */
static atomic_long received, sent;
/* What the subscriber checks of each PUBLISH: its topic, its payload's
 * length and filler, and the sequence number in its first 8 bytes (one
 * publisher at QoS 0: each should come once, in order). */
static long lost, reordered, malformed, next_seq;

static void check_publish(const uint8_t *p, size_t len)
{
    if (len < 2 + 7 || p[0] != 0 || p[1] != 7 || memcmp(p + 2, "bench/x", 7) != 0 ||
        len - 9 != (size_t)payload || p[len - 1] != 'p') {
        malformed++;
        return;
    }
    uint64_t seq = 0;
    for (int k = 0; k < 8; k++)
        seq = (seq << 8) | p[9 + k];
    if ((long)seq == next_seq) {
        next_seq++;
    } else if ((long)seq > next_seq) {
        lost += (long)seq - next_seq;
        next_seq = (long)seq + 1;
    } else {
        reordered++;
    }
}
static void *ws_subscriber(void *arg)
{
    int fd = *(int *)arg;
    static uint8_t buf[1 << 20], mq[1 << 20];
    size_t have = 0, mlen = 0;
    while (!atomic_load(&stop)) {
        ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t off = 0;
        if (over_tcp) { /* the MQTT stream itself */
            if (mlen + have > sizeof mq)
                return NULL;
            memcpy(mq + mlen, buf, have);
            mlen += have;
            off = have;
        }
        for (; !over_tcp;) { /* whole frames (unmasked, from the server) */
            if (have - off < 2)
                break;
            uint8_t b1 = buf[off + 1];
            size_t len = b1 & 0x7f, h = 2;
            if (len == 126) {
                if (have - off < 4)
                    break;
                len = ((size_t)buf[off + 2] << 8) | buf[off + 3];
                h = 4;
            } else if (len == 127) {
                if (have - off < 10)
                    break;
                len = 0;
                for (int k = 0; k < 8; k++)
                    len = (len << 8) | buf[off + 2 + k];
                h = 10;
            }
            if (have - off < h + len)
                break;
            if ((buf[off] & 0x0f) == 2 || (buf[off] & 0x0f) == 0) {
                if (mlen + len > sizeof mq)
                    return NULL;
                memcpy(mq + mlen, buf + off + h, len);
                mlen += len;
            }
            off += h + len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        size_t m = 0;
        for (;;) { /* whole MQTT packets */
            if (mlen - m < 2)
                break;
            size_t rl = 0, mult = 1, k = 1;
            while (k < 5 && m + k < mlen) {
                rl += (mq[m + k] & 0x7f) * mult;
                mult *= 128;
                if (!(mq[m + k] & 0x80))
                    break;
                k++;
            }
            if (m + k >= mlen || m + k + 1 + rl > mlen)
                break;
            if ((mq[m] & 0xf0) == 0x30) {
                check_publish(mq + m + k + 1, rl);
                atomic_fetch_add(&received, 1);
            }
            m += k + 1 + rl;
        }
        memmove(mq, mq + m, mlen - m);
        mlen -= m;
    }
    return NULL;
}

static int ws_mqtt(void)
{
    int sub = over_tcp ? dial() : ws_open(), pub = over_tcp ? dial() : ws_open();
    if (sub < 0 || pub < 0) {
        printf("mode=ws-mqtt error=\"cannot open the WebSockets\"\n");
        return 1;
    }
    uint8_t subscribe[] = {0x82, 0x0c, 0x00, 0x01, 0x00, 0x07, 'b',
                           'e',  'n',  'c',  'h',  '/',  '#',  0};
    if (!mqtt_connect(sub, "bench-sub") || !mqtt_connect(pub, "bench-pub") ||
        !mqtt_send(sub, subscribe, sizeof subscribe)) {
        printf("mode=ws-mqtt error=\"cannot connect\"\n");
        return 1;
    }
    usleep(300000); /* CONNACKs and SUBACK */
    pthread_t t;
    pthread_create(&t, NULL, ws_subscriber, &sub);
    uint8_t pkt[70000];
    size_t i = 0, topic = 7;
    size_t rl = 2 + topic + (size_t)payload;
    pkt[i++] = 0x30;
    do {
        uint8_t b = rl % 128;
        rl /= 128;
        pkt[i++] = b | (rl ? 0x80 : 0);
    } while (rl);
    pkt[i++] = 0;
    pkt[i++] = (uint8_t)topic;
    memcpy(pkt + i, "bench/x", topic);
    i += topic;
    size_t seq_at = i; /* the payload: an 8-byte sequence number, then filler */
    memset(pkt + i, 'p', (size_t)payload);
    i += (size_t)payload;
    /* Batches of publishes in one frame each, within the window. */
    uint8_t batch[65536];
    size_t per = sizeof batch / i;
    if (per > 64)
        per = 64;
    for (size_t k = 0; k < per; k++)
        memcpy(batch + k * i, pkt, i);
    double t0 = now_s(), end = t0 + duration;
    while (now_s() < end) {
        if (atomic_load(&sent) - atomic_load(&received) > window) {
            usleep(50);
            continue;
        }
        long first = atomic_load(&sent);
        for (size_t k = 0; k < per; k++) {
            uint64_t seq = (uint64_t)first + k;
            for (int b = 0; b < 8; b++)
                batch[k * i + seq_at + (size_t)b] = (uint8_t)(seq >> (56 - 8 * b));
        }
        if (!mqtt_send(pub, batch, per * i))
            break;
        atomic_fetch_add(&sent, (long)per);
    }
    double t1 = now_s();
    long got = atomic_load(&received);
    /* What was in flight at the end arrives (or is lost) within a second. */
    for (int w = 0; w < 100 && atomic_load(&received) < atomic_load(&sent); w++)
        usleep(10000);
    atomic_store(&stop, true);
    shutdown(sub, SHUT_RDWR);
    pthread_join(t, NULL);
    long all = atomic_load(&received);
    printf("mode=ws-mqtt transport=%s payload=%d sent=%ld received=%ld lost=%ld reordered=%ld "
           "malformed=%ld seconds=%.3f rate=%.0f\n",
           over_tcp ? "tcp" : "ws", payload, atomic_load(&sent), all,
           lost + (atomic_load(&sent) - all), reordered, malformed, t1 - t0,
           (double)got / (t1 - t0));
    close(sub);
    close(pub);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"mode", 1, 0, 'm'},
                                         {"port", 1, 0, 'p'},
                                         {"path", 1, 0, 'P'},
                                         {"ca", 1, 0, 'a'},
                                         {"cert", 1, 0, 'c'},
                                         {"key", 1, 0, 'k'},
                                         {"duration", 1, 0, 'd'},
                                         {"connections", 1, 0, 'n'},
                                         {"payload", 1, 0, 's'},
                                         {"window", 1, 0, 'w'},
                                         {"host", 1, 0, 'H'},
                                         {"transport", 1, 0, 't'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm': mode = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'P': path = optarg; break;
        case 'a': ca = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'd': duration = atof(optarg); break;
        case 'n': connections = atoi(optarg); break;
        case 's': payload = atoi(optarg); break;
        case 'w': window = atoi(optarg); break;
        case 'H': host_header = optarg; break;
        case 't': over_tcp = strcmp(optarg, "tcp") == 0; break;
        default:
            fprintf(stderr, "usage: httpbench --mode get|handshake|ws-mqtt --port N ...\n");
            return 2;
        }
    }
    if (!port || payload < 8 || payload > 60000) {
        fprintf(stderr, "httpbench: --port is needed; --payload 8..60000\n");
        return 2;
    }
    if (strcmp(mode, "ws-mqtt") == 0)
        return ws_mqtt();
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (!ca || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
        (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) ||
        (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)) {
        fprintf(stderr, "httpbench: cannot load --ca, --cert or --key\n");
        return 2;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    pthread_t *t = calloc((size_t)connections, sizeof *t);
    double t0 = now_s();
    for (int i = 0; i < connections; i++)
        pthread_create(&t[i], NULL, http_worker, NULL);
    usleep((useconds_t)(duration * 1e6));
    atomic_store(&stop, true);
    for (int i = 0; i < connections; i++)
        pthread_join(t[i], NULL);
    double secs = now_s() - t0;
    printf("mode=%s connections=%d requests=%ld errors=%ld seconds=%.3f rate=%.0f\n", mode,
           connections, atomic_load(&done_count), atomic_load(&errors), secs,
           (double)atomic_load(&done_count) / secs);
    free(t);
    SSL_CTX_free(ctx);
    return 0;
}
