#!/usr/bin/env bash
# Runs the reference proxy (examples/proxy) as the candidate of bench/compare.sh:
# renders proxy.toml and a policy allowing only $BENCH_ALLOW from the BENCH_* variables,
# then execs the release binary (build it first: cargo build --release --example proxy).
#
#   CANDIDATE_NAME=meshless CANDIDATE_CMD='scripts/bench-proxy.sh' bench/compare.sh
#
# PROXY_WORKERS (default 1) sets runtime.worker_threads; 1 is a current-thread runtime,
# the same one worker the peers get.
set -euo pipefail
: "${BENCH_RUN:?} ${BENCH_LISTEN:?} ${BENCH_BACKEND:?} ${BENCH_CA:?} ${BENCH_CERT:?} ${BENCH_KEY:?} ${BENCH_ALLOW:?}"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PROXY_BIN:-$HERE/target/release/examples/proxy}

cat >"$BENCH_RUN/meshless-policy.yaml" <<EOF_POLICY
default: deny
rules:
  - name: bench-client
    action: allow
    from: [{identities: ["$BENCH_ALLOW"]}]
EOF_POLICY

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
policy = "$BENCH_RUN/meshless-policy.yaml"
app_protocol = "http1"

[runtime]
worker_threads = ${PROXY_WORKERS:-1}
EOF_CONFIG

export PROXY_LOG=${PROXY_LOG:-warn}
exec "$BIN" --config "$BENCH_RUN/meshless-proxy.toml"
