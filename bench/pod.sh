#!/usr/bin/env bash
# pod.sh: the pod-level benchmark. The same axum app (bench/pod-app) on the same certificates,
# in five setups, in one run:
#   meshless  (a) in-process: meshless::serve + AuthorizeLayer + a 10-rule policy (conf/pod-policy.yaml)
#   bare      (b) in-process on bare tokio-rustls (WebPkiClientVerifier), no identity, no policy: the floor
#   proxy     (c) plaintext app behind the reference proxy (examples/proxy, same policy file)
#   nginx     (d) plaintext app behind nginx as the mTLS sidecar (conf/nginx.conf.in)
#   haproxy   (e) plaintext app behind haproxy (conf/haproxy.cfg.in)
# and, for the proxy's own goals, the bare rustls proxy of the harness:
#   yardstick (f) plaintext app behind bench/yardstick's yardstick
#
# The whole pod (app, and sidecar if any) is pinned to SERVER_CPU, one worker/thread each; the load
# generator (bench/yardstick's loadgen, one thread) to CLIENT_CPU. Per setup and round, on freshly
# started processes: identity checks (curl), HOLD_CONNS idle keep-alive connections (RSS of the
# pod before/after -> KiB per idle connection), keep-alive (CONNS connections, GET /orders/42 back
# to back -> RPS, p50, p99, and CPU per request of the pod: utime+stime of the app's and the
# sidecar's process trees from /proc, over the phase, divided by its requests), and new connections
# (HS_CONNS loops of connect + full mTLS handshake + one request -> handshakes/s). ROUNDS rounds,
# the order of the setups reversed every other round; the report gives the median and the range of
# each figure, and the goals of issue 17 as ratios within the run (per round, then the median).
#
# Needs: the Debian packages nginx-light, haproxy, openssl, curl (bench/setup.sh installs them,
# with stunnel4 and wrk, which this script does not use), cargo, and 2 CPUs. The load generator
# is the project's own (bench/yardstick), not wrk: wrk cannot present a client certificate.
#
# usage: bench/pod.sh [--publish]
#   --publish (or PUBLISH=1): also copy the chart to docs/pod-chart.svg and print the README table.
#   PERF_STAT=1: also count the pod's task-clock with `perf stat` over each keep-alive test, as a
#   cross-check of the /proc figure (needs perf). IDLE_S=10: first measure the pod's CPU with no
#   load for 10 s (and count its threads).
# Output: the run directory (RUN_DIR, or /tmp/meshless-pod.XXXXXX): results.tsv, table.md,
# pod-chart.svg, every raw output and config. Only 127.0.0.1 is used; every process it starts is
# stopped by its saved PID.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

ROUNDS=${ROUNDS:-3}               # alternating rounds
DURATION=${DURATION:-5}           # measured seconds per load test
WARMUP=${WARMUP:-1}               # unmeasured seconds before each
HS_DURATION=${HS_DURATION:-$DURATION}
CONNS=${CONNS:-32}                # keep-alive connections
HS_CONNS=${HS_CONNS:-32}          # concurrent new-connection loops
HOLD_CONNS=${HOLD_CONNS:-1000}    # idle connections for the memory figure
REQ_PATH=${REQ_PATH:-/orders/42}  # what the load generator asks for
SERVER_CPU=${SERVER_CPU:-0}       # the pod: app and sidecar
BACKEND_CPU=$SERVER_CPU           # lib.sh's name for where the app runs
CLIENT_CPU=${CLIENT_CPU:-1}       # load generator
BASE_PORT=${BASE_PORT:-18180}     # plaintext app; sidecars +1 (nginx), +2 (haproxy), +4 (yardstick),
                                  # +5 (proxy); the in-process app +6
SETUPS=${SETUPS:-meshless bare proxy nginx haproxy yardstick}
PUBLISH=${PUBLISH:-0}
PERF_STAT=${PERF_STAT:-0}         # 1: also count the pod's task-clock with perf stat over the keep-alive test
IDLE_S=${IDLE_S:-0}               # > 0: first measure the pod's CPU with no load over this many seconds
[ "${1:-}" = --publish ] && PUBLISH=1
ALLOWED_ID=spiffe://example.org/ns/default/sa/client
BACKEND_ADDR=127.0.0.1:$BASE_PORT
APP_TLS_PORT=$((BASE_PORT + 6))
POLICY_SRC=$HERE/conf/pod-policy.yaml
CANDIDATE_CMD=$ROOT/scripts/bench-proxy.sh   # start_peer candidate: the reference proxy

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
check_env nginx haproxy taskset curl openssl cargo awk ps
if [ "$(ulimit -n)" -lt $((3 * HOLD_CONNS + 1000)) ]; then
  echo "pod.sh: open-file limit $(ulimit -n) too low for HOLD_CONNS=$HOLD_CONNS" >&2
  exit 1
fi
make_run_dir meshless-pod
RESULTS=$RUN/results.tsv

# ---------------------------------------------------------------- setup
build_yardstick
cargo_release "$HERE/pod-app"
APP=$HERE/pod-app/target/release/pod-app
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "pod.sh: building examples/proxy (release)"
  (cd "$ROOT" && cargo build --release --quiet --example proxy)
fi
for bin in "$BIN/loadgen" "$BIN/yardstick" "$APP" "$ROOT/target/release/examples/proxy"; do
  [ -x "$bin" ] || { echo "pod.sh: $bin missing (SKIP_BUILD=1 with nothing built?)" >&2; exit 1; }
done
setup_certs
cp "$POLICY_SRC" "$RUN/policy.yaml"
export BENCH_POLICY=$RUN/policy.yaml   # the reference proxy enforces the same policy (scripts/bench-proxy.sh)
mkdir -p "$RUN/nginx-tmp"
LOADGEN_ARGS=(--ca "$CERTS/ca.crt" --cert "$CERTS/client.crt" --key "$CERTS/client.key" --sni localhost
  --path "$REQ_PATH")

# start_app MODE PORT NAME: the app pinned to SERVER_CPU; sets APP_PID
start_app() {
  start_bg "$3" "$SERVER_CPU" "$APP" --mode "$1" --listen "127.0.0.1:$2" --cert "$CERTS/server.crt" \
    --key "$CERTS/server.key" --ca "$CERTS/ca.crt" --policy "$RUN/policy.yaml"
  APP_PID=$BG_PID
}

# run_setup ROUND SETUP: one setup, fresh processes, every phase; appends a row to results.tsv
run_setup() {
  local round=$1 setup=$2 tag=r$1-$2 port side_pid="" conf ka hs app_t side_t
  case $setup in
    meshless | bare)
      port=$APP_TLS_PORT
      start_app "$setup" "$port" "$tag.app" ;;
    proxy | nginx | haproxy | yardstick)
      start_app plain "$BASE_PORT" "$tag.app"
      wait_ready "$BASE_PORT" plain || { echo "pod.sh: plaintext app did not come up; see $RUN/$tag.app.out" >&2; exit 1; }
      local peer=$setup
      [ "$setup" = proxy ] && peer=candidate
      port=$(port_of "$peer")
      start_peer "$peer" "$port" "$tag.sidecar"
      side_pid=$PEER_PID ;;
    *) echo "pod.sh: unknown setup $setup" >&2; exit 1 ;;
  esac
  if ! wait_ready "$port" client; then
    echo "pod.sh: $setup did not answer 200 within 10 s; see $RUN/$tag.*.out" >&2
    exit 1
  fi
  conf=("$(curl_code "$port" client)" "$(curl_code "$port" none)" "$(curl_code "$port" untrusted)" "$(curl_code "$port" intruder)")

  sleep 1
  local idle_us=- threads p
  if [ "$IDLE_S" != 0 ]; then
    # shellcheck disable=SC2086 # side_pid may be empty
    idle_us=$(cpu_ticks "$APP_PID" $side_pid)
    sleep "$IDLE_S"
    # shellcheck disable=SC2086
    idle_us=$(us_per $(($(cpu_ticks "$APP_PID" $side_pid) - idle_us)) "$IDLE_S")
  fi
  threads=0
  # shellcheck disable=SC2086
  for p in $(tree_pids "$APP_PID" $side_pid); do threads=$((threads + $(find "/proc/$p/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l))); done
  # shellcheck disable=SC2086 # side_pid may be empty
  hold_phase "$tag.hold" "$port" "$HOLD_CONNS" "$APP_PID" $side_pid
  sleep 1

  MEASURE=("$APP_PID" "${side_pid:-$APP_PID}")
  local perf_pid="" perf_req=-
  if [ "$PERF_STAT" = 1 ]; then
    # the same process trees, over the same window as /proc (perf stops on SIGINT)
    local pids
    # shellcheck disable=SC2086 # side_pid may be empty
    pids=$(tree_pids "$APP_PID" $side_pid | xargs | tr ' ' ',')
    perf stat -x, -e task-clock -o "$RUN/$tag.perf" -p "$pids" &
    perf_pid=$!
    sleep 0.2
  fi
  load_phase "$tag.keepalive" keepalive "$port" -c "$CONNS" -d "$DURATION" --warmup "$WARMUP"
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf_req=$(awk -F, -v n="$LOAD_ALL" '$3 == "task-clock" && n > 0 { printf "%.1f", $1 * 1000 / n }' "$RUN/$tag.perf")
  fi
  ka=$LOAD_RESULT
  app_t=${LOAD_TICKS[0]} side_t=${LOAD_TICKS[1]}
  [ -z "$side_pid" ] && side_t=0
  local ka_all=$LOAD_ALL srv_ka
  srv_ka=$(util $((app_t + side_t)) "$LOAD_T0" "$LOAD_T1")
  sleep 1

  load_phase "$tag.handshake" handshake "$port" -c "$HS_CONNS" -d "$HS_DURATION" --warmup "$WARMUP"
  hs=$LOAD_RESULT
  local hs_t=${LOAD_TICKS[0]}
  [ -n "$side_pid" ] && hs_t=$((hs_t + LOAD_TICKS[1]))

  [ -n "$side_pid" ] && stop_tree "$side_pid"
  stop_tree "$APP_PID"

  local e1 e2 b1 b2 pod_req
  e1=$(field errors "$ka") e2=$(field errors "$hs") b1=$(field non2xx "$ka") b2=$(field non2xx "$hs")
  pod_req=$(us_per $((app_t + side_t)) "$ka_all")
  printf '%s\t' "$round" "$setup" "$(field rps "$ka")" "$(field p50_us "$ka")" "$(field p99_us "$ka")" \
    "$(field rps "$hs")" "$HOLD_KIB" "$pod_req" "$(us_per "$side_t" "$ka_all")" \
    "$(us_per "$app_t" "$ka_all")" "$(us_per "$hs_t" "$LOAD_ALL")" "$srv_ka" "$(field client_cpu "$ka")" \
    "$((${e1:-0} + ${e2:-0}))" "$((${b1:-0} + ${b2:-0}))" "$HOLD_OK" "${conf[@]}" >>"$RESULTS"
  printf '%s\t%s\t%s\n' "${perf_req:--}" "$idle_us" "$threads" >>"$RESULTS"
  echo "   round $round $setup: $(field rps "$ka") rps, p99 $(field p99_us "$ka") us, pod $pod_req us/req, $(field rps "$hs") hs/s, $HOLD_KIB KiB/conn; identity ${conf[*]}"
  sleep 1
}

# ---------------------------------------------------------------- run
printf 'round\tsetup\trps\tp50_us\tp99_us\ths_s\tkib_conn\tpod_us_req\tside_us_req\tapp_us_req\tpod_us_hs\tpod_cpu_ka\tcli_cpu_ka\terrors\tnon2xx\thold_ok\tid_client\tid_nocert\tid_untrusted\tid_intruder\tperf_us_req\tidle_cpu_us_per_s\tthreads\n' >"$RESULTS"
read -r -a order <<<"$SETUPS"
for round in $(seq "$ROUNDS"); do
  echo "== round $round/$ROUNDS: ${order[*]}"
  for setup in "${order[@]}"; do run_setup "$round" "$setup"; done
  # reverse the order for the next round, so that drift on the machine does not favour one setup
  rev=()
  for ((i = ${#order[@]} - 1; i >= 0; i--)); do rev+=("${order[i]}"); done
  order=("${rev[@]}")
done

# ---------------------------------------------------------------- report
DATE=$(date -u +%Y-%m-%d)
cat >"$RUN/params.txt" <<EOF
date $DATE UTC; $ROUNDS rounds, setups alternating (order reversed every other round)
keep-alive: $CONNS connections x ${DURATION} s (+${WARMUP} s warm-up), GET $REQ_PATH; handshakes: $HS_CONNS loops x ${HS_DURATION} s; memory: $HOLD_CONNS idle connections
pod (app + sidecar) on CPU $SERVER_CPU, loadgen on CPU $CLIENT_CPU; $(nproc) CPUs, $(uname -r)
EOF

# summary.tsv: setup, metric, median, min, max
awk -F'\t' '
  function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
  function med(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  NR == 1 { for (i = 3; i <= 13; i++) col[i] = $i; next }
  { if (!($2 in seen)) { seen[$2] = 1; order[++ns] = $2 }
    for (i = 3; i <= 13; i++) { k = $2 SUBSEP i; n[k]++; v[k, n[k]] = $i + 0 } }
  END {
    for (s = 1; s <= ns; s++) for (i = 3; i <= 13; i++) {
      k = order[s] SUBSEP i; m = n[k]; delete a
      for (j = 1; j <= m; j++) a[j] = v[k, j]
      sort(a, m)
      printf "%s\t%s\t%s\t%s\t%s\n", order[s], col[i], med(a, m), a[1], a[m]
    }
  }' "$RESULTS" >"$RUN/summary.tsv"

# ratios.tsv: goal, median over rounds of the per-round ratio, min, max, target, pass
awk -F'\t' '
  function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
  function med(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
  { r[$1] = 1; for (k in c) x[$1, $2, k] = $(c[k]) }
  function goal(name, num, den, metric, op, target,   rd, q, m, a, ok) {
    m = 0
    for (rd in r) if (x[rd, num, metric] != "" && x[rd, den, metric] + 0 > 0) a[++m] = x[rd, num, metric] / x[rd, den, metric]
    if (m == 0) return
    sort(a, m); q = med(a, m)
    ok = (op == "") ? "-" : ((op == ">=" ? q >= target : q <= target) ? "pass" : "MISS")
    printf "%s\t%.3f\t%.3f\t%.3f\t%s\t%s\n", name, q, a[1], a[m], (op == "" ? "-" : op " " target), ok
  }
  END {
    goal("(a)/(b) keep-alive RPS", "meshless", "bare", "rps", ">=", 0.98)
    goal("(a)/(b) pod CPU per request", "meshless", "bare", "pod_us_req", "<=", 1.03)
    goal("(a)/(b) p99", "meshless", "bare", "p99_us", "", 0)
    goal("(a)/(b) handshakes/s", "meshless", "bare", "hs_s", "", 0)
    goal("(a)/(d) pod CPU per request", "meshless", "nginx", "pod_us_req", "<=", 0.33)
    goal("(a)/(d) p99", "meshless", "nginx", "p99_us", "<=", 0.5)
    goal("(a)/(d) keep-alive RPS", "meshless", "nginx", "rps", "", 0)
    goal("(a)/(d) KiB per idle connection", "meshless", "nginx", "kib_conn", "", 0)
    goal("(c)/(f) proxy CPU per request (sidecar only)", "proxy", "yardstick", "side_us_req", "<=", 1.05)
    goal("(c)/(d) keep-alive RPS", "proxy", "nginx", "rps", ">=", 1.15)
    goal("(c)/(f) handshakes/s", "proxy", "yardstick", "hs_s", ">=", 0.95)
    goal("(c)/(f) keep-alive RPS", "proxy", "yardstick", "rps", "", 0)
    goal("(c)/(f) pod CPU per request", "proxy", "yardstick", "pod_us_req", "", 0)
  }' "$RESULTS" >"$RUN/ratios.tsv"

# table.md: the markdown report
label() {
  case $1 in
    meshless) echo "(a) in-process meshless" ;; bare) echo "(b) in-process bare tokio-rustls" ;;
    proxy) echo "(c) app + meshless proxy" ;; nginx) echo "(d) app + nginx" ;;
    haproxy) echo "(e) app + haproxy" ;; yardstick) echo "(f) app + bare rustls proxy" ;; *) echo "$1" ;;
  esac
}
{
  echo "Pod-level benchmark, \`bench/pod.sh\`: $(head -1 "$RUN/params.txt")."
  sed -n '2,$p' "$RUN/params.txt" | sed 's/^/  /'
  echo
  echo "Median (min–max) over the rounds:"
  echo
  echo "| setup | keep-alive RPS | p50 ms | p99 ms | pod CPU µs/req | handshakes/s | KiB per idle conn |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for s in $SETUPS; do
    awk -F'\t' -v s="$s" -v l="$(label "$s")" '
      $1 == s { m[$2] = $3; lo[$2] = $4; hi[$2] = $5 }
      function f(k, fmt, div) { return sprintf(fmt " (" fmt "–" fmt ")", m[k] / div, lo[k] / div, hi[k] / div) }
      END { if (!("rps" in m)) exit
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", l, f("rps", "%.0f", 1), f("p50_us", "%.3f", 1000),
          f("p99_us", "%.3f", 1000), f("pod_us_req", "%.1f", 1), f("hs_s", "%.0f", 1), f("kib_conn", "%.1f", 1) }' "$RUN/summary.tsv"
  done
  echo
  echo "Goals (issue 17), as ratios within the run: the ratio in each round, median (min–max):"
  echo
  echo "| ratio | median | range | goal | |"
  echo "| --- | ---: | ---: | --- | --- |"
  awk -F'\t' '{ printf "| %s | %.2f | %.2f–%.2f | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$RUN/ratios.tsv"
  echo
  echo "CPU split (µs per keep-alive request, medians: app / sidecar), pod utilisation, client utilisation, errors, identity checks:"
  echo
  echo "| setup | app | sidecar | pod CPU % | loadgen CPU % | pod µs/handshake | errors | non-2xx | client / no cert / untrusted CA / intruder |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  for s in $SETUPS; do
    awk -F'\t' -v s="$s" -v l="$(label "$s")" '
      $2 == s { e += $14; b += $15; id = $17 " / " $18 " / " $19 " / " $20 }
      END { if (id != "") printf "%s\t%d\t%d\t%s\n", l, e, b, id }' "$RESULTS" >"$RUN/.extra"
    awk -F'\t' -v s="$s" -v extra="$(cat "$RUN/.extra")" '
      $1 == s { m[$2] = $3 }
      END { if (!("rps" in m)) exit; split(extra, x, "\t")
        printf "| %s | %.1f | %.1f | %.0f | %.0f | %.0f | %s | %s | %s |\n", x[1], m["app_us_req"], m["side_us_req"],
          m["pod_cpu_ka"] * 100, m["cli_cpu_ka"] * 100, m["pod_us_hs"], x[2], x[3], x[4] }' "$RUN/summary.tsv"
  done
  rm -f "$RUN/.extra"
  if [ "$PERF_STAT" = 1 ]; then
    echo
    echo "Pod CPU per keep-alive request, /proc utime+stime against perf stat task-clock over the same window (per round):"
    echo
    awk -F'\t' 'NR > 1 { printf "- round %s %s: /proc %s µs, perf %s µs\n", $1, $2, $8, $21 }' "$RESULTS"
  fi
  if [ "$IDLE_S" != 0 ]; then
    echo
    echo "The pod with no load ($IDLE_S s before the tests): CPU in µs per second, and threads (all processes of the pod):"
    echo
    awk -F'\t' 'NR > 1 { printf "- round %s %s: %s µs/s, %s threads\n", $1, $2, $22, $23 }' "$RESULTS"
  fi
  echo
  awk -F'\t' 'NR > 1 && $12 < 0.9 && $13 < 0.9 { bad = bad sprintf(" round %s %s (pod %.0f%%, loadgen %.0f%%);", $1, $2, $12 * 100, $13 * 100) }
    NR > 1 && $13 >= 0.9 { cb = cb sprintf(" round %s %s (%.0f%%);", $1, $2, $13 * 100) }
    END {
      if (bad != "") print "**Neither the pod nor the load generator was saturated in keep-alive** (something else had the CPUs; rates and p99 of these are not comparable):" bad
      else print "Keep-alive saturated the pod or the load generator in every round. (Load that slows the CPU without taking it, such as a neighbour on the same host, does not show here: look at the ranges.)"
      if (cb != "") print "The load generator was at 90 % or more of its CPU, so it co-limited the rate, in:" cb " compare CPU per request there."
    }' "$RESULTS"
} >"$RUN/table.md"

# pod-chart.svg: pod CPU per request and p99 of setups (a)-(e), median bars and min-max whiskers
awk -F'\t' -v setups="meshless bare proxy nginx haproxy" -v date="$DATE" -v rounds="$ROUNDS" -v conns="$CONNS" '
  { m[$1, $2] = $3; lo[$1, $2] = $4; hi[$1, $2] = $5 }
  function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); return s }
  function panel(x0, metric, div, unit, title, fmt,   i, s, max, y, w, wl, wh, v) {
    max = 0
    for (i = 1; i <= n; i++) if (hi[name[i], metric] / div > max) max = hi[name[i], metric] / div
    max *= 1.18
    printf "<text x=\"%d\" y=\"58\" class=\"h\">%s</text>\n", x0, esc(title)
    for (i = 1; i <= n; i++) {
      s = name[i]; y = 72 + (i - 1) * 34; v = m[s, metric] / div
      w = v / max * W; wl = lo[s, metric] / div / max * W; wh = hi[s, metric] / div / max * W
      printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"22\" class=\"%s\"/>\n", x0, y, w, (s == "meshless" ? "a" : (s == "bare" ? "b" : "s"))
      printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"w\"/>\n", x0 + wl, y + 11, x0 + wh, y + 11
      printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"w\"/><line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"w\"/>\n", x0 + wl, y + 6, x0 + wl, y + 16, x0 + wh, y + 6, x0 + wh, y + 16
      printf "<text x=\"%.1f\" y=\"%d\" class=\"v\">" fmt " %s</text>\n", x0 + wh + 6, y + 16, v, unit
    }
  }
  END {
    n = split(setups, name, " ")
    lab["meshless"] = "(a) in-process meshless"; lab["bare"] = "(b) in-process bare rustls"
    lab["proxy"] = "(c) app + meshless proxy"; lab["nginx"] = "(d) app + nginx sidecar"; lab["haproxy"] = "(e) app + haproxy sidecar"
    W = 230; H = 72 + n * 34 + 44
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"860\" height=\"%d\" viewBox=\"0 0 860 %d\" font-family=\"sans-serif\" font-size=\"13\">\n", H, H
    print "<style>.h{font-weight:bold}.a{fill:#2b7a3d}.b{fill:#8fbf9a}.s{fill:#9aa5b1}.w{stroke:#222;stroke-width:1.2}.v{fill:#222;font-size:12px}.t{font-size:15px;font-weight:bold}.n{fill:#555;font-size:11px}</style>"
    print "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    printf "<text x=\"10\" y=\"24\" class=\"t\">One axum app, five ways to give it mTLS + SPIFFE authorization: the whole pod on one CPU</text>\n"
    for (i = 1; i <= n; i++) printf "<text x=\"10\" y=\"%d\">%s</text>\n", 72 + (i - 1) * 34 + 16, esc(lab[name[i]])
    panel(215, "pod_us_req", 1, "µs", "CPU per request, app + sidecar", "%.1f")
    panel(555, "p99_us", 1000, "ms", "p99 latency, " conns " keep-alive connections", "%.2f")
    printf "<text x=\"10\" y=\"%d\" class=\"n\">bench/pod.sh, %s: median of %d alternating rounds, whiskers min-max. Lower is better.</text>\n", H - 24, date, rounds
    printf "<text x=\"10\" y=\"%d\" class=\"n\">CPU: utime+stime of the app and sidecar process trees (/proc) over the keep-alive test, per request.</text>\n", H - 10
    print "</svg>"
  }' "$RUN/summary.tsv" >"$RUN/pod-chart.svg"

echo
cat "$RUN/table.md"
echo
echo "pod.sh: results in $RUN (results.tsv, summary.tsv, ratios.tsv, table.md, pod-chart.svg)"
if [ "$PUBLISH" = 1 ]; then
  mkdir -p "$ROOT/docs"
  cp "$RUN/pod-chart.svg" "$ROOT/docs/pod-chart.svg"
  echo "pod.sh: chart copied to docs/pod-chart.svg; README table:"
  echo
  echo "| setup (same app, one CPU) | keep-alive RPS | p99 | CPU per request | new connections/s | memory per idle conn |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for s in meshless bare proxy nginx haproxy; do
    awk -F'\t' -v s="$s" -v l="$(label "$s")" '$1 == s { m[$2] = $3 }
      END { if ("rps" in m) printf "| %s | %.0f | %.2f ms | %.1f µs | %.0f | %.1f KiB |\n", l, m["rps"], m["p99_us"] / 1000, m["pod_us_req"], m["hs_s"], m["kib_conn"] }' "$RUN/summary.tsv"
  done
fi
