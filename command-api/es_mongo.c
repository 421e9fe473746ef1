/* es_mongo.c — the MongoDB adapter of the event store port (work in
 * progress: every call reports ES_UNAVAILABLE until the real one lands). */
#include "event_store.h"

es_status es_mongo_open(const char *uri, es_store **out, sm_error *err)
{
    (void)uri;
    *out = NULL;
    sm_fail(err, SM_ERR_UNAVAILABLE, "mongodb event store not built yet");
    return ES_UNAVAILABLE;
}
