/* SPDX-License-Identifier: Apache-2.0 */
/* sm_deadline.c — see sm_deadline.h. */
#include "sm_deadline.h"

static _Thread_local int64_t deadline;

void sm_deadline_set(int64_t mono_ms) { deadline = mono_ms; }

int64_t sm_deadline_get(void) { return deadline; }

int64_t sm_deadline_cap(int64_t a) { return deadline > 0 && deadline < a ? deadline : a; }
