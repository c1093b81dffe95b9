#!/usr/bin/env bash
# Runs the four bundled services together on this machine with SQLite and no
# other set-up, wires order to user, inventory and payment, creates a user and
# a product, and places an order over HTTP. Keeps the services running until
# Ctrl-C; with --once it stops after the order.
# Usage: hack/local.sh [--once]
set -euo pipefail
cd "$(dirname "$0")/.."
once=false
[ "${1:-}" = "--once" ] && once=true

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

for s in user inventory payment order; do
  go build -o "$work/$s" "./services/$s"
done

# Two API keys, stored only as SHA-256 hashes: an admin for you, a service
# key for order's calls to the others.
admin_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
service_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat > "$work/keys.json" <<KEYS
{"keys": [
  {"name": "local-admin", "sha256": "$(sha "$admin_key")", "roles": ["admin"], "expires": "2099-01-01T00:00:00Z", "rate_per_second": 1000, "burst": 1000},
  {"name": "order-service", "sha256": "$(sha "$service_key")", "roles": ["service"], "expires": "2099-01-01T00:00:00Z", "rate_per_second": 1000, "burst": 1000}
]}
KEYS
printf '%s\n' "$service_key" > "$work/downstream-api-key"

# Ports: user 1808x, inventory 2808x, payment 1908x, order 2908x
# (HTTP ...80, admin ...81, gRPC ...90): all below Linux's ephemeral range
# (32768 and up), where an outgoing connection can hold one when a service
# starts.
start() {
  local name=$1 base=$2; shift 2
  env HTTP_ADDR="127.0.0.1:${base}80" ADMIN_ADDR="127.0.0.1:${base}81" GRPC_ADDR="127.0.0.1:${base}90" \
    DATABASE_URL="sqlite://$work/$name.db" AUTH_API_KEYS_FILE="$work/keys.json" LOG_LEVEL=warn "$@" \
    "$work/$name" > "$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:${base}81/health/ready" >/dev/null 2>&1 && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "local: $name did not become ready:" >&2
  cat "$work/$name.log" >&2
  exit 1
}
start user 180
start inventory 280
start payment 190
start order 290 USER_ADDR=127.0.0.1:18090 INVENTORY_ADDR=127.0.0.1:28090 PAYMENT_ADDR=127.0.0.1:19090 \
  DOWNSTREAM_API_KEY_FILE="$work/downstream-api-key"

call() { curl -fsS -H "X-API-Key: $admin_key" -H 'Content-Type: application/json' "$@"; }
field() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" | head -n1; }

user_id=$(call -d '{"email":"ada@example.com","fullName":"Ada Lovelace"}' http://127.0.0.1:18080/api/v1/users | field id)
product_id=$(call -d '{"sku":"BOOK-1","name":"Notes on the Analytical Engine","priceCents":2500,"initialStock":10}' \
  http://127.0.0.1:28080/api/v1/products | field id)
echo "local: placing an order for user $user_id, product $product_id" >&2
order=$(call -i -d "{\"userId\":\"$user_id\",\"items\":[{\"productId\":\"$product_id\",\"quantity\":2}],\"paymentMethodToken\":\"tok_visa\"}" \
  http://127.0.0.1:29080/api/v1/orders)
echo "$order" | tr -d '\r' | sed -n '/^[Xx]-[Ee]xperiment/p;/^{/,$p'

if ! $once; then
  cat >&2 <<INFO

local: the four services are running (SQLite files in $work):
  user       http://127.0.0.1:18080   admin http://127.0.0.1:18081
  inventory  http://127.0.0.1:28080   admin http://127.0.0.1:28081
  payment    http://127.0.0.1:19080   admin http://127.0.0.1:19081
  order      http://127.0.0.1:29080   admin http://127.0.0.1:29081 (/metrics, /debug/breakers)
  API key:   X-API-Key: $admin_key
Press Ctrl-C to stop.
INFO
  wait
fi
