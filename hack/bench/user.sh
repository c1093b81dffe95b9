#!/usr/bin/env bash
# Benchmarks of the user service (services/user), recorded in
# docs/benchmarks.md under "User service (services/user)":
#   1. GetUser throughput: bare grpc-go server vs the full service over gRPC
#      and over HTTP/JSON (closed loop, 16 callers), -count runs each.
#   2. p50/p99 latency at half of the measured peak (open loop).
#   3. Idle RSS of the built binary with the default SQLite store.
# Usage: hack/bench/user.sh [count]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${1:-3}

echo "== throughput (go test -bench 'GetUser\$' -benchtime 3s -count $count)"
go test -run '^$' -bench 'GetUser$' -benchtime 3s -count "$count" ./services/user/ | grep '^Benchmark' | tee /tmp/user-bench.txt
awk '/calls\/s/ { split($1, n, "/"); sub(/-[0-9]+$/, "", n[2]); sum[n[2]] += $(NF-1); cnt[n[2]]++ }
  END {
    for (k in sum) avg[k] = sum[k] / cnt[k]
    printf "mean calls/s: bare %.0f, grpc-full %.0f, http-full %.0f\n", avg["grpc-bare"], avg["grpc-full"], avg["http-full"]
    printf "grpc-full / grpc-bare = %.2f (target >= 0.7)\n", avg["grpc-full"] / avg["grpc-bare"]
    printf "http-full / grpc-full = %.2f (target >= 0.5)\n", avg["http-full"] / avg["grpc-full"]
  }' /tmp/user-bench.txt

echo "== latency at half of peak (go test -bench GetUserLatency -benchtime 1x)"
go test -run '^$' -bench 'GetUserLatency' -benchtime 1x ./services/user/ | grep '^Benchmark'

echo "== idle RSS"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -trimpath -ldflags '-s -w' -o "$tmp/user" ./services/user
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
admin=127.0.0.1:$(port)
GRPC_ADDR=127.0.0.1:$(port) HTTP_ADDR=127.0.0.1:$(port) ADMIN_ADDR=$admin \
  DATABASE_URL="sqlite://$tmp/users.db" "$tmp/user" 2>"$tmp/log" &
pid=$!
for _ in $(seq 1 50); do
  ADMIN_ADDR=$admin "$tmp/user" --health-check 2>/dev/null && break
  sleep 0.2
done
sleep 5
rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid" || true
echo "idle RSS after 5s ready: $((rss_kib / 1024)) MiB (${rss_kib} KiB; target < 30 MiB)"
