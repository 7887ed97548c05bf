/*
 * frame: one message on the function socket, as docs/function-ipc.md
 * draws it — u32 length, u32 header_len, a JSON header, raw payload.
 *
 * Every length is checked before it is trusted. A frame is read whole into
 * one allocation, and its header is parsed in place there, so a frame is
 * freed in one call. Writes go out with sendmsg(MSG_NOSIGNAL): a core that
 * went away shows as SEDGE_ERR_CLOSED, never as a SIGPIPE.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Read exactly len bytes. `*got` tells how far it came before an end. */
static sedge_err read_all(int fd, uint8_t *p, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t n = recv(fd, p + *got, len - *got, 0);
        if (n > 0) {
            *got += (size_t)n;
            continue;
        }
        if (n == 0)
            return SEDGE_ERR_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET)
            return SEDGE_ERR_CLOSED;
        return sdk_error(SEDGE_ERR_IO, "reading from the core's socket failed: %s",
                         strerror(errno));
    }
    return SEDGE_OK;
}

sedge_err sdk_frame_read(int fd, sdk_frame_t *f)
{
    *f = (sdk_frame_t){0};
    uint8_t prefix[4];
    size_t got;
    sedge_err err = read_all(fd, prefix, sizeof prefix, &got);
    if (err == SEDGE_ERR_CLOSED)
        return sdk_error(err, got ? "the core closed the connection in the middle of a frame"
                                  : "the core closed the connection");
    if (err)
        return err;
    uint32_t length = get_u32(prefix);
    if (length > SDK_FRAME_MAX)
        return sdk_error(SEDGE_ERR_TOO_LARGE,
                         "the core sent a frame of %u bytes, over the 16 MiB limit", length);
    if (length < 4)
        return sdk_error(SEDGE_ERR_MALFORMED,
                         "the core sent a frame of %u bytes, too short for a header length",
                         length);
    f->mem = malloc(length);
    if (!f->mem)
        return sdk_error(SEDGE_ERR_NOMEM, "no memory for a frame of %u bytes", length);
    err = read_all(fd, f->mem, length, &got);
    if (err) {
        sdk_frame_release(f);
        if (err == SEDGE_ERR_CLOSED)
            return sdk_error(err, "the core closed the connection in the middle of a frame");
        return err;
    }
    uint32_t header_len = get_u32(f->mem);
    if (header_len > length - 4) {
        sdk_frame_release(f);
        return sdk_error(SEDGE_ERR_MALFORMED,
                         "the core sent a header of %u bytes in a frame of %u bytes", header_len,
                         length);
    }
    f->payload = f->mem + 4 + header_len;
    f->payload_len = length - 4 - header_len;
    if (sdk_header_parse((char *)f->mem + 4, header_len, &f->header) != SEDGE_OK) {
        sdk_frame_release(f);
        return sdk_error(SEDGE_ERR_MALFORMED, "the core sent a header that is not a JSON object");
    }
    f->op = sdk_header_str(&f->header, "op");
    if (!f->op) {
        sdk_frame_release(f);
        return sdk_error(SEDGE_ERR_MALFORMED, "the core sent a header without a string \"op\"");
    }
    return SEDGE_OK;
}

sedge_err sdk_frame_write(int fd, const sdk_buf_t *header, const void *payload, size_t payload_len)
{
    if (payload_len > SDK_FRAME_MAX || header->len > SDK_FRAME_MAX - SDK_FRAME_PREFIX ||
        payload_len > SDK_FRAME_MAX - SDK_FRAME_PREFIX - header->len)
        return sdk_error(SEDGE_ERR_TOO_LARGE,
                         "a frame of %zu payload bytes is over the socket's 16 MiB limit",
                         payload_len);
    uint8_t prefix[SDK_FRAME_PREFIX];
    put_u32(prefix, (uint32_t)(4 + header->len + payload_len));
    put_u32(prefix + 4, (uint32_t)header->len);
    struct iovec iov[3] = {
        {prefix, sizeof prefix},
        {header->data, header->len},
        {(void *)payload, payload_len},
    };
    struct iovec *v = iov;
    int count = payload_len ? 3 : 2;
    while (count > 0) {
        struct msghdr msg = {.msg_iov = v, .msg_iovlen = (size_t)count};
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                return sdk_error(SEDGE_ERR_CLOSED, "the core closed the connection");
            return sdk_error(SEDGE_ERR_IO, "writing to the core's socket failed: %s",
                             strerror(errno));
        }
        size_t sent = (size_t)n;
        while (count > 0 && sent >= v->iov_len) {
            sent -= v->iov_len;
            v++;
            count--;
        }
        if (count > 0) {
            v->iov_base = (uint8_t *)v->iov_base + sent;
            v->iov_len -= sent;
        }
    }
    return SEDGE_OK;
}

void sdk_frame_release(sdk_frame_t *f)
{
    free(f->mem);
    *f = (sdk_frame_t){0};
}
