#!/usr/bin/env bash
# Runs the reference proxy (examples/proxy) as the candidate of bench/compare.sh:
# renders proxy.toml and a policy allowing only $BENCH_ALLOW from the BENCH_* variables,
# then execs the release binary (build it first: cargo build --release --example proxy).
#
#   CANDIDATE_NAME=meshless CANDIDATE_CMD='scripts/bench-proxy.sh' bench/compare.sh
#
# PROXY_WORKERS (default 1) sets runtime.worker_threads; 1 is a current-thread runtime,
# the same one worker the peers get. BENCH_POLICY (default: a one-rule policy allowing only
# $BENCH_ALLOW, written into $BENCH_RUN) is the policy file the proxy enforces; bench/pod.sh
# passes its ten-rule policy. PROXY_RELOAD_MS sets runtime.reload_interval_ms (default 2000).
set -euo pipefail
: "${BENCH_RUN:?} ${BENCH_LISTEN:?} ${BENCH_BACKEND:?} ${BENCH_CA:?} ${BENCH_CERT:?} ${BENCH_KEY:?} ${BENCH_ALLOW:?}"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PROXY_BIN:-$HERE/target/release/examples/proxy}

POLICY=${BENCH_POLICY:-$BENCH_RUN/meshless-policy.yaml}
if [ -z "${BENCH_POLICY:-}" ]; then
  cat >"$POLICY" <<EOF_POLICY
default: deny
rules:
  - name: bench-client
    action: allow
    from: [{identities: ["$BENCH_ALLOW"]}]
EOF_POLICY
fi

cat >"$BENCH_RUN/meshless-proxy.toml" <<EOF_CONFIG
[identity]
cert = "$BENCH_CERT"
key = "$BENCH_KEY"
bundle = "$BENCH_CA"

[[inbound]]
listen = "$BENCH_LISTEN"
forward = "$BENCH_BACKEND"
protocol = "http"
mode = "strict"
policy = "$POLICY"
app_protocol = "http1"

[runtime]
worker_threads = ${PROXY_WORKERS:-1}
reload_interval_ms = ${PROXY_RELOAD_MS:-2000}
EOF_CONFIG

export PROXY_LOG=${PROXY_LOG:-warn}
exec "$BIN" --config "$BENCH_RUN/meshless-proxy.toml"
