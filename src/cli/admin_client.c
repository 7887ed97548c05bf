/* admin_client: a blocking request/response over the admin socket. */
#include "admin_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

sedge_err admin_call(const char *data_dir, json_t *request, uint32_t timeout_ms, json_t **response,
                     char *err, size_t errlen)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int n = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/admin.sock", data_dir);
    if (n < 0 || (size_t)n >= sizeof addr.sun_path) {
        snprintf(err, errlen, "data directory path too long");
        return SEDGE_ERR_INVALID;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        snprintf(err, errlen,
                 "cannot reach sedged at %s: %s (is sedged running with this "
                 "data directory? see --data-dir)",
                 addr.sun_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return SEDGE_ERR_CLOSED;
    }
    if (timeout_ms) {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    char *text = json_dumps(request, JSON_COMPACT);
    sedge_err rc = SEDGE_OK;
    size_t len = text ? strlen(text) : 0;
    if (!text || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
        snprintf(err, errlen, "cannot send the request: %s", strerror(errno));
        rc = SEDGE_ERR_IO;
    }
    free(text);
    buf_t in = {0};
    while (!rc) {
        if (buf_reserve(&in, 65536)) {
            rc = SEDGE_ERR_NOMEM;
            break;
        }
        ssize_t got = read(fd, in.data + in.len, in.cap - in.len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            snprintf(err, errlen, "no answer within %u ms", (unsigned)timeout_ms);
            rc = SEDGE_ERR_TIMEOUT;
            break;
        }
        if (got <= 0) {
            snprintf(err, errlen, "sedged closed the connection without an answer");
            rc = SEDGE_ERR_IO;
            break;
        }
        in.len += (size_t)got;
        if (memchr(in.data, '\n', in.len))
            break;
    }
    close(fd);
    if (!rc) {
        json_error_t jerr;
        *response = json_loadb((const char *)in.data, in.len, JSON_DISABLE_EOF_CHECK, &jerr);
        if (!*response) {
            snprintf(err, errlen, "unreadable answer from sedged: %s", jerr.text);
            rc = SEDGE_ERR_MALFORMED;
        }
    }
    buf_free(&in);
    return rc;
}
