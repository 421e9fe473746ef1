/* SPDX-License-Identifier: Apache-2.0 */
/* sm_version.h — the one version of every binary: CMake's
 * project(smpost VERSION x.y.z) and the git commit the build was
 * configured from ("unknown" outside a git checkout), compiled into
 * sm_version.c. --version, /health and smpost_build_info all read it. */
#ifndef SM_VERSION_H
#define SM_VERSION_H

const char *sm_version(void); /* "0.1.0" */
const char *sm_commit(void);  /* "1a2b3c4d5e6f" or "unknown" */

#endif
