/* SPDX-License-Identifier: Apache-2.0 */
/* startup_delay_shim.c — an LD_PRELOAD library for test_startup_race: the
 * binary's call to civetweb's mg_start() returns SMPOST_TEST_MG_START_DELAY_MS
 * milliseconds after civetweb has started (listening and serving), as if
 * the machine had descheduled the starting thread at that moment.
 *
 * Whatever a server does after mg_start() returns then happens that much
 * later, so a request that arrives meanwhile shows whether the server
 * depends on it: with the route registered after mg_start(), civetweb
 * answers such a request itself; with the route in mg_start()'s callbacks,
 * the delay changes nothing. The product code has no hook for this. */
#include <civetweb.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

typedef struct mg_context *(*mg_start_fn)(const struct mg_callbacks *, void *, const char **);

struct mg_context *mg_start(const struct mg_callbacks *callbacks, void *user_data,
                            const char **options)
{
    mg_start_fn real = (mg_start_fn)dlsym(RTLD_NEXT, "mg_start");
    if (!real)
        return NULL;
    struct mg_context *ctx = real(callbacks, user_data, options);
    const char *v = getenv("SMPOST_TEST_MG_START_DELAY_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    if (ctx && ms > 0)
        nanosleep(&ts, NULL);
    return ctx;
}
