#!/usr/bin/env bash
# Time of `msctl build` of the four bundled services for linux/amd64 and
# linux/arm64 with push to Debian's docker-registry on loopback: cold (empty
# msctl cache and registry; Go's own build cache as it is, so compiles of
# unchanged packages are reused, links are not), then warm with no change
# (nothing linked, nothing pushed). Then each image's size against its
# binary: the base layer, config and manifest are the overhead.
# Figures go to docs/benchmarks.md under "Building images".
# Usage: hack/bench/build.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
registry_bin=/usr/bin/docker-registry
[ -x "$registry_bin" ] || { echo "build.sh: $registry_bin missing: run hack/deps.sh" >&2; exit 1; }

work=$(mktemp -d)
export GOCACHE="$(go env GOCACHE)"
go build -o "$work/msctl" ./cmd/msctl
git clone -q --no-checkout . "$work/src"
git -C "$work/src" checkout -q "$(git rev-parse HEAD)"

ms() { date +%s%3N; }
registry=""
start_registry() {
  rm -rf "$work/storage"
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 10000))
    printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' "$work/storage" "$port" > "$work/registry.yml"
    "$registry_bin" serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
    registry_pid=$!
    for _ in $(seq 1 50); do
      curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { registry="127.0.0.1:$port"; return; }
      sleep 0.1
    done
    kill "$registry_pid" 2>/dev/null || true
  done
  echo "build.sh: docker-registry did not start" >&2; exit 1
}
stop_registry() { kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null || true; }
trap 'stop_registry; rm -rf "$work"' EXIT

for r in $(seq 1 "$rounds"); do
  start_registry
  cache="$work/cache-$r"
  t0=$(ms)
  XDG_CACHE_HOME="$cache" "$work/msctl" --config "$work/src/msctl.yaml" build --registry "$registry" -q -o json > "$work/cold.json"
  t1=$(ms)
  warm=""
  for _ in 1 2 3; do
    t2=$(ms)
    XDG_CACHE_HOME="$cache" "$work/msctl" --config "$work/src/msctl.yaml" build --registry "$registry" -q -o json > "$work/warm.json"
    warm="$warm $(($(ms) - t2))"
  done
  states=$(python3 -c 'import json,sys; print(",".join(sorted({r["state"] for r in json.load(open(sys.argv[1]))})))' "$work/warm.json")
  echo "round $r: cold $((t1 - t0)) ms, warm no-change$warm ms (warm states: $states; load average $(cut -d' ' -f1 /proc/loadavg))"
  [ "$r" -eq "$rounds" ] || stop_registry
done

echo "sizes (linux/amd64 image, bytes as pushed):"
python3 - "$work/cold.json" "$registry" <<'PY'
import json, subprocess, sys
results, registry = json.load(open(sys.argv[1])), sys.argv[2]
def raw(ref):
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", "docker://" + ref], check=True, capture_output=True).stdout
    return json.loads(out)
print("service    binary     app layer  base layer  config+manifest  image      overhead")
for r in results:
    repo = r["image"].split("@")[0]
    index = raw(r["image"])
    amd64 = next(m for m in index["manifests"] if m["platform"]["architecture"] == "amd64")
    m = raw(repo + "@" + amd64["digest"])
    base, app = m["layers"][0]["size"], m["layers"][1]["size"]
    meta = m["config"]["size"] + amd64["size"]
    total = base + app + meta
    print(f'{r["service"]:10} {r["binarySize"]:>10} {app:>10} {base:>10} {meta:>16} {total:>10} {(base + meta) / 1024:8.1f} KiB')
PY
