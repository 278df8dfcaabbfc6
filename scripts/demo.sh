#!/usr/bin/env bash
# The local demo behind `make run`: the bundled API server, leader election between three candidates, a crash
# failover and a graceful handover, then what an operator sees with kubectl. Needs no cluster; ends by itself
# and cleans up its processes and temp files.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting leasehold-apiserver (a Kubernetes-compatible Lease API server, for tests and demos only)"
"$bin/leasehold-apiserver" --listen 127.0.0.1:0 --tls --kubeconfig-out "$work/kubeconfig" >"$work/url" 2>"$work/apiserver.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
echo "listening on $(cat "$work/url"); kubeconfig in $work/kubeconfig"
export KUBECONFIG="$work/kubeconfig"

say "kubectl works against it unchanged"
kubectl version 2>/dev/null | sed -n '2p' || true
cat >"$work/lease.yaml" <<'YAML'
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: demo
  labels: {app.kubernetes.io/managed-by: leasehold}
spec:
  holderIdentity: node-a_demo
  leaseDurationSeconds: 15
YAML
kubectl apply -f "$work/lease.yaml"
kubectl get lease -l app.kubernetes.io/managed-by=leasehold
kubectl delete lease demo

say "done"
