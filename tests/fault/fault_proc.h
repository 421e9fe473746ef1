/* SPDX-License-Identifier: Apache-2.0 */
/* fault_proc.h — the services as processes, for the fault and scale-out
 * tests: start one on a fixed port (a restart reuses it, as a deployment
 * does), stop it gracefully within a bound, kill it, read its /health and
 * /metrics. Failures end the running cmocka test (fail_msg).
 *
 * Not thread-safe where noted; the HTTP readers may be called from any
 * thread. */
#ifndef FAULT_PROC_H
#define FAULT_PROC_H

#include "proc.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The documented bounds (docs/operations.md, "Guarantees and how they are
 * tested"): no command takes longer than the request timeout (the default
 * SMPOST_REQUEST_TIMEOUT_MS), and SIGTERM ends each binary with status 0
 * within these times (worst cases, with the store or broker failing at the
 * same moment; a healthy system takes a few seconds, printed). */
#define REQUEST_TIMEOUT_MS 10000
#define CMD_SHUTDOWN_MS (REQUEST_TIMEOUT_MS + 12000)
#define QUERY_SHUTDOWN_MS (REQUEST_TIMEOUT_MS + 19000)


/* Waits until the process answers HTTP on p->port; false if it exited first
 * (e.g. its port was not free yet) or timeout_ms passed. */
bool fp_wait_up(test_proc *p, int timeout_ms);

/* Starts argv on p->port with stderr appended to DIR/NAME.log, retrying
 * while the port is still held; fails the test if it never answers. */
void fp_start_service(const char *dir, test_proc *p, char *const argv[], const char *name);

/* Waits for p to exit; returns its status (128+signal if killed by one), or
 * -1 after SIGKILLing it when timeout_ms passed. */
int fp_wait_exit(test_proc *p, int timeout_ms);

/* SIGTERM: exit status 0 within bound_ms, or the test fails. */
void fp_stop_gracefully(test_proc *p, const char *name, int bound_ms);

/* kill -9, and the test fails unless it died of it. */
void fp_kill9(test_proc *p, const char *name);

/* The value of an unlabelled metric in the service's /metrics, or -1. */
double fp_metric(int port, const char *name);

/* GET /health: the JSON body (caller decrefs) whatever the status, or NULL
 * without an answer within timeout_ms. */
json_t *fp_health(int port, int timeout_ms);

/* The end of a scenario, once its services are stopped: stops the broker
 * and removes dir if the scenario passed (and SMPOST_TEST_KEEP is unset),
 * else says where its logs and databases are. Returns 0 (for teardowns). */
int fp_finish(test_proc *broker, const char *dir, bool passed);

/* Lines of the file at path that contain needle (0 if unreadable). */
long fp_count_lines(const char *path, const char *needle);

#endif
