#!/usr/bin/env bash
# Whole-process time of `msctl deploy` of the four bundled services to a local
# control plane (internal/testcluster, kwok nodes) beside a shell loop of
# `helm upgrade --install --wait` (Helm v4 CLI) of the same chart and values,
# each into a fresh namespace of the same cluster; then a no-change redeploy.
# Usage: hack/bench/deploy.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}

HELM_VERSION=v4.3.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/msctl/tools/helm-$HELM_VERSION"
helm="$cache/helm"
[ -x "$helm" ] || GOBIN="$cache" go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
make -s build
work=$(mktemp -d)
go build -o "$work/testcluster" ./hack/testcluster

"$work/testcluster" > "$work/cluster.log" 2>&1 &
cluster=$!
trap 'kill -INT $cluster 2>/dev/null; wait $cluster 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do grep -q 'kubeconfig:' "$work/cluster.log" && break; sleep 1; done
kubeconfig=$(awk '/kubeconfig:/ {print $2; exit}' "$work/cluster.log")
[ -n "$kubeconfig" ] || { cat "$work/cluster.log"; exit 1; }

# The chart values msctl derives, one file per service, for the Helm loop.
services="user inventory payment order"
for s in $services; do
  cat > "$work/$s-values.yaml" <<VALUES
name: $s
project: shop
image: {repository: localhost:5000/$s, tag: v1}
replicas: $([ "$s" = order ] && echo 3 || echo 2)
VALUES
done

ms() { date +%s%3N; }
for r in $(seq 1 "$rounds"); do
  t0=$(ms)
  bin/msctl --kubeconfig "$kubeconfig" -n "bench-msctl-$r" deploy --tag v1 -q >/dev/null
  t1=$(ms)
  bin/msctl --kubeconfig "$kubeconfig" -n "bench-msctl-$r" deploy --tag v1 -q >/dev/null
  t2=$(ms)
  for s in $services; do
    "$helm" --kubeconfig "$kubeconfig" upgrade --install "$s" manifests/charts/service -n "bench-helm-$r" \
      --create-namespace -f "$work/$s-values.yaml" --wait --timeout 5m >/dev/null
  done
  t3=$(ms)
  echo "round $r: msctl deploy $((t1 - t0)) ms, msctl no-change redeploy $((t2 - t1)) ms, helm loop $((t3 - t2)) ms"
done
