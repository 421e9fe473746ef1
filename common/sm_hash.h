/* SPDX-License-Identifier: Apache-2.0 */
/* sm_hash.h — the one string hash of the code base (64-bit FNV-1a), for
 * spreading ids over lock stripes and hash buckets. Not for anything an
 * attacker may aim at: the ids it hashes are server-made UUIDs. */
#ifndef SM_HASH_H
#define SM_HASH_H

#include <stdint.h>

static inline uint64_t sm_hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

#endif
