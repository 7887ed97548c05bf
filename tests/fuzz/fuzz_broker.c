/*
 * libFuzzer target for the broker's whole packet path: a real broker on
 * its own libuv loop with a store in memory, a unix-socket listener, and
 * FUZZ_CLIENTS connections to it. The input is a script of chunks,
 * each [client index][length][bytes]: the bytes are written to that
 * client's socket, then the loop runs until it has nothing left to do
 * right now, and what the broker sent back is read and dropped. Chunks
 * split packets anywhere and put several in one write, so framing,
 * partial input, every handler, sessions shared between connections
 * (takeovers), QoS state, retained messages, wills and closing are all
 * reached. A second script byte can also close a client's socket.
 *
 * Each input gets a fresh broker and store; at the end every connection
 * is closed, the broker shut down and everything freed, so that a leak or
 * a use after free anywhere on the path shows under the sanitizers.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker/broker.h"

#define FUZZ_CLIENTS 3
#define CLOSE_MARK 0xFF /* a chunk length of 0xFF closes that client instead */

static char sock_path[108];

static void quiet_logs(void)
{
    log_set_level(LOG_ERROR);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    quiet_logs();
    signal(SIGPIPE, SIG_IGN); /* as sedged: a peer gone is a write error */
    snprintf(sock_path, sizeof sock_path, "/tmp/sedge-fuzz-broker-%d.sock", (int)getpid());
    return 0;
}

static void done_cb(void *ctx)
{
    *(int *)ctx = 1;
}

static int connect_client(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, sock_path, strlen(sock_path));
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void drain(int fd)
{
    uint8_t buf[65536];
    while (fd >= 0 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
}

static store_t *fuzz_store;
static broker_t *fuzz_broker;

/* What sedged's core does at the end of each loop turn. */
static void before_wait(uv_prepare_t *h)
{
    (void)h;
    if (fuzz_store)
        store_before_wait(fuzz_store);
    if (fuzz_broker)
        broker_before_wait(fuzz_broker);
}

/* Run the loop until nothing is ready to run (bounded). */
static void settle(uv_loop_t *loop, int fds[FUZZ_CLIENTS])
{
    for (int i = 0; i < 8; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        for (int k = 0; k < FUZZ_CLIENTS; k++)
            drain(fds[k]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop))
        return 0;
    broker_t *b;
    store_t *store;
    store_options_t so = {.path = ":memory:"};
    if (store_open(&loop, &so, &store)) {
        uv_loop_close(&loop);
        return 0;
    }
    broker_limits_t limits;
    broker_limits_default(&limits);
    limits.max_queued_messages = 4;
    limits.max_inflight = 2;
    limits.topic_alias_maximum = 4;
    limits.sys_interval_s = 0;
    limits.max_packet_bytes = 4096;
    limits.max_connect_bytes = 1024;
    limits.max_subscriptions = 8;
    limits.max_filters_per_packet = 4;
    if (broker_create(&loop, &limits, store, &b) || broker_load(b)) {
        fprintf(stderr, "fuzz_broker: cannot start a broker\n");
        abort();
    }
    unlink(sock_path);
    listener_config_t lc = {.type = LISTENER_UNIX, .bind = sock_path};
    if (broker_listen(b, &lc)) {
        fprintf(stderr, "fuzz_broker: cannot listen on %s\n", sock_path);
        abort();
    }
    uv_prepare_t hook;
    uv_prepare_init(&loop, &hook);
    uv_prepare_start(&hook, before_wait);
    uv_unref((uv_handle_t *)&hook);
    fuzz_store = store;
    fuzz_broker = b;
    int fds[FUZZ_CLIENTS];
    for (int k = 0; k < FUZZ_CLIENTS; k++)
        fds[k] = connect_client();
    settle(&loop, fds);

    size_t pos = 0;
    while (pos + 2 <= size) {
        int k = data[pos] % FUZZ_CLIENTS;
        size_t len = data[pos + 1];
        pos += 2;
        if (len == CLOSE_MARK) {
            if (fds[k] >= 0)
                close(fds[k]);
            fds[k] = connect_client(); /* a new connection takes its place */
        } else {
            if (len > size - pos)
                len = size - pos;
            if (fds[k] >= 0 && len)
                (void)send(fds[k], data + pos, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            pos += len;
        }
        settle(&loop, fds);
    }

    for (int k = 0; k < FUZZ_CLIENTS; k++)
        if (fds[k] >= 0)
            close(fds[k]);
    settle(&loop, fds);
    int stopped = 0;
    broker_shutdown(b, done_cb, &stopped);
    while (!stopped && uv_run(&loop, UV_RUN_ONCE))
        ;
    uv_close((uv_handle_t *)&hook, NULL);
    fuzz_store = NULL;
    fuzz_broker = NULL;
    store_close(store);
    uv_run(&loop, UV_RUN_DEFAULT);
    broker_free(b);
    if (uv_loop_close(&loop)) {
        fprintf(stderr, "fuzz_broker: handles left open in the loop\n");
        abort();
    }
    return 0;
}
