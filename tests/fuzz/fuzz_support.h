/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_support.h — what every libFuzzer harness in tests/fuzz shares.
 *
 * A harness is one LLVMFuzzerTestOneInput() over one parser of outside
 * input. Sanitizers (address, undefined, leak) catch memory errors; a
 * harness states the parser's contract with FUZZ_CHECK, which reports the
 * broken property and aborts, so libFuzzer saves the input as a crash. */
#ifndef FUZZ_SUPPORT_H
#define FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* libFuzzer's entry points (declared for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                                  \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: property violated: ", __FILE__, __LINE__);                 \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

#endif
