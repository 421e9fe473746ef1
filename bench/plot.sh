#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/plot.sh — PNG plots of a bench/run.sh run, with Debian's gnuplot.
#
#   bench/plot.sh DIR [TITLE]
#
# DIR holds what bench/run.sh keeps of a run: pct-PHASE.txt (loadgen
# --pct-out: "percentile latency_ms" lines) and lagseries-PHASE.txt
# (loadgen --lag-series: "seconds lag_ms" per probe). It writes
#   DIR/latency.png  the latency distribution of every phase: latency by
#                    percentile, the x axis in "nines" (p50, p90, p99,
#                    p99.9...) so the tail gets the room it deserves
#   DIR/lag.png      projection lag over time in the lag and sustained
#                    phases: every probe as a dot
# TITLE (e.g. the RESULT's commit and date) goes in both titles.
# Exits 0 with "plots: skipped (...)" when gnuplot is missing.
set -euo pipefail
dir="$1"
title="${2:-smpost bench}"
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "plots: skipped (gnuplot is not installed: apt-get install gnuplot-nox)"
  exit 0
fi
shopt -s nullglob
pcts=("$dir"/pct-*.txt)
lags=("$dir"/lagseries-*.txt)
# gnuplot titles: underscores would be subscripts
label() { local n="${1##*/}"; n="${n#pct-}"; n="${n#lagseries-}"; echo "${n%.txt}" | tr '_' ' '; }

# draw PNG TITLE XLABEL YLABEL EXTRA PLOT: one log-y chart, key outside
# (EXTRA: more gnuplot settings, e.g. xtics); nothing when PLOT is empty.
draw() {
  [ -n "$6" ] || return 0
  gnuplot <<GP
set terminal pngcairo size 1100,650 font ',10'
set output '$dir/$1'
set title "$2 — $title"
set xlabel '$3'
set ylabel '$4'
set logscale y
set grid
set key outside right top
$5
plot $6
GP
}

plot=""
for f in "${pcts[@]}"; do
  # at least two points, else there is no line to draw
  [ "$(grep -vc '^#' "$f" || true)" -ge 2 ] || continue
  plot+="${plot:+, }'$f' using (-log10(1 - \$1 / 100.0001)):2 with linespoints title '$(label "$f")'"
done
draw latency.png 'Latency by percentile, each phase' percentile 'latency (ms)' \
  "set xtics ('p50' -log10(0.5), 'p90' 1, 'p99' 2, 'p99.9' 3, 'p99.99' 4, 'max' -log10(1 - 100/100.0001))" \
  "$plot"

plot=""
for f in "${lags[@]}"; do
  [ "$(grep -vc '^#' "$f" || true)" -ge 1 ] || continue
  plot+="${plot:+, }'$f' using 1:2 with points pointtype 7 pointsize 0.4 title '$(label "$f")'"
done
draw lag.png 'Projection lag over time (command 2xx to byId?minVersion answered)' \
  'seconds into the phase' 'lag (ms)' '' "$plot"
# (nullglob: with no PNG the list is empty, never the literal pattern)
pngs=("$dir"/*.png)
if [ "${#pngs[@]}" -gt 0 ]; then printf 'plots: %s\n' "${pngs[@]}"; else echo "plots: none (no data in $dir)"; fi
