/*
 * invoke_bench: times Sedge function invocations through the core, and the
 * cost of starting the same program with fork+exec as the baseline.
 *
 * invoke: each client (a thread) opens its own connection to the admin
 * socket (DATA_DIR/admin.sock) before the clock starts and sends
 * {"cmd":"invoke","function":F,"payload_b64":...} lines, one at a time,
 * reading the one-line JSON reply to each. That is what sedgectl invoke
 * does without the process start, so a round trip is the core's work —
 * the admin socket's JSON and base64 on both sides included — plus the
 * function's: queue, instance (started if none is idle), the function
 * socket both ways. The reply must be "echo:" + the payload.
 *
 * spawn: each client runs fork, execve of the program given after --,
 * waitpid, with a near-empty environment (PATH only), so a Sedge function
 * finds no SEDGE_SOCKET and exits at once; its output goes to /dev/null.
 * That is the cost of a process per invocation, without any work. With
 * --env-on-stdin the program's stdin is a pipe carrying an empty
 * environment as sedged sends it to sedge-sandbox (a u32 length of 0), so
 * that the sandbox itself can be timed the same way.
 *
 * Prints one key=value line, like loadgen, for bench/run.sh and people.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "percentile.h"

#define NS_PER_S 1000000000ull
#define LINE_MAX_BYTES (1u << 20)

typedef enum { MODE_INVOKE, MODE_SPAWN } bench_mode_t;

static struct {
    bench_mode_t mode;
    const char *socket_path;
    const char *function;
    size_t payload;
    int clients;
    uint64_t count;  /* per client */
    uint64_t warmup; /* per client, not timed */
    double duration_s;
    double timeout_s;
    const char *label;
    char **command;
    bool env_on_stdin;
} opt = {.mode = MODE_INVOKE,
         .function = "echo",
         .payload = 64,
         .clients = 1,
         .count = 0,
         .warmup = 0,
         .timeout_s = 60};

typedef struct {
    pthread_t thread;
    int index;
    uint64_t *lat;
    size_t lat_n, lat_cap;
    uint64_t ok, errors, nonzero_exits;
    char error[200];
} client_t;

static char *request; /* the invoke line, with its newline */
static size_t request_len;
static char *expected_b64; /* base64 of "echo:" + payload */
static atomic_bool g_stop;
static atomic_int g_failed;
static uint64_t g_deadline_ns;
static int devnull = -1;
static char *const spawn_env[] = {"PATH=/usr/bin:/bin", NULL};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static char *base64(const uint8_t *in, size_t len)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        *o++ = t[v >> 18 & 63];
        *o++ = t[v >> 12 & 63];
        *o++ = i + 1 < len ? t[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? t[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static void record(client_t *c, uint64_t ns)
{
    if (c->lat_n == c->lat_cap) {
        size_t cap = c->lat_cap ? c->lat_cap * 2 : 4096;
        uint64_t *lat = realloc(c->lat, cap * sizeof *lat);
        if (!lat)
            return;
        c->lat = lat;
        c->lat_cap = cap;
    }
    c->lat[c->lat_n++] = ns;
}

static void client_error(client_t *c, const char *fmt, const char *detail)
{
    c->errors++;
    if (!c->error[0])
        snprintf(c->error, sizeof c->error, fmt, detail);
}

static bool more(uint64_t done)
{
    if (atomic_load(&g_stop))
        return false;
    if (opt.count)
        return done < opt.warmup + opt.count;
    return now_ns() < g_deadline_ns || done < opt.warmup;
}

/* Reads one line into buf (NUL-terminated, without the newline). Bytes
 * after it stay in buf for the next call: *have counts them. */
static ssize_t read_line(int fd, char *buf, size_t cap, size_t *have)
{
    for (;;) {
        char *nl = memchr(buf, '\n', *have);
        if (nl) {
            *nl = '\0';
            return nl - buf;
        }
        if (*have + 1 >= cap)
            return -1;
        ssize_t n = read(fd, buf + *have, cap - 1 - *have);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return -1;
        }
        *have += (size_t)n;
    }
}

static void *invoke_client(void *arg)
{
    client_t *c = arg;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", opt.socket_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        client_error(c, "cannot connect to %s", opt.socket_path);
        snprintf(c->error + strlen(c->error), sizeof c->error - strlen(c->error), ": %s",
                 strerror(errno));
        atomic_store(&g_failed, 1);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char *buf = malloc(LINE_MAX_BYTES);
    size_t have = 0;
    if (!buf)
        return NULL;
    for (uint64_t done = 0; more(done); done++) {
        uint64_t t0 = now_ns();
        size_t off = 0;
        while (off < request_len) {
            ssize_t n = write(fd, request + off, request_len - off);
            if (n <= 0) {
                client_error(c, "writing to the admin socket: %s", strerror(errno));
                goto out;
            }
            off += (size_t)n;
        }
        ssize_t len = read_line(fd, buf, LINE_MAX_BYTES, &have);
        uint64_t t1 = now_ns();
        if (len < 0) {
            client_error(c, "%s", "the admin socket closed or sent a line over 1 MiB");
            goto out;
        }
        const char *r = strstr(buf, "\"result_b64\"");
        const char *q = r ? strchr(r + 12, '"') : NULL;
        bool good = q && strncmp(q + 1, expected_b64, strlen(expected_b64)) == 0 &&
                    q[1 + strlen(expected_b64)] == '"';
        if (done >= opt.warmup) {
            if (good) {
                c->ok++;
                record(c, t1 - t0);
            } else {
                client_error(c, "unexpected reply: %.150s", buf);
            }
        }
        size_t used = (size_t)len + 1;
        memmove(buf, buf + used, have - used);
        have -= used;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static void *spawn_client(void *arg)
{
    client_t *c = arg;
    for (uint64_t done = 0; more(done); done++) {
        int in[2] = {devnull, -1};
        if (opt.env_on_stdin && pipe2(in, O_CLOEXEC) != 0) {
            client_error(c, "pipe: %s", strerror(errno));
            atomic_store(&g_failed, 1);
            return NULL;
        }
        uint64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid == 0) {
            dup2(in[0], 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execve(opt.command[0], opt.command, spawn_env);
            _exit(127);
        }
        if (opt.env_on_stdin) {
            static const uint8_t empty_env[4] = {0};
            ssize_t w = write(in[1], empty_env, sizeof empty_env);
            (void)w; /* a program that does not read it gets EPIPE: fine */
            close(in[0]);
            close(in[1]);
        }
        if (pid < 0) {
            client_error(c, "fork: %s", strerror(errno));
            atomic_store(&g_failed, 1);
            return NULL;
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        uint64_t t1 = now_ns();
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
            client_error(c, "cannot run %s", opt.command[0]);
            atomic_store(&g_failed, 1);
            return NULL;
        }
        if (done >= opt.warmup) {
            c->ok++;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                c->nonzero_exits++;
            record(c, t1 - t0);
        }
    }
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: invoke_bench --mode invoke --socket DATA_DIR/admin.sock [--function NAME]\n"
            "                    [options]\n"
            "       invoke_bench --mode spawn [options] -- PROGRAM [ARGS...]\n"
            "Times function invocations through sedged's admin socket, or fork+exec+wait of\n"
            "a program, and prints one key=value line.\n"
            "\n"
            "  --clients N      concurrent clients, each its own connection or fork loop (1)\n"
            "  --count N        timed operations per client\n"
            "  --duration S     instead of --count: run for S seconds\n"
            "  --warmup N       untimed operations per client first (0)\n"
            "  --payload BYTES  invocation payload size (64); the reply must be echo:PAYLOAD\n"
            "  --timeout S      give up after S seconds (60)\n"
            "  --label TEXT     copied into the output line\n"
            "  --env-on-stdin   spawn: give the program an empty environment frame on\n"
            "                   stdin, as sedged gives sedge-sandbox\n"
            "Exit status: 0 when every operation succeeded, 1 otherwise, 2 on bad usage.\n");
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "mode=timeout status=timeout error=\"did not finish in time\"\n";
    ssize_t n = write(1, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, 'm'},
        {"socket", required_argument, NULL, 's'},
        {"function", required_argument, NULL, 'f'},
        {"payload", required_argument, NULL, 'p'},
        {"clients", required_argument, NULL, 'c'},
        {"count", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'w'},
        {"duration", required_argument, NULL, 'd'},
        {"timeout", required_argument, NULL, 't'},
        {"label", required_argument, NULL, 'l'},
        {"env-on-stdin", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (o) {
        case 'm':
            if (strcmp(optarg, "invoke") == 0)
                opt.mode = MODE_INVOKE;
            else if (strcmp(optarg, "spawn") == 0)
                opt.mode = MODE_SPAWN;
            else
                end = optarg;
            break;
        case 's': opt.socket_path = optarg; break;
        case 'f': opt.function = optarg; break;
        case 'p': opt.payload = strtoul(optarg, &end, 10); break;
        case 'c': opt.clients = (int)strtol(optarg, &end, 10); break;
        case 'n': opt.count = strtoull(optarg, &end, 10); break;
        case 'w': opt.warmup = strtoull(optarg, &end, 10); break;
        case 'd': opt.duration_s = strtod(optarg, &end); break;
        case 't': opt.timeout_s = strtod(optarg, &end); break;
        case 'l': opt.label = optarg; break;
        case 'e': opt.env_on_stdin = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (end && *end) {
            fprintf(stderr, "invoke_bench: invalid value '%s' (see --help)\n", optarg);
            return 2;
        }
    }
    if (optind < argc)
        opt.command = &argv[optind];
    if (opt.clients < 1 || opt.clients > 1024 || (!opt.count && opt.duration_s <= 0) ||
        (opt.mode == MODE_INVOKE && !opt.socket_path) || (opt.mode == MODE_SPAWN && !opt.command) ||
        (opt.mode == MODE_INVOKE && opt.command) || opt.payload > 65536) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)opt.timeout_s + 1);

    uint8_t *payload = malloc(opt.payload + 5);
    if (!payload)
        return 1;
    memcpy(payload, "echo:", 5);
    for (size_t i = 0; i < opt.payload; i++)
        payload[5 + i] = (uint8_t)('a' + i % 26);
    char *b64 = base64(payload + 5, opt.payload);
    expected_b64 = base64(payload, opt.payload + 5);
    if (!b64 || !expected_b64 ||
        asprintf(&request,
                 "{\"cmd\":\"invoke\",\"function\":\"%s\","
                 "\"payload_b64\":\"%s\"}\n",
                 opt.function, b64) < 0)
        return 1;
    request_len = strlen(request);
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

    client_t *cs = calloc((size_t)opt.clients, sizeof *cs);
    if (!cs)
        return 1;
    uint64_t t0 = now_ns();
    g_deadline_ns = t0 + (uint64_t)(opt.duration_s * 1e9);
    for (int i = 0; i < opt.clients; i++) {
        cs[i].index = i;
        if (pthread_create(&cs[i].thread, NULL,
                           opt.mode == MODE_INVOKE ? invoke_client : spawn_client, &cs[i]) != 0) {
            fprintf(stderr, "invoke_bench: cannot start a thread\n");
            return 1;
        }
    }
    for (int i = 0; i < opt.clients; i++)
        pthread_join(cs[i].thread, NULL);
    double wall = (double)(now_ns() - t0) / 1e9;

    uint64_t ok = 0, errors = 0, nonzero = 0;
    size_t n = 0;
    const char *error = NULL;
    for (int i = 0; i < opt.clients; i++) {
        ok += cs[i].ok;
        errors += cs[i].errors;
        nonzero += cs[i].nonzero_exits;
        n += cs[i].lat_n;
        if (!error && cs[i].error[0])
            error = cs[i].error;
    }
    uint64_t *all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    double sum = 0;
    for (int i = 0; all && i < opt.clients; i++)
        for (size_t j = 0; j < cs[i].lat_n; j++) {
            all[k++] = cs[i].lat[j];
            sum += (double)cs[i].lat[j];
        }
    if (all)
        qsort(all, k, sizeof *all, cmp_u64);
    /* The rate: timed operations over the wall time, which includes the
     * warm-up (use --warmup 0 with --duration for a rate). */
    const char *status = errors || atomic_load(&g_failed) ? "error" : "ok";
    printf("mode=%s", opt.mode == MODE_INVOKE ? "invoke" : "spawn");
    if (opt.label)
        printf(" label=%s", opt.label);
    if (opt.mode == MODE_INVOKE)
        printf(" function=%s", opt.function);
    else
        printf(" program=%s nonzero_exits=%" PRIu64, opt.command[0], nonzero);
    printf(" clients=%d payload=%zu status=%s ok=%" PRIu64 " errors=%" PRIu64
           " wall_s=%.3f rate=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f",
           opt.clients, opt.payload, status, ok, errors, wall, wall > 0 ? (double)ok / wall : 0,
           all ? percentile_us(all, k, 0.5) : 0, all ? percentile_us(all, k, 0.9) : 0,
           all ? percentile_us(all, k, 0.99) : 0, k && all ? (double)all[k - 1] / 1e3 : 0,
           k ? sum / (double)k / 1e3 : 0);
    if (error) {
        printf(" error=\"");
        for (const char *p = error; *p; p++)
            putchar(*p == '"' ? '\'' : *p);
        printf("\"");
    }
    printf("\n");
    return strcmp(status, "ok") == 0 ? 0 : 1;
}
