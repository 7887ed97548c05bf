/*
 * modbus_direct: the reference for the Modbus connector's benchmark —
 * libmodbus called directly, N read-holding-registers round trips to a
 * Modbus TCP server, one at a time. Prints "requests N seconds S rate R".
 *   usage: modbus_direct PORT N
 */
#include <errno.h>
#include <modbus/modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: modbus_direct PORT N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", atoi(argv[1]));
    if (!ctx || modbus_connect(ctx) != 0) {
        fprintf(stderr, "connect: %s\n", modbus_strerror(errno));
        return 1;
    }
    modbus_set_slave(ctx, 1);
    uint16_t regs[3];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++)
        if (modbus_read_registers(ctx, 0, 3, regs) != 3) {
            fprintf(stderr, "read: %s\n", modbus_strerror(errno));
            return 1;
        }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("requests %d seconds %.3f rate %.1f\n", n, s, n / s);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}
