#!/usr/bin/env bash
# The cluster demo (make demo-cluster): validate the bundled project,
# start a local Kubernetes control plane (internal/testcluster: real API
# server, kwok nodes, Istio and monitoring CRDs), deploy the four services
# with msctl, show their status, redeploy to show nothing changes, then stop
# the control plane. The first run builds the control plane's binaries
# (several minutes); later runs reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
bin/msctl config validate
bin/msctl lint

work=$(mktemp -d)
echo "demo: starting a local control plane (first run: builds kube-apiserver, etcd, kwok...)" >&2
go build -o "$work/testcluster" ./hack/testcluster
"$work/testcluster" > "$work/cluster.log" 2>&1 &
cluster=$!
trap 'kill -INT $cluster 2>/dev/null; wait $cluster 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 1200); do
  grep -q 'kubeconfig:' "$work/cluster.log" && break
  kill -0 $cluster 2>/dev/null || { cat "$work/cluster.log" >&2; exit 1; }
  sleep 1
done
kubeconfig=$(awk '/kubeconfig:/ {print $2; exit}' "$work/cluster.log")
[ -n "$kubeconfig" ] || { cat "$work/cluster.log" >&2; echo "demo: the control plane did not start" >&2; exit 1; }

msctl() { bin/msctl --kubeconfig "$kubeconfig" "$@"; }
msctl deploy --tag v1
msctl status
echo "demo: deploying the same again (no new revisions):" >&2
msctl deploy --tag v1 -q
msctl history order
echo "demo: done; the control plane stops now. To keep one: make testcluster, then msctl --kubeconfig PATH deploy" >&2
