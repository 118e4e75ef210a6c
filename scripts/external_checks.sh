#!/usr/bin/env bash
# Checks with tools from outside the Rust ecosystem, run by CI after the build:
#  1. every profile set's GET /openapi.json validates as OpenAPI 3.1 (openapi-spec-validator);
#  2. schemathesis against the default set: no 5xx, responses match their schemas, negative
#     data rejected, no undocumented status;
#  3. EdDSA interop: tokens verify with PyJWT using only the JWKS, before and after
#     `auth-server keys rotate`, and the old token keeps working on the server;
#  4. a Python client generated from /openapi.json by openapi-python-client runs the README
#     walkthrough against a live server, with typed timestamps, ids and errors.
# Needs: python3 with openapi-spec-validator, schemathesis, pyjwt, cryptography,
# openapi-python-client (CI installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${AUTH_SERVER_BIN:-target/debug/auth-server}
[ -x "$BIN" ] || cargo build -p auth-server
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
json_get() { python3 -c "import json,sys;d=json.load(sys.stdin);print($1)"; }

# start NAME ARGS...: starts a server on a fresh SQLite file; sets URL and DB.
start() {
    local name=$1; shift
    local port; port=$(free_port)
    DB="sqlite://$WORK/$name.db"
    URL="http://127.0.0.1:$port"
    "$BIN" serve --bind "127.0.0.1:$port" --database-url "$DB" \
        --argon2-memory-kib 256 --argon2-iterations 1 \
        --rate-login-email-ip off --rate-login-email off --rate-login-ip off \
        --rate-register-ip off --rate-refresh-ip off "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && return 0; sleep 0.1; done
    echo "server $name did not start"; cat "$WORK/$name.log"; return 1
}

echo "== OpenAPI 3.1 validation"
export AUTH_KEY_ENCRYPTION_KEY=$(python3 -c 'import os;print(os.urandom(32).hex())')
for set in "native,envelope,rbac" "personal-token" "jwt-user" "native,envelope,rbac,eddsa"; do
    profiles=${set%,eddsa}
    extra=()
    [ "$set" != "$profiles" ] && extra=(--signing-algorithm eddsa)
    name=$(echo "$set" | tr ',' '_')
    start "openapi_$name" --profiles "$profiles" "${extra[@]}"
    curl -sf "$URL/openapi.json" >"$WORK/$name.json"
    python3 -m openapi_spec_validator "$WORK/$name.json"
    echo "   $set: $(json_get 'len(d["paths"])' <"$WORK/$name.json") paths, valid"
done

echo "== schemathesis"
start schemathesis --profiles native,envelope,rbac
AUTH_USER_PASSWORD=schemathesis-admin "$BIN" user --database-url "$DB" create \
    --email admin@example.com --role admin >/dev/null
TOKEN=$(curl -sf "$URL/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"email":"admin@example.com","password":"schemathesis-admin"}' | json_get 'd["token"]["access_token"]')
# Routes that revoke the admin's own token (logout, refresh, password change, deletions) are
# left out so the run stays authenticated; the conformance suite covers them.
(cd "$WORK" && schemathesis run "$URL/openapi.json" -H "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,response_schema_conformance,negative_data_rejection,status_code_conformance \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-50}" --exclude-method DELETE \
    --exclude-path /api/v1/auth/logout --exclude-path /api/v1/auth/refresh \
    --exclude-path /api/v1/auth/password)

echo "== EdDSA interop with PyJWT"
start interop --profiles native --signing-algorithm eddsa
register() {
    curl -sf "$URL/api/v1/auth/$1" -H 'Content-Type: application/json' \
        -d '{"email":"interop@example.com","password":"interop-password"}' | json_get 'd["token"]["access_token"]'
}
OLD=$(register register)
python3 scripts/jwks_interop.py "$URL" "$OLD"
"$BIN" keys --database-url "$DB" rotate
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
# Same database, new process: it signs with the rotated key and still verifies the old one.
port=$(free_port); URL="http://127.0.0.1:$port"
"$BIN" serve --bind "127.0.0.1:$port" --database-url "$DB" --profiles native \
    --signing-algorithm eddsa >"$WORK/interop2.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
NEW=$(register login)
[ "$(python3 -c "import jwt,sys;print(jwt.get_unverified_header(sys.argv[1])['kid']!=jwt.get_unverified_header(sys.argv[2])['kid'])" "$OLD" "$NEW")" = True ]
python3 scripts/jwks_interop.py "$URL" "$OLD" "$NEW"
curl -sf "$URL/api/v1/auth/me" -H "Authorization: Bearer $OLD" >/dev/null
echo "   the token signed before the rotation still works"

echo "== a generated client (openapi-python-client) runs the README walkthrough"
start generated_client --profiles native,envelope,rbac
python3 scripts/generated_client.py "$URL"
echo "== external checks passed"
