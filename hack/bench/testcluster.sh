#!/usr/bin/env bash
# Benchmarks of the test control plane (internal/testcluster), as recorded in
# docs/benchmarks.md.
#
#   hack/bench/testcluster.sh cold   build the binaries into an empty msctl cache
#   hack/bench/testcluster.sh warm   start-to-ready of a cluster whose binaries are cached
#
# cold uses a throw-away XDG_CACHE_HOME, so your msctl cache is untouched.
# Go's build cache (which defaults to $XDG_CACHE_HOME/go-build) is kept unless
# COLD_GOCACHE=1, which uses an empty one too: the true first run on a
# machine. The module cache is always reused.
set -euo pipefail
cd "$(dirname "$0")/../.."

case "${1:-}" in
cold)
	tmp=$(mktemp -d)
	trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
	go build -o "$tmp/testcluster" ./hack/testcluster
	if [ "${COLD_GOCACHE:-0}" = 1 ]; then
		export GOCACHE="$tmp/gocache"
		echo "go build cache: empty ($GOCACHE)"
	else
		GOCACHE=$(go env GOCACHE)
		export GOCACHE
		echo "go build cache: $GOCACHE, $(du -sh "$GOCACHE" | cut -f1)"
	fi
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	start=$(date +%s%N)
	XDG_CACHE_HOME="$tmp/cache" "$tmp/testcluster" -prepare
	end=$(date +%s%N)
	echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
	awk -v ns=$((end - start)) 'BEGIN { printf "cold build of the binaries and CRDs: %.1f s\n", ns / 1e9 }'
	;;
warm)
	# Builds the binaries first if your cache lacks them (not timed here).
	go run ./hack/testcluster -prepare
	go test -run '^$' -bench '^BenchmarkStart$' -benchtime "${BENCHTIME:-5x}" ./internal/testcluster
	;;
*)
	echo "usage: $0 cold|warm" >&2
	exit 2
	;;
esac
