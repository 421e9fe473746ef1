#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# compose/auth/dev-key.sh [DIR] — a development signing key for the compose
# stack, made with openssl alone (no build needed):
#   DIR/dev-key.pem   Ed25519 private key, 0600: signs tokens; stays on the host
#   DIR/jwks/jwks.json  its public half as a JWKS (kid = RFC 7638 thumbprint,
#                     the kid smpost-token puts in tokens by default): the
#                     APIs verify tokens with it. Only DIR/jwks/ is mounted
#                     into the containers (read-only), never the private key;
#                     a directory rather than the file, so that a JWKS
#                     replaced by rename (key rotation) is seen inside.
# DIR defaults to this script's directory (compose/auth/, where
# docker-compose.yml mounts it from; git ignores both files). It refuses to
# replace an existing key; delete both files to make a new one. Then prints
# how to mint a token for it. A development key only: in production the
# JWKS comes from your identity provider (compose/README.md, "Tokens").
set -euo pipefail
dir="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
key="$dir/dev-key.pem"
jwks="$dir/jwks/jwks.json"
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
if [ -e "$key" ]; then
  echo "dev-key.sh: $key exists; kept (delete it and $jwks for a new key)" >&2
else
  mkdir -p "$dir/jwks"
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$key")
  # the raw 32-byte public key is the tail of its DER SubjectPublicKeyInfo
  x="$(openssl pkey -in "$key" -pubout -outform DER | tail -c 32 | b64url)"
  kid="$(printf '{"crv":"Ed25519","kty":"OKP","x":"%s"}' "$x" | openssl dgst -sha256 -binary | b64url)"
  printf '{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "%s", "kid": "%s", "use": "sig", "alg": "EdDSA"}]}\n' \
    "$x" "$kid" >"$jwks.tmp"
  chmod 644 "$jwks.tmp" # read by the containers' unprivileged user
  mv "$jwks.tmp" "$jwks"
  echo "dev-key.sh: wrote $key and $jwks (kid $kid)"
fi
cat <<EOT
Mint a token (issuer and audience as docker-compose.yml's defaults):
  build/tools/smpost-token --key $key --iss smpost-dev --aud smpost --sub alice --name alice
  (--roles admin for RestoreReadDb and /metrics, --roles moderator for the moderator's rights)
EOT
