#!/usr/bin/env bash
# The local demo behind `make run`: the bundled API server, three leasehold agents electing a leader that runs a
# demo task, a crash failover (SIGKILL) and a graceful handover (SIGTERM), then what an operator sees with kubectl.
# Needs no cluster. Ends by itself in about a minute, exits 0, and removes its processes and temp files.
#
# `make run` builds the binaries first; run alone, this script builds them if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug
work=$(mktemp -d -t leasehold-demo.XXXXXX)
server=""
pids=()

cleanup() {
  local code=$?
  # Agents first (SIGTERM: they stop their tasks and release their Leases), then the API server.
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ "$code" = 0 ] || [ -z "${DEMO_KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then bold() { printf '\033[1m%s\033[0m\n' "$*"; }; else bold() { printf '%s\n' "$*"; }; fi
say() { printf '\n'; bold "== $*"; }
note() { printf '   %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Seconds to let the ticks run between acts, so there is something to read (DEMO_PAUSE overrides).
pause=${DEMO_PAUSE:-5}

for b in leasehold leasehold-apiserver stamp-task; do
  if [ ! -x "$bin/$b" ]; then
    note "building the binaries (cargo build)..."
    cargo build --locked -q -p leasehold -p leasehold-apiserver -p leasehold-tests --bins
    break
  fi
done
command -v kubectl >/dev/null || die "kubectl is needed for the last step (make tools explains)"

# Waits up to $1 seconds for the command in the remaining arguments to succeed.
wait_for() {
  local limit=$(($(now_ms) + $1 * 1000))
  shift
  until "$@"; do
    [ "$(now_ms)" -lt "$limit" ] || return 1
    sleep 0.05
  done
}

# Sets $port to a free loopback port (nothing answers on it). Not called in a subshell, so it counts on.
next_port=20530
free_port() {
  while (exec 3<>"/dev/tcp/127.0.0.1/$next_port") 2>/dev/null; do next_port=$((next_port + 1)); done
  port=$next_port
  next_port=$((next_port + 1))
}

say "1. Start leasehold-apiserver: a Kubernetes-compatible Lease API server, for tests and demos only"
"$bin/leasehold-apiserver" --listen 127.0.0.1:0 --tls --kubeconfig-out "$work/kubeconfig" \
  >"$work/url" 2>"$work/apiserver.log" &
server=$!
wait_for 10 test -s "$work/url" || die "the API server did not start: $(cat "$work/apiserver.log")"
note "listening on $(head -1 "$work/url") (HTTPS, self-signed; the kubeconfig embeds its CA)"

# Every agent gets the same config: fast timings for the demo, and one leader-gated task.
cat >"$work/leasehold.toml" <<TOML
[election]
enable = true
namespace = "default"

[lease]
duration = "3s"        # LD: a Lease not renewed for 3 s may be taken over
renew_deadline = "2s"  # RD: a leader that cannot renew for 2 s stops its tasks
retry_period = "500ms" # RP: the leader renews every 750 ms (RD - 2.5 RP), and retries every 500 ms after a failure

[[task]]
name = "demo"
command = ["$PWD/$bin/stamp-task", "--stamps", "$work/ticks.log", "--lock", "$work/demo.lock", "--tick-ms", "1000", "--print"]
grace = "500ms"
TOML

say "2. Start three agents (node-a, node-b, node-c); each runs the demo task only while it leads"
note "the task writes a line every second, with the LEASEHOLD_HOLDER and LEASEHOLD_EPOCH it was started with"
declare -A api pid
for n in a b c; do
  free_port
  api[$n]=$port
  free_port
  probe=$port
  KUBECONFIG="$work/kubeconfig" LEASEHOLD_CONFIG="$work/leasehold.toml" NODE_NAME="node-$n" POD_UID="pod-$n" \
    LEASEHOLD_LISTEN="127.0.0.1:${api[$n]}" LEASEHOLD_PROBE_LISTEN="127.0.0.1:$probe" \
    "$bin/leasehold" agent >"$work/node-$n.log" 2>&1 &
  pid[$n]=$!
  pids+=($!)
done

status_line() { "$bin/leasehold" status --addr "127.0.0.1:${api[$1]}" 2>/dev/null | head -1; }
leader() {
  local n
  for n in "$@"; do
    case "$(status_line "$n")" in *::success*) echo "$n"; return 0 ;; esac
  done
  return 1
}
show_status() {
  local n
  for n in "$@"; do printf '   node-%s: %s\n' "$n" "$(status_line "$n")"; done
}
# The demo task's lines so far, newest last, with seconds since the first one.
show_ticks() {
  awk -v n="$1" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                   if (!t0) t0 = f["mono"]; line[NR] = sprintf("   %7.3fs  %-5s holder=%s epoch=%s", (f["mono"] - t0) / 1e9, $1, f["holder"], f["epoch"]) }
                 END { for (i = (NR > n ? NR - n + 1 : 1); i <= NR; i++) print line[i] }' "$work/ticks.log"
}
# Whether node-$1's task has started (a start line with its holder).
started() { grep -q "^start .*holder=node-$1_" "$work/ticks.log" 2>/dev/null; }

wait_for 15 leader a b c >/dev/null || die "no leader within 15 s; see $work/node-*.log"
first=$(leader a b c)
wait_for 10 started "$first" || die "the leader did not start its task"
note "elected: node-$first"
note "\$ leasehold status   (on each node: DataKit's monitor line, then the tasks)"
show_status a b c
note ""
note "the leader's task ticks, and the others' stay stopped:"
sleep "$pause"
show_ticks $((pause + 1))
rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
note ""
note "resident memory (debug build): node-a $(rss "${pid[a]}") KiB, node-b $(rss "${pid[b]}") KiB, node-c $(rss "${pid[c]}") KiB"

say "3. SIGKILL the leader (node-$first): no release, so the others wait out the Lease (LD = 3 s)"
rest=()
for n in a b c; do [ "$n" = "$first" ] || rest+=("$n"); done
t0=$(now_ms)
kill -KILL "${pid[$first]}"
wait "${pid[$first]}" 2>/dev/null || true
wait_for 15 leader "${rest[@]}" >/dev/null || die "no new leader within 15 s"
second=$(leader "${rest[@]}")
wait_for 10 started "$second" || die "the new leader did not start its task"
failover=$(($(now_ms) - t0))
note "node-$second took over: its task started $(printf '%d.%03d' $((failover / 1000)) $((failover % 1000))) s after the kill"
note "(the killed agent's task was killed by its watchdog at once, so the two copies never overlap)"
show_status "${rest[@]}"
sleep "$pause"
show_ticks $((pause + 3))

say "4. SIGTERM the new leader (node-$second): it stops its task, then releases the Lease for an immediate handover"
third=""
for n in "${rest[@]}"; do [ "$n" = "$second" ] || third=$n; done
t0=$(now_ms)
kill -TERM "${pid[$second]}"
wait_for 10 started "$third" || die "node-$third did not take over"
handover=$(($(now_ms) - t0))
code=0
wait "${pid[$second]}" || code=$?
note "node-$third took over: its task started $(printf '%d.%03d' $((handover / 1000)) $((handover % 1000))) s after the signal (node-$second exited with $code)"
show_status "$third"
sleep "$pause"
show_ticks $((pause + 3))

say "5. What an operator sees: kubectl against the same server"
export KUBECONFIG="$work/kubeconfig"
note "\$ kubectl get lease -l app.kubernetes.io/managed-by=leasehold"
kubectl get lease -l app.kubernetes.io/managed-by=leasehold | sed 's/^/   /'
note "\$ kubectl get lease leasehold-default -o custom-columns=HOLDER:.spec.holderIdentity,EPOCH:.spec.leaseTransitions,RENEWED:.spec.renewTime"
kubectl get lease leasehold-default \
  -o custom-columns=HOLDER:.spec.holderIdentity,EPOCH:.spec.leaseTransitions,RENEWED:.spec.renewTime | sed 's/^/   /'

say "Summary"
note "failover after SIGKILL: $(printf '%d.%03d' $((failover / 1000)) $((failover % 1000))) s   (bounded by LD + takeover spread)"
note "handover after SIGTERM: $(printf '%d.%03d' $((handover / 1000)) $((handover % 1000))) s   (the leader released the Lease)"
overlaps=$(grep -c '^overlap' "$work/ticks.log" || true)
note "overlapping task copies: $overlaps"
[ "$overlaps" = 0 ] || die "two copies of the task ran at once"
note "done; stopping the agents and the server, removing $work"
