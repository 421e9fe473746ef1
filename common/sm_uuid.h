/* SPDX-License-Identifier: Apache-2.0 */
/* sm_uuid.h — RFC 9562 version-4 and version-7 UUIDs, and UUID parsing.
 *
 * Ids are always handled as their canonical text: 36 lower-case characters
 * "8-4-4-4-12" plus NUL (SM_UUID_LEN + 1 bytes). Thread-safe. */
#ifndef SM_UUID_H
#define SM_UUID_H

#include <stdbool.h>
#include <stddef.h>

#define SM_UUID_LEN 36
typedef char sm_uuid_str[SM_UUID_LEN + 1];

/* Fills out with a new random v4 UUID from getrandom(2) (the kernel CSPRNG).
 * Returns false only if the kernel refuses randomness, which callers treat as
 * an internal error rather than falling back to a weak source. */
bool sm_uuid_new(sm_uuid_str out);

/* Fills out with a new v7 UUID: the Unix time in milliseconds, then 74
 * random bits. Ids that are keys of the stores (post, event and comment
 * ids) are v7, so that new rows land at the right edge of their B-tree
 * indexes instead of on a random leaf each, which cost the SQLite event
 * store one more 4 KiB page in every commit per new id. The price: an id
 * tells when it was made, which the event's timestamp says anyway. False
 * as sm_uuid_new. */
bool sm_uuid_new_v7(sm_uuid_str out);

/* Fills buf with len bytes from the kernel's CSPRNG (getrandom, through a
 * per-thread block of its output that is handed out once); false if it
 * failed. The source of every random id (UUIDs, trace ids). */
bool sm_random_bytes(void *buf, size_t len);

/* Parses text as a UUID in any form .NET's Guid.TryParse accepts for routes:
 * "8-4-4-4-12", 32 hex digits, or either wrapped in braces; any case.
 * On success writes the canonical lower-case form to out and returns true.
 * text must be NUL-terminated; out may be NULL to only validate. */
bool sm_uuid_parse(const char *text, sm_uuid_str out);

#endif
