/* main.c — query-api placeholder. The query side (Kafka consumer, read
 * model, query dispatcher) is the subject of a later issue; until then the
 * binary only answers --help and exits with a clear message. */
#include "sm_config.h"

#include <stdio.h>

static long port;
static const sm_option options[] = {
    {"port", "SMPOST_QUERY_PORT", SM_OPT_INT, "5002", 0, 65535, "HTTP port", &port},
};

int main(int argc, char **argv)
{
    sm_error err = {0};
    sm_config_result cr = sm_config_load(options, 1, argc, argv, "query-api",
                                         "smpost query API (not built yet).", stdout, &err);
    if (cr == SM_CONFIG_EXIT_OK)
        return 0;
    if (cr == SM_CONFIG_EXIT_ERROR) {
        fprintf(stderr, "query-api: %s\n", err.message);
        return 2;
    }
    fprintf(stderr, "query-api: the query side is not implemented yet\n");
    return 1;
}
