#!/usr/bin/env bash
# Orders per second end to end and CreateOrder latency at half of the peak,
# with SQLite and with PostgreSQL (the server at PGTEST_URL, default
# postgres://postgres@127.0.0.1:5432/postgres), recorded in
# docs/benchmarks.md under "Orders end to end". Each round starts the four
# service binaries afresh on new databases (BenchmarkCreateOrder in
# services/order/bench_test.go).
# Usage: hack/bench/order.sh [count]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${1:-3}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/order.test" ./services/order/
for _ in $(seq 1 "$count"); do
  (cd services/order && "$bin/order.test" -test.run '^$' -test.bench 'CreateOrder' -test.benchtime 1x -test.count 1) |
    grep -E '^(Benchmark|--- FAIL|FAIL|    )'
done
