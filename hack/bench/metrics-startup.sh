#!/usr/bin/env bash
# What linking the local metrics server (internal/local/promserver: Prometheus's
# promql, tsdb and scrape packages) adds to msctl's start-up. msctl is built
# from HEAD twice, through build overlays so the tree is not touched: "with"
# links the package (a blank import in main, in case nothing else does), and
# "without" has the package replaced by a stub of its API that imports none of
# Prometheus. Then `msctl version` for wall time, peak RSS, and the package
# initialisation of the packages only "with" links (GODEBUG=inittrace=1, run
# on the built binary).
# Usage: hack/bench/metrics-startup.sh   (needs hyperfine and GNU time)
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git archive HEAD | tar -x -C "$work"
mkdir -p "$work/bin"
pkg="$work/internal/local/promserver"
cat >"$work/import.go" <<'GO'
package main

import _ "github.com/msctl/msctl/internal/local/promserver"
GO
cat >"$work/stub.go" <<'GO'
package promserver

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

type Target struct {
	Job, Instance, URL string
	Labels             map[string]string
	HonorLabels        bool
}

type Options struct {
	ScrapeInterval, Retention, QueryTimeout time.Duration
	MaxSamples                              int
	Log                                     *slog.Logger
}

type Server struct{}

func Open(string, Options) (*Server, error)  { return &Server{}, nil }
func (*Server) SetTargets([]Target) error     { return nil }
func (*Server) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (*Server) Handler() http.Handler         { return http.NotFoundHandler() }
func (*Server) Close() error                  { return nil }
GO
printf '{"Replace":{"%s/cmd/msctl/zz_promserver.go":"%s/import.go"}}\n' "$work" "$work" >"$work/with.json"
{
  printf '{"Replace":{"%s/stub.go":"%s/stub.go"' "$pkg" "$work"
  for f in "$pkg"/*.go; do
    case "$f" in *_test.go) ;; *) printf ',"%s":""' "$f" ;; esac
  done
  printf '}}\n'
} >"$work/without.json"
(cd "$work" && go build -trimpath -overlay with.json -o bin/build-with ./cmd/msctl &&
  go build -trimpath -overlay without.json -o bin/build-without ./cmd/msctl)

# Measure copies: a binary's mapped pages count in RSS, and the file as the
# linker wrote it can sit in the page cache in large folios, which showed as
# up to 35 MiB more peak RSS for the same program.
cp "$work/bin/build-without" "$work/bin/without"
cp "$work/bin/build-with" "$work/bin/with"
echo "size in bytes: without $(stat -c %s "$work/bin/without"), with $(stat -c %s "$work/bin/with")"

hyperfine --warmup 10 --runs 100 -N --export-markdown "$work/hyperfine.md" \
  "$work/bin/without version" "$work/bin/with version"
cat "$work/hyperfine.md"

for b in without with; do
  printf 'peak RSS of %s, KiB, 11 runs sorted: ' "$b"
  for _ in $(seq 11); do /usr/bin/time -f %M "$work/bin/$b" version 2>&1 >/dev/null | tail -n1; done | sort -n | tr '\n' ' '
  echo
done

# Package initialisation: per package, the least of 15 runs (the machine's
# load only adds to a package's time), summed over the packages only "with"
# initialises.
for b in without with; do
  for _ in $(seq 15); do GODEBUG=inittrace=1 "$work/bin/$b" version 2>&1 >/dev/null; done >"$work/init-$b.txt"
done
python3 - "$work/init-without.txt" "$work/init-with.txt" <<'PY'
import re, sys
from collections import defaultdict
def load(path):
    pkgs = defaultdict(list)
    for line in open(path):
        m = re.match(r"init (\S+) @\S+ ms, (\S+) ms clock, (\d+) bytes, (\d+) allocs", line)
        if m:
            pkgs[m[1]].append((float(m[2]), int(m[3]), int(m[4])))
    return pkgs
without, with_ = load(sys.argv[1]), load(sys.argv[2])
new = [p for p in with_ if p not in without]
ms = {p: min(r[0] for r in with_[p]) for p in new}
total = lambda pkgs: sum(min(r[0] for r in pkgs[p]) for p in pkgs)
print(f"packages initialised: {len(without)} without, {len(with_)} with ({len(new)} new)")
print(f"all init, sum of per-package least: {total(without):.1f} ms without, {total(with_):.1f} ms with")
print(f"new packages' init: {sum(ms.values()):.2f} ms, {sum(with_[p][0][1] for p in new)} bytes, {sum(with_[p][0][2] for p in new)} allocs")
for p in sorted(new, key=lambda p: -ms[p])[:8]:
    print(f"  {p}: {ms[p]:.3f} ms, {with_[p][0][1]} bytes")
own = [p for p in with_ if p.endswith("/internal/local/promserver")]
print("internal/local/promserver's own init (ms, bytes, allocs):", with_[own[0]][0] if own else "none")
PY
