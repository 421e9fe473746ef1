#!/usr/bin/env bash
# Quick start: installs dependencies, builds, and runs smpost on the embedded
# default in the foreground until Ctrl-C:
#   command-api on http://127.0.0.1:5001 with its event store in SQLite.
# Data lives in $SMPOST_DATA_DIR (default: ./var in the checkout), so
# stopping and starting again keeps every post.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
"$root/scripts/build.sh" "$root/build"

data="${SMPOST_DATA_DIR:-$root/var}"
mkdir -p "$data"
export SMPOST_EVENT_STORE="${SMPOST_EVENT_STORE:-sqlite:$data/events.db}"
export SMPOST_PORT="${SMPOST_PORT:-5001}"

echo "smpost: command-api on http://127.0.0.1:$SMPOST_PORT, data in $data (Ctrl-C to stop)"
# exec: Ctrl-C goes straight to command-api, which shuts down cleanly.
exec "$root/build/command-api/command-api"
