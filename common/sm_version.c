/* SPDX-License-Identifier: Apache-2.0 */
/* sm_version.c — see sm_version.h. SMPOST_VERSION and SMPOST_COMMIT come
 * from common/CMakeLists.txt. */
#include "sm_version.h"

#ifndef SMPOST_VERSION
#define SMPOST_VERSION "unknown"
#endif
#ifndef SMPOST_COMMIT
#define SMPOST_COMMIT "unknown"
#endif

const char *sm_version(void)
{
    return SMPOST_VERSION;
}

const char *sm_commit(void)
{
    return SMPOST_COMMIT;
}
