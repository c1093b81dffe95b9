#!/usr/bin/env bash
# Benchmarks of the user service (services/user), recorded in
# docs/benchmarks.md under "User service (services/user)":
#   1. GetUser throughput: bare grpc-go server vs the full service over gRPC
#      and over HTTP/JSON (closed loop, 16 callers), [count] rounds of all three.
#   2. p50/p99 latency at half of the measured peak (open loop).
#   3. Idle RSS of the built binary with the default SQLite store.
# Usage: hack/bench/user.sh [count]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${1:-3}

# The test binary is built once and run $count times with -count 1, so
# each round measures bare, grpc-full and http-full back to back (3s each):
# on a shared machine the load moves between rounds, and -count N would
# run all bare rounds first, then all full ones.
echo "== throughput (go test -bench 'GetUser\$' -benchtime 3s, $count rounds of -count 1)"
bin=$(mktemp -d)
go test -c -o "$bin/user.test" ./services/user/
: >/tmp/user-bench.txt
for _ in $(seq 1 "$count"); do
  (cd services/user && "$bin/user.test" -test.run '^$' -test.bench 'GetUser$' -test.benchtime 3s -test.count 1) |
    grep '^Benchmark' | tee -a /tmp/user-bench.txt
done
rm -rf "$bin"
awk '/calls\/s/ { split($1, n, "/"); sub(/-[0-9]+$/, "", n[2]); sum[n[2]] += $(NF-1); cnt[n[2]]++
    if (n[2] == "grpc-bare") { r++; bare[r] = $(NF-1) }
    if (n[2] == "grpc-full") full[r] = $(NF-1)
    if (n[2] == "http-full") { g[r] = full[r] / bare[r]; h[r] = $(NF-1) / full[r] } }
  END {
    for (k in sum) avg[k] = sum[k] / cnt[k]
    printf "mean calls/s: bare %.0f, grpc-full %.0f, http-full %.0f\n", avg["grpc-bare"], avg["grpc-full"], avg["http-full"]
    printf "grpc-full / grpc-bare = %.2f (target >= 0.7); per round:", avg["grpc-full"] / avg["grpc-bare"]
    for (i = 1; i <= r; i++) printf " %.2f", g[i]; print ""
    printf "http-full / grpc-full = %.2f (target >= 0.5); per round:", avg["http-full"] / avg["grpc-full"]
    for (i = 1; i <= r; i++) printf " %.2f", h[i]; print ""
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
