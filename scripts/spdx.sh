#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/spdx.sh — every source file says its license in its first lines.
#
#   scripts/spdx.sh --check   lists the files without the tag; fails if any
#   scripts/spdx.sh --add     adds the tag where it is missing
#
# Source files are the tracked C, shell, Python, JavaScript, CMake, SQL,
# YAML, nginx, Kafka properties and Maven files, the Dockerfile and .ci/run
# (not generated, vendored or data files: node_modules, JSON, test
# corpora). The tag is `SPDX-License-Identifier: Apache-2.0` in the file's
# comment syntax, on its first line, or after a shebang, an XML declaration
# or Dockerfile parser directives. CTest runs --check (release_spdx).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tag='SPDX-License-Identifier: Apache-2.0'
mode="${1:---check}"

files() {
  git ls-files -- '*.c' '*.h' '*.sh' '*.py' '*.js' '*.cmake' '*CMakeLists.txt' '*.sql' \
    '*.yml' '*.yaml' '*.conf' '*.properties' '*.xml' 'compose/Dockerfile' '.ci/run' |
    grep -v -e '/node_modules/' -e '^tests/fuzz/corpus/'
}

# The comment line for a file, by its kind.
line_for() {
  case "$1" in
    *.c | *.h | *.js) echo "/* $tag */" ;;
    *.sql) echo "-- $tag" ;;
    *.xml) echo "<!-- $tag -->" ;;
    *) echo "# $tag" ;;
  esac
}

# How many leading lines must stay first: a shebang, an XML declaration,
# Dockerfile parser directives.
keep_first() {
  awk 'NR == 1 && (/^#!/ || /^<\?xml/) { n = 1; next }
       /^# *(syntax|escape|check)=/ && NR == n + 1 { n++; next }
       { exit } END { print n + 0 }' "$1"
}

missing=()
while read -r f; do
  head -n 5 "$f" | grep -qF "$tag" || missing+=("$f")
done < <(files)

case "$mode" in
  --check)
    if [ "${#missing[@]}" -gt 0 ]; then
      printf 'spdx: no license tag in the first 5 lines of %s\n' "${missing[@]}" >&2
      exit 1
    fi
    echo "spdx: every one of $(files | wc -l) source files carries the tag"
    ;;
  --add)
    for f in "${missing[@]}"; do
      n="$(keep_first "$f")"
      tmp="$(mktemp)"
      { head -n "$n" "$f"; line_for "$f"; tail -n "+$((n + 1))" "$f"; } >"$tmp"
      chmod --reference="$f" "$tmp"
      mv "$tmp" "$f"
    done
    echo "spdx: tagged ${#missing[@]} files"
    ;;
  *) echo "usage: scripts/spdx.sh --check|--add" >&2; exit 2 ;;
esac
