#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# compose/tls/dev-cert.sh [DIR] [NAME...] — a development CA and a server
# certificate for the edge (nginx, service "proxy"), made with openssl:
#   DIR/ca.crt       the CA certificate: give it to clients (curl --cacert)
#   DIR/server.crt   the server certificate, then the CA (the chain nginx sends)
#   DIR/server.key   its private key (EC P-256, PKCS#8)
# DIR defaults to compose/tls/certs/ (git-ignored), the directory
# docker-compose.yml mounts read-only at /etc/nginx/tls/ (SMPOST_TLS_DIR in
# compose/.env moves it). The certificate names localhost, 127.0.0.1 and ::1,
# plus each NAME given (a DNS name, or an IP address), valid 825 days. The
# CA's key is discarded once the certificate is signed, so it can sign
# nothing else. It refuses to replace an existing certificate; delete DIR
# for new ones.
#
# Real certificates instead: put the chain (server first) in server.crt and
# the key in server.key in that directory, readable by uid 101 (nginx in the
# container), e.g. `chown 101:101 server.key && chmod 600 server.key`
# (compose/README.md, "TLS at the edge").
set -euo pipefail
dir="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/certs}"
[ "$#" -gt 0 ] && shift
command -v openssl >/dev/null || { echo "dev-cert.sh: openssl is not installed" >&2; exit 1; }
if [ -e "$dir/server.crt" ] || [ -e "$dir/server.key" ]; then
  echo "dev-cert.sh: $dir/server.crt exists; kept (delete $dir for new certificates)" >&2
  exit 0
fi
san="DNS:localhost,IP:127.0.0.1,IP:::1"
for n in "$@"; do
  if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san="$san,IP:$n"; else san="$san,DNS:$n"; fi
done
mkdir -p "$dir"
t="$(mktemp -d)"
trap 'rm -rf "$t"' EXIT
(
  cd "$t"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
          -out ca.crt -days 825 -subj "/CN=smpost development CA" \
          -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
          -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
  openssl req -new -key server.key -subj "/CN=${1:-localhost}" -out server.csr 2>/dev/null
  printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
         "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
          -extfile server.ext -out server.crt 2>/dev/null
  cat ca.crt >>server.crt
) || { echo "dev-cert.sh: openssl failed in $t" >&2; exit 1; }
# 0644: nginx reads them as uid 101 through a read-only bind mount. A
# development key only; a real key is chowned to 101 and kept 0600.
install -m 0644 "$t/ca.crt" "$dir/ca.crt"
install -m 0644 "$t/server.key" "$dir/server.key"
install -m 0644 "$t/server.crt" "$dir/server.crt"
echo "dev-cert.sh: wrote $dir/ca.crt, server.crt and server.key ($san)"
echo "  curl --cacert $dir/ca.crt https://localhost:5001/health"
