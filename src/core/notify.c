/* notify: see notify.h. */
#include "notify.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LOG_TAG "sedged"

void notify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path) {
        LOGW("NOTIFY_SOCKET is too long for a socket address: systemd is not told %s", state);
        return;
    }
    memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@') /* an abstract socket */
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        LOGW("cannot tell systemd %s", state);
    if (fd >= 0)
        close(fd);
}

uint64_t notify_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    if (!usec || !usec[0])
        return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && pid[0] && strtoll(pid, NULL, 10) != (long long)getpid())
        return 0;
    char *end;
    unsigned long long v = strtoull(usec, &end, 10);
    return *end == '\0' ? (uint64_t)v : 0;
}
