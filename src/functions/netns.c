/*
 * netns: an empty network namespace for the sandboxed instances of one
 * function, made once and handed to each instance's sandbox as a file
 * descriptor (sedge-sandbox --netns-fd). Creating a network namespace is
 * the dearest part of a sandbox (most of a millisecond, and as much again
 * to tear it down), so instances of a function share one — they run the
 * same code — while different functions never do.
 *
 * A short-lived thread makes it: unshare(CLONE_NEWNET) changes only the
 * calling thread, so sedged's own network stays as it is.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

static void *make_netns(void *arg)
{
    int *fd = arg;
    if (unshare(CLONE_NEWNET) == 0)
        *fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    return NULL;
}

int netns_create(void)
{
    int fd = -1;
    pthread_t t;
    if (pthread_create(&t, NULL, make_netns, &fd) != 0)
        return -1;
    pthread_join(t, NULL);
    return fd;
}
