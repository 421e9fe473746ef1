/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_event_decode.c — libFuzzer harness for the event envelope decoder
 * (sm_event_decode), the code that reads every Kafka message the query
 * side consumes and every event the command side loads.
 *
 * Beyond "no crash, no leak, no undefined behaviour", it checks the codec's
 * contract on every input the decoder accepts:
 *   - the event re-encodes (sm_event_encode never fails on a decoded event);
 *   - decoding that encoding gives back the same event, field for field
 *     (so what the projector stores is what the producer meant);
 *   - on rejection the event is left cleared and the error says why. */
#include "fuzz_support.h"
#include "sm_event.h"

#include <stdlib.h>
#include <string.h>

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_event(const sm_event *a, const sm_event *b)
{
    return strcmp(a->event_id, b->event_id) == 0 && a->type == b->type &&
           strcmp(a->aggregate_id, b->aggregate_id) == 0 && a->version == b->version &&
           a->timestamp_ms == b->timestamp_ms && same_text(a->author, b->author) &&
           same_text(a->message, b->message) && same_text(a->comment, b->comment) &&
           same_text(a->username, b->username) && strcmp(a->comment_id, b->comment_id) == 0 &&
           a->at_ms == b->at_ms;
}

static bool is_cleared(const sm_event *ev)
{
    static const sm_event zero;
    return memcmp(ev, &zero, sizeof zero) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_event ev;
    sm_error err = {0};
    if (sm_event_decode(&ev, (const char *)data, size, &err) != SM_OK) {
        FUZZ_CHECK(is_cleared(&ev), "a rejected event was not left cleared");
        FUZZ_CHECK(err.status == SM_ERR_INVALID && err.message[0],
                   "a rejected event has no SM_ERR_INVALID reason");
        return 0;
    }
    char *text = sm_event_encode(&ev);
    FUZZ_CHECK(text != NULL, "a decoded %s does not re-encode", sm_event_type_name(ev.type));
    sm_event again;
    sm_error err2 = {0};
    FUZZ_CHECK(sm_event_decode(&again, text, strlen(text), &err2) == SM_OK,
               "the re-encoded event does not decode: %s\n%s", err2.message, text);
    FUZZ_CHECK(same_event(&ev, &again), "decode(encode(ev)) differs from ev:\n%s", text);
    sm_event_clear(&again);
    free(text);
    sm_event_clear(&ev);
    return 0;
}
