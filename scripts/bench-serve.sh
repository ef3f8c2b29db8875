#!/usr/bin/env bash
# Whole-process comparison, same run: an axum hello service behind meshless (mTLS +
# identity + policy) against the same service on bare tokio-rustls with rustls'
# WebPkiClientVerifier and no policy. Same certificates, same one-thread runtime,
# pinned to one CPU; the shared harness's load generator (one thread) on the other.
#
# usage: scripts/bench-serve.sh            (ROUNDS=3 DURATION=5 CONNS=32 by default)
# Uses the harness in bench/ (its loadgen and certs.sh); set BENCH to use another copy.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=${BENCH:-$ROOT/bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-32}
HS_DURATION=${HS_DURATION:-$DURATION}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-18443}
RUN=$(mktemp -d /tmp/meshless-serve-bench.XXXXXX)

# Use the harness's load generator if it was built (compare.sh builds it), else build
# it out of tree (a BENCH directory may be read-only).
LOADGEN=$BENCH/yardstick/target/release/loadgen
if [ ! -x "$LOADGEN" ]; then
  echo "building loadgen (release)"
  cp -r "$BENCH/yardstick" "$RUN/yardstick"
  cargo build --release --quiet --manifest-path "$RUN/yardstick/Cargo.toml" --bin loadgen
  LOADGEN=$RUN/yardstick/target/release/loadgen
fi
echo "building the hello service (release)"
cargo build --release --quiet --example hello_bench
HELLO=$ROOT/target/release/examples/hello_bench
"$BENCH/certs.sh" "$RUN/certs" >/dev/null 2>&1
C=$RUN/certs

pid=
stop() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=
}
trap stop EXIT

start() {
  taskset -c "$SERVER_CPU" "$HELLO" --mode "$1" --listen "127.0.0.1:$PORT" \
    --cert "$C/server.crt" --key "$C/server.key" --ca "$C/ca.crt" \
    --allow spiffe://example.org/ns/default/sa/client >"$RUN/$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server $1 did not start" >&2; cat "$RUN/$1.log" >&2; exit 1
}

load() { # mode extra-args...
  taskset -c "$CLIENT_CPU" "$LOADGEN" "$1" --addr "127.0.0.1:$PORT" --sni localhost \
    --cert "$C/client.crt" --key "$C/client.key" "${@:2}" | grep '^RESULT'
}

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

printf '%s\t%s\t%s\t%s\t%s\n' round mode rps p99_us hs_per_s >"$RUN/results.tsv"
for round in $(seq "$ROUNDS"); do
  for mode in bare meshless; do
    start "$mode"
    if [ "$mode" = meshless ]; then
      # Same behaviour as a mesh: the allowed identity gets 200, another one of the same CA 403.
      for who in client:200 intruder:403; do
        got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$C/ca.crt" \
          --cert "$C/${who%%:*}.crt" --key "$C/${who%%:*}.key" \
          --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/")
        [ "$got" = "${who##*:}" ] || { echo "identity check: ${who%%:*} got $got" >&2; exit 1; }
      done
    fi
    ka=$(load keepalive -c "$CONNS" -d "$DURATION" --warmup "$WARMUP")
    hs=$(load handshake -c "$CONNS" -d "$HS_DURATION" --warmup "$WARMUP")
    stop
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$mode" "$(field rps <<<"$ka")" "$(field p99_us <<<"$ka")" \
      "$(field rps <<<"$hs")" >>"$RUN/results.tsv"
    echo "round $round $mode: $ka"
  done
done

echo
column -t "$RUN/results.tsv"
awk -F'\t' 'NR > 1 { rps[$2] += $3; p99[$2] += $4; hs[$2] += $5; n[$2]++ }
  END {
    printf "\nmeans over %d rounds: bare rps=%.0f p99=%.0fus hs/s=%.0f | meshless rps=%.0f p99=%.0fus hs/s=%.0f\n",
      n["bare"], rps["bare"]/n["bare"], p99["bare"]/n["bare"], hs["bare"]/n["bare"],
      rps["meshless"]/n["meshless"], p99["meshless"]/n["meshless"], hs["meshless"]/n["meshless"]
    printf "ratios meshless/bare: throughput %.3f  p99 %.3f  handshakes/s %.3f\n",
      rps["meshless"]/rps["bare"], p99["meshless"]/p99["bare"], hs["meshless"]/hs["bare"]
  }' "$RUN/results.tsv" | tee "$RUN/summary.txt"
echo "run directory: $RUN"
