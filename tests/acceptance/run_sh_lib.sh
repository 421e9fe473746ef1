# SPDX-License-Identifier: Apache-2.0
# run_sh_lib.sh — sourced by the acceptance scripts that drive scripts/run.sh:
# a work directory, kept (and named) unless the script sets passed=1; pid,
# once the script sets it, names a process group killed on exit; free_port.
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  if [ "${passed:-0}" = 1 ] && [ -z "${SMPOST_TEST_KEEP:-}" ]; then rm -rf "$work"
  else echo "# logs kept in $work"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
