#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The alert rules and the Grafana dashboard on a real Prometheus (Debian's
# prometheus package, 2.42, with promtool):
#   1. promtool check rules compose/prometheus/alerts.yml, and promtool test
#      rules compose/prometheus/alerts_test.yml (each alert's unit tests);
#   2. starts the embedded system (smpost-devbroker, command-api and
#      query-api on SQLite, free ports, a temporary directory) and a
#      Prometheus scraping both every second, evaluating every second, with
#      compose/prometheus/alerts.yml loaded as it is: its `for:` durations
#      are not shortened for the test (the outbox alert's 30 s over 30 s is
#      waited out, about a minute), so what is tested is what ships;
#   3. drives load (NewPost, LikePost, AddComment, queries by id and by
#      author, with curl) and asserts over Prometheus's HTTP API that the
#      histograms fill (request latency on both services, projection lag,
#      relay publish) and that nothing fires;
#   4. runs every PromQL expression of the Grafana dashboard
#      (compose/grafana/dashboards/smpost.json) through /api/v1/query:
#      each must be accepted (status success), and most must return data;
#   5. takes the broker down (SIGUSR1 to smpost-devbroker: connections
#      refused) under load and stops query-api (SIGSTOP: its scrapes time
#      out): SmpostOutboxStale, SmpostKafkaDown and SmpostServiceDown (for
#      query-api alone) must fire; brings both back (SIGUSR2, SIGCONT): all
#      three must resolve. Prints how long each took (PROMETHEUS ... line).
# Without prometheus/promtool it skips (exit 77), except under CI=true,
# where it fails (.ci/run and scripts/bootstrap.sh install them).
#   prometheus_alerts.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$(cd "$1" && pwd)"
build="$(cd "$2" && pwd)"
rules="$src/compose/prometheus/alerts.yml"
rule_tests="$src/compose/prometheus/alerts_test.yml"
dashboard="$src/compose/grafana/dashboards/smpost.json"

fail() { echo "FAILED: $*" >&2; exit 1; }
skip() {
  echo "SKIPPED: $*"
  if [ "${CI:-}" = true ]; then fail "$* (CI: not skipped)"; fi
  exit 77
}
command -v promtool >/dev/null && command -v prometheus >/dev/null ||
  skip "needs Debian's prometheus package (apt-get install prometheus: prometheus and promtool)"

# shellcheck source=run_sh_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/run_sh_lib.sh"
pids=()
stop_all() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  cleanup
}
trap stop_all EXIT

echo "== promtool: the rules and their unit tests"
promtool check rules "$rules" || fail "promtool check rules $rules"
(cd "$(dirname "$rule_tests")" && promtool test rules "$(basename "$rule_tests")") ||
  fail "promtool test rules $rule_tests"

echo "== the dashboard parses and holds PromQL"
/usr/bin/env python3 - "$dashboard" >"$work/exprs.txt" <<'PY' || fail "$dashboard"
import json
import sys

d = json.load(open(sys.argv[1]))
exprs = []


def walk(panels):
    for p in panels:
        for t in p.get("targets") or []:
            if t.get("expr"):
                exprs.append((p.get("title", "?"), t["expr"]))
        walk(p.get("panels") or [])


walk(d.get("panels") or [])
if not exprs:
    sys.exit("no PromQL expression (panels[].targets[].expr) in the dashboard")
for title, e in exprs:
    # one line each: title TAB expression (Grafana's $__rate_interval is
    # replaced by the test with a window fit for its 1 s scrapes)
    print("%s\t%s" % (title, " ".join(e.split())))
PY
echo "$(wc -l <"$work/exprs.txt") expressions"

echo "== the embedded system and Prometheus"
export SMPOST_LOG_LEVEL=warn
"$build/tools/smpost-devbroker" >"$work/broker.out" 2>"$work/broker.log" &
broker=$!
pids+=("$broker")
for _ in $(seq 100); do grep -q BOOTSTRAP "$work/broker.out" && break; sleep 0.1; done
export KAFKA_BOOTSTRAP_SERVERS="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$work/broker.out")"
[ -n "$KAFKA_BOOTSTRAP_SERVERS" ] || fail "smpost-devbroker did not start (see $work/broker.log)"
cport=$(free_port)
qport=$(free_port)
pport=$(free_port)
"$build/command-api/command-api" --port "$cport" --event-store "sqlite:$work/events.db" \
  2>"$work/command-api.log" &
pids+=($!)
"$build/query-api/query-api" --port "$qport" --read-model "sqlite:$work/readmodel.db" \
  --kafka-config fetch.wait.max.ms=10 2>"$work/query-api.log" &
query=$!
pids+=("$query")
for port in "$cport" "$qport"; do
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/health" >/dev/null || fail "no /health on port $port (logs in $work)"
done

# Job names as in compose/prometheus/prometheus.yml (the rules select on them).
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: smpost-command-api
    static_configs: [{targets: ["127.0.0.1:$cport"]}]
  - job_name: smpost-query-api
    static_configs: [{targets: ["127.0.0.1:$qport"]}]
EOF
promtool check config "$work/prometheus.yml" >/dev/null || fail "promtool check config"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$pport" --log.level=warn 2>"$work/prometheus.log" &
pids+=($!)
prom="http://127.0.0.1:$pport"
for _ in $(seq 100); do curl -sf "$prom/-/ready" >/dev/null && break; sleep 0.2; done
curl -sf "$prom/-/ready" >/dev/null || fail "Prometheus is not ready (see $work/prometheus.log)"
echo "prometheus $(prometheus --version 2>&1 | sed -n 's/^prometheus, version \([^ ]*\).*/\1/p') on $prom"

# query EXPR: prints the API's status, the number of series and the first
# value ("-" without one); exits 0 unless curl fails
query() {
  curl -s --max-time 10 "$prom/api/v1/query" --data-urlencode "query=$1" |
    /usr/bin/env python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)
except ValueError:
    print("unparsable - -"); sys.exit(0)
d = r.get("data") or {}
res = d.get("result")
if d.get("resultType") == "scalar":
    res = [{"value": res}]
res = res or []
first = res[0]["value"][1] if res else "-"
print(r.get("status"), len(res), first, (r.get("error") or "").replace(" ", "_"))'
}
# value EXPR: the first value, "-" if none
value() { query "$1" | awk '{print $3}'; }
# alert_state NAME: firing, pending or none
alert_state() {
  curl -s --max-time 10 "$prom/api/v1/alerts" | /usr/bin/env python3 -c '
import json, sys
states = [a["state"] for a in json.load(sys.stdin)["data"]["alerts"]
          if a["labels"].get("alertname") == sys.argv[1]]
print("firing" if "firing" in states else "pending" if states else "none")' "$1"
}
firing_alerts() {
  curl -s --max-time 10 "$prom/api/v1/alerts" | /usr/bin/env python3 -c '
import json, sys
print(" ".join(sorted({a["labels"]["alertname"] for a in json.load(sys.stdin)["data"]["alerts"]
                       if a["state"] == "firing"})))'
}

# ---- load ---------------------------------------------------------------------
# One loop of curls: a post, three likes, a comment, a query by id (waiting
# for the comment's version) and one by author; about 20 requests a second.
load() {
  local c="http://127.0.0.1:$cport/api/v1" q="http://127.0.0.1:$qport/api/v1" id i
  set +e # a failed or timed-out request (query-api stopped, below) must not end the load
  while :; do
    for i in 1 2 3 4 5 6 7 8; do
      id="$(curl -s -X POST "$c/NewPost" -H 'Content-Type: application/json' \
              -d "{\"author\":\"author$i\",\"message\":\"hello $i\"}" |
            sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
      [ -n "$id" ] || { sleep 0.2; continue; }
      curl -s -o /dev/null -X PUT "$c/LikePost/$id"
      curl -s -o /dev/null -X PUT "$c/LikePost/$id"
      curl -s -o /dev/null -X PUT "$c/LikePost/$id"
      curl -s -o /dev/null -X PUT "$c/AddComment/$id" -H 'Content-Type: application/json' \
        -d '{"comment":"nice","username":"bob"}'
      curl -s -o /dev/null --max-time 5 "$q/PostLookup/byId/$id?minVersion=4"
      curl -s -o /dev/null --max-time 2 "$q/PostLookup/byAuthor/author$i"
      curl -s -o /dev/null --max-time 2 "$q/PostLookup/byId/not-an-id" # a 400
    done
  done
}
load >/dev/null 2>&1 &
loader=$!
pids+=("$loader")
start=$SECONDS
elapsed() { echo $((SECONDS - start)); }

echo "== under load: the histograms fill"
# wait_for EXPR SECONDS: until EXPR returns a series
wait_for() {
  local i
  for ((i = 0; i < $2; i++)); do
    [ "$(value "$1")" != - ] && return 0
    sleep 1
  done
  return 1
}
checks=(
  'up{job="smpost-command-api"} == 1'
  'up{job="smpost-query-api"} == 1'
  'sum(smpost_http_request_duration_seconds_count{job="smpost-command-api",route="/api/v1/NewPost",code="2xx"}) > 0'
  'sum(smpost_http_request_duration_seconds_count{job="smpost-query-api",code="2xx"}) > 0'
  'sum(smpost_http_request_duration_seconds_count{job="smpost-query-api",code="4xx"}) > 0'
  'sum(rate(smpost_http_request_duration_seconds_bucket{job="smpost-command-api",le="+Inf"}[10s])) > 0'
  'histogram_quantile(0.99, sum by (le) (rate(smpost_http_request_duration_seconds_bucket{job="smpost-command-api"}[10s]))) > 0'
  'sum(smpost_projection_lag_seconds_count) > 0'
  'sum(smpost_projection_lag_seconds_bucket{le="+Inf"}) > 0'
  'histogram_quantile(0.5, sum by (le) (rate(smpost_projection_lag_seconds_bucket[10s]))) > 0'
  'sum(smpost_relay_publish_seconds_count) > 0'
  'sum(smpost_relay_round_events_count) > 0'
  'sum(smpost_group_commit_members_count) > 0'
  'max(smpost_projection_newest_event_age_seconds) >= 0'
  'sum(smpost_events_applied_total) > 0'
  'process_resident_memory_bytes{job="smpost-query-api"} > 0'
  'smpost_build_info{job="smpost-command-api",service="command-api"} == 1'
)
for e in "${checks[@]}"; do
  wait_for "$e" 30 || fail "no data for: $e (after $(elapsed) s; logs in $work)"
  echo "ok   $e = $(value "$e")"
done
sleep 5 # a few more seconds of load for the rates of the dashboard
now_firing="$(firing_alerts)"
[ -z "$now_firing" ] || fail "alerts fire under a normal load: $now_firing"
echo "ok   no alert fires under load"
# 5xx are not expected here, but not a failure either (the machine may be
# busy): say which, if any
curl -s "$prom/api/v1/query" --data-urlencode \
  'query=sum by (job, route, status) (smpost_http_requests_total{status=~"5.."})' |
  /usr/bin/env python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]["result"]:
    print("note 5xx under load: %s %s %s x%s" % (r["metric"].get("job"), r["metric"].get("route"),
                                                r["metric"].get("status"), r["value"][1]))'

echo "== every PromQL expression of the dashboard on this Prometheus"
total=0 with_data=0
while IFS=$'\t' read -r title expr; do
  e="${expr//\$__rate_interval/30s}"
  e="${e//\$__interval/5s}"
  read -r status n _ err < <(query "$e")
  total=$((total + 1))
  [ "$status" = success ] || fail "dashboard panel \"$title\": Prometheus refuses $expr: $status $err"
  if [ "$n" -gt 0 ]; then with_data=$((with_data + 1)); else echo "     (no data yet) $title: $expr"; fi
done <"$work/exprs.txt"
echo "ok   $total expressions accepted, $with_data return data"
# Most panels must show something after the load; the ones that may not:
# dead letters and 5xx (none happen here).
[ $((with_data * 4)) -ge $((total * 3)) ] || fail "only $with_data of $total dashboard expressions return data"

echo "== broker outage and query-api stopped, under load: the alerts fire, then resolve"
# states: prints "NAME=STATE" (firing, pending or none) for each NAME, from
# one read of /api/v1/alerts
states() {
  curl -s --max-time 10 "$prom/api/v1/alerts" | /usr/bin/env python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
for n in sys.argv[1:]:
    s = [a["state"] for a in alerts if a["labels"].get("alertname") == n]
    print("%s=%s" % (n, "firing" if "firing" in s else "pending" if s else "none"))' "$@"
}
# watch WANT SECONDS NAME...: polls every second until each NAME is in
# state WANT (firing, or none: resolved), for at most SECONDS; records in
# at[NAME] the seconds since $since it took, and in pending_at[NAME] when
# it was first seen pending; fails naming those that never got there
declare -A at pending_at
watch() {
  local want="$1" limit="$2" i line n st left
  shift 2
  for n in "$@"; do unset "at[$n]"; done
  for ((i = 0; i < limit; i++)); do
    left=0
    while IFS='=' read -r n st; do
      [ "$st" = pending ] && [ -z "${pending_at[$n]:-}" ] && pending_at[$n]=$((SECONDS - since))
      if [ -z "${at[$n]:-}" ]; then
        if [ "$st" = "$want" ]; then at[$n]=$((SECONDS - since)); else left=1; fi
      fi
    done < <(states "$@")
    [ "$left" = 0 ] && return 0
    sleep 1
  done
  for n in "$@"; do [ -n "${at[$n]:-}" ] || echo "FAILED: $n not $want after $limit s" >&2; done
  return 1
}
[ "$(alert_state SmpostOutboxStale)" = none ] || fail "SmpostOutboxStale is active before the outage"
# Kafka refuses connections (commands still succeed: events wait in the
# outbox), and query-api stops answering (its scrapes time out: up == 0).
kill -USR1 "$broker"
kill -STOP "$query"
since=$SECONDS
watch firing 180 SmpostOutboxStale SmpostKafkaDown SmpostServiceDown ||
  fail "alerts missing during the outage (oldest pending: $(value 'max(smpost_outbox_oldest_pending_seconds)') s; logs in $work)"
fired=${at[SmpostOutboxStale]} kafka_fired=${at[SmpostKafkaDown]} down_fired=${at[SmpostServiceDown]}
echo "ok   SmpostOutboxStale pending after ${pending_at[SmpostOutboxStale]:-?} s, firing after $fired s (oldest pending $(value 'max(smpost_outbox_oldest_pending_seconds)') s, $(value 'sum(smpost_outbox_pending)') events)"
echo "ok   SmpostKafkaDown firing after $kafka_fired s"
echo "ok   SmpostServiceDown firing after $down_fired s"
# The alerts say what they should: severity, runbook, the target that is down.
curl -s "$prom/api/v1/alerts" | /usr/bin/env python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
a = [a for a in alerts if a["labels"]["alertname"] == "SmpostOutboxStale"][0]
assert a["labels"]["severity"] == "critical", a
assert a["annotations"]["runbook_url"].endswith("#smpostoutboxstale"), a
print("ok   " + a["annotations"]["summary"])
down = [a["labels"]["job"] for a in alerts if a["labels"]["alertname"] == "SmpostServiceDown"]
assert down == ["smpost-query-api"], down
print("ok   SmpostServiceDown names smpost-query-api only")' || fail "the alerts' labels or annotations"

kill -CONT "$query"
kill -USR2 "$broker"
since=$SECONDS
watch none 120 SmpostOutboxStale SmpostKafkaDown SmpostServiceDown ||
  fail "alerts still active after the broker and query-api came back"
resolved=${at[SmpostOutboxStale]} kafka_resolved=${at[SmpostKafkaDown]} down_resolved=${at[SmpostServiceDown]}
echo "ok   resolved after the broker and query-api came back: SmpostOutboxStale $resolved s, SmpostKafkaDown $kafka_resolved s, SmpostServiceDown $down_resolved s"
wait_for 'sum(smpost_outbox_pending) == 0' 30 || fail "the outbox did not drain"
echo "ok   outbox drained; published $(value 'sum(smpost_events_published_total)') events"

kill "$loader" 2>/dev/null || true
others="$(firing_alerts)"
[ -z "$others" ] || fail "alerts still firing after the outage: $others"
echo "PROMETHEUS outbox_alert_fired_s=$fired outbox_alert_resolved_s=$resolved kafka_alert_fired_s=$kafka_fired kafka_alert_resolved_s=$kafka_resolved service_down_fired_s=$down_fired service_down_resolved_s=$down_resolved dashboard_exprs=$total dashboard_exprs_with_data=$with_data"
passed=1
