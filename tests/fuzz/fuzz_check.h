/*
 * fuzz_check: the fuzz targets' assertion — a broken promise prints where
 * and aborts, so libFuzzer keeps the input that broke it.
 */
#ifndef SEDGE_FUZZ_CHECK_H
#define SEDGE_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
