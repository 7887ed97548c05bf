/*
 * port: opening a serial port (libserialport, or termios for the ports it
 * cannot see) and moving bytes with timeouts.
 */
#include "port.h"

#include "connector.h"

#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static speed_t speed_of(long baud)
{
    static const struct {
        long baud;
        speed_t speed;
    } speeds[] = {{50, B50},         {75, B75},         {110, B110},       {134, B134},
                  {150, B150},       {200, B200},       {300, B300},       {600, B600},
                  {1200, B1200},     {1800, B1800},     {2400, B2400},     {4800, B4800},
                  {9600, B9600},     {19200, B19200},   {38400, B38400},   {57600, B57600},
                  {115200, B115200}, {230400, B230400}, {460800, B460800}, {500000, B500000},
                  {576000, B576000}, {921600, B921600}, {1000000, B1000000},
                  {1152000, B1152000}, {1500000, B1500000}, {2000000, B2000000},
                  {2500000, B2500000}, {3000000, B3000000}, {3500000, B3500000},
                  {4000000, B4000000}};
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0]; i++)
        if (speeds[i].baud == baud)
            return speeds[i].speed;
    return B0;
}

static bool termios_open(serial_port_t *p, const char *path, json_t *params, char *why,
                         size_t why_len)
{
    long baud = (long)conn_param_int(params, "baud_rate", 9600);
    speed_t speed = speed_of(baud);
    if (speed == B0) {
        snprintf(why, why_len, "%s: baud rate %ld is not one the kernel's termios offers", path,
                 baud);
        return false;
    }
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
        return false;
    }
    struct termios t;
    if (tcgetattr(fd, &t) != 0) {
        snprintf(why, why_len, "%s is not a serial port: %s", path, strerror(errno));
        close(fd);
        return false;
    }
    cfmakeraw(&t);
    cfsetispeed(&t, speed);
    cfsetospeed(&t, speed);
    static const tcflag_t sizes[] = {CS5, CS6, CS7, CS8};
    int bits = (int)conn_param_int(params, "data_bits", 8);
    t.c_cflag = (t.c_cflag & ~(tcflag_t)CSIZE) | sizes[bits >= 5 && bits <= 8 ? bits - 5 : 3];
    t.c_cflag |= CREAD | CLOCAL;
    t.c_cflag &= ~(tcflag_t)(PARENB | PARODD | CMSPAR | CSTOPB | CRTSCTS);
    switch (conn_param_str(params, "parity", "N")[0]) {
    case 'E': t.c_cflag |= PARENB; break;
    case 'O': t.c_cflag |= PARENB | PARODD; break;
    case 'M': t.c_cflag |= PARENB | PARODD | CMSPAR; break;
    case 'S': t.c_cflag |= PARENB | CMSPAR; break;
    default: break;
    }
    if (conn_param_int(params, "stop_bits", 1) == 2)
        t.c_cflag |= CSTOPB;
    if (conn_param_bool(params, "rtscts", false))
        t.c_cflag |= CRTSCTS;
    if (conn_param_bool(params, "xonxoff", false))
        t.c_iflag |= IXON | IXOFF;
    if (tcsetattr(fd, TCSANOW, &t) != 0) {
        snprintf(why, why_len, "cannot configure %s: %s", path, strerror(errno));
        close(fd);
        return false;
    }
    p->fd = fd;
    p->sp = NULL;
    return true;
}

static const char *sp_reason(void)
{
    static char msg[160];
    char *m = sp_last_error_message();
    snprintf(msg, sizeof msg, "%s", m ? m : "unknown error");
    sp_free_error_message(m);
    return msg;
}

bool serial_port_open(serial_port_t *p, const char *path, json_t *params, char *why,
                      size_t why_len)
{
    p->fd = -1;
    p->sp = NULL;
    struct sp_port *sp;
    if (sp_get_port_by_name(path, &sp) != SP_OK)
        return termios_open(p, path, params, why, why_len);
    static const struct {
        char letter;
        enum sp_parity parity;
    } parities[] = {{'N', SP_PARITY_NONE}, {'E', SP_PARITY_EVEN}, {'O', SP_PARITY_ODD},
                    {'M', SP_PARITY_MARK}, {'S', SP_PARITY_SPACE}};
    char parity = conn_param_str(params, "parity", "N")[0];
    enum sp_parity sp_parity = SP_PARITY_NONE;
    for (size_t i = 0; i < sizeof parities / sizeof parities[0]; i++)
        if (parities[i].letter == parity)
            sp_parity = parities[i].parity;
    enum sp_flowcontrol flow = conn_param_bool(params, "rtscts", false) ? SP_FLOWCONTROL_RTSCTS
                               : conn_param_bool(params, "xonxoff", false) ? SP_FLOWCONTROL_XONXOFF
                                                                           : SP_FLOWCONTROL_NONE;
    const char *step = "open";
    int fd = -1;
    if (sp_open(sp, SP_MODE_READ_WRITE) == SP_OK && (step = "configure") &&
        sp_set_baudrate(sp, (int)conn_param_int(params, "baud_rate", 9600)) == SP_OK &&
        sp_set_bits(sp, (int)conn_param_int(params, "data_bits", 8)) == SP_OK &&
        sp_set_parity(sp, sp_parity) == SP_OK &&
        sp_set_stopbits(sp, (int)conn_param_int(params, "stop_bits", 1)) == SP_OK &&
        sp_set_flowcontrol(sp, flow) == SP_OK && sp_get_port_handle(sp, &fd) == SP_OK &&
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0) {
        p->sp = sp;
        p->fd = fd;
        return true;
    }
    snprintf(why, why_len, "cannot %s %s: %s", step, path, sp_reason());
    sp_close(sp);
    sp_free_port(sp);
    return false;
}

void serial_port_close(serial_port_t *p)
{
    if (p->sp) {
        sp_close(p->sp);
        sp_free_port(p->sp);
    } else if (p->fd >= 0) {
        close(p->fd);
    }
    p->fd = -1;
    p->sp = NULL;
}

/* Wait until the port is ready for `events` or the deadline passes. */
static int wait_ready(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = conn_now_ms();
        int left = deadline > now ? (int)(deadline - now) : 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc > 0 && (pfd.revents & (POLLERR | POLLNVAL))) {
            errno = EIO;
            return -1;
        }
        return rc;
    }
}

long serial_port_read(serial_port_t *p, uint8_t *buf, size_t want, uint32_t timeout_ms)
{
    uint64_t deadline = conn_now_ms() + timeout_ms;
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(p->fd, buf + got, want - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            if (n == 0)
                errno = EIO; /* the other end is gone (a pty whose peer closed) */
            return -1;
        }
        int rc = wait_ready(p->fd, POLLIN, deadline);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
    }
    return (long)got;
}

long serial_port_write(serial_port_t *p, const uint8_t *data, size_t len, uint32_t timeout_ms)
{
    uint64_t deadline = conn_now_ms() + timeout_ms;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(p->fd, data + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        int rc = wait_ready(p->fd, POLLOUT, deadline);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
    }
    return (long)done;
}
