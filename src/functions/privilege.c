/*
 * privilege: whether sedged may build sandboxes and run functions as other
 * users — as root, or as an unprivileged user (the packaged service's
 * `sedge`) holding exactly the capabilities sedge-sandbox and the runner
 * use: SYS_ADMIN (namespaces, mounts, pivot_root), SETUID and SETGID
 * (run_as), SETPCAP (the function's empty bounding set), CHOWN (the
 * function's socket and device nodes given to its user), MKNOD (device
 * nodes in the sandbox's /dev) and KILL (instances running as another
 * user). Read from the kernel (capget) once.
 */
#include "internal.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

static const int needed[] = {CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_SETPCAP,
                             CAP_CHOWN,     CAP_MKNOD,  CAP_KILL};

bool runner_privileged(void)
{
    static int privileged = -1;
    if (privileged >= 0)
        return privileged == 1;
    privileged = geteuid() == 0;
    if (!privileged) {
        struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {0};
        privileged = syscall(SYS_capget, &header, data) == 0;
        for (size_t i = 0; privileged && i < sizeof needed / sizeof needed[0]; i++)
            privileged = (data[needed[i] / 32].effective >> (needed[i] % 32)) & 1;
    }
    return privileged == 1;
}
