/*
 * sharedns: the namespaces the sandboxed instances of one function share
 * — an empty network namespace and an IPC namespace — made once and
 * handed to each instance's sandbox as file descriptors (sedge-sandbox
 * --netns-fd, --ipcns-fd). Creating them is among the dearest parts of a
 * sandbox (a network namespace most of a millisecond, and as much again to
 * tear down), so instances of a function share them — they run the same
 * code — while different functions never do. Mount, PID and UTS
 * namespaces stay per instance.
 *
 * A short-lived thread makes them: unshare() of these changes only the
 * calling thread, so sedged's own stay as they are.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

static void *make_namespaces(void *arg)
{
    sharedns_t *ns = arg;
    if (unshare(CLONE_NEWNET | CLONE_NEWIPC) == 0) {
        ns->net_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        ns->ipc_fd = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
    }
    return NULL;
}

bool sharedns_create(sharedns_t *ns)
{
    *ns = (sharedns_t){-1, -1};
    pthread_t t;
    if (pthread_create(&t, NULL, make_namespaces, ns) != 0)
        return false;
    pthread_join(t, NULL);
    if (ns->net_fd >= 0 && ns->ipc_fd >= 0)
        return true;
    sharedns_close(ns);
    return false;
}

void sharedns_close(sharedns_t *ns)
{
    if (ns->net_fd >= 0)
        close(ns->net_fd);
    if (ns->ipc_fd >= 0)
        close(ns->ipc_fd);
    *ns = (sharedns_t){-1, -1};
}
