# shellcheck shell=bash
# lib.sh: what compare.sh and overload.sh share (sourced, not run): tool checks, the run directory,
# the certificates, starting/stopping processes by saved PID, /proc sampling, config rendering, the
# backend, and starting each peer. Only 127.0.0.1 is ever used.
#
# The sourcing script sets, before calling these functions: HERE (bench/), BASE_PORT, SERVER_CPU,
# BACKEND_CPU, CLIENT_CPU, ALLOWED_ID, BACKEND_ADDR, and (for start_peer candidate) CANDIDATE_CMD.
# NGINX_SED / HAPROXY_SED (arrays of sed expressions, default empty) are applied to the rendered
# nginx / haproxy configs on top of the placeholders.

SCRIPT=$(basename "$0")

# check_env TOOL... : the tools exist, there are 2 CPUs (unless SERVER_CPU = CLIENT_CPU), and the
# open-file limit is raised as far as it goes (the caller checks it is enough for its sizes).
check_env() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$SCRIPT: '$tool' not found; run bench/setup.sh (Debian packages) first" >&2
      exit 1
    fi
  done
  if [ "$(nproc --all)" -lt 2 ] && [ "$SERVER_CPU" != "$CLIENT_CPU" ]; then
    echo "$SCRIPT: needs 2 CPUs (or set SERVER_CPU=CLIENT_CPU=0)" >&2
    exit 1
  fi
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}

# make_run_dir PREFIX : sets RUN (RUN_DIR or a new /tmp/PREFIX.XXXXXX) and CERTS
make_run_dir() {
  RUN=${RUN_DIR:-$(mktemp -d "/tmp/$1.XXXXXX")}
  mkdir -p "$RUN"
  chmod 755 "$RUN"
  CERTS=$RUN/certs
  echo "$SCRIPT: run directory $RUN"
}

# ---------------------------------------------------------------- processes
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg NAME CPU CMD... : run CMD pinned to CPU, output in $RUN/NAME.out; sets BG_PID
start_bg() {
  local name=$1 cpu=$2
  shift 2
  taskset -c "$cpu" "$@" >"$RUN/$name.out" 2>&1 &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

# the PIDs and all their descendants
tree_pids() {
  local all="$*" frontier="$*" next p
  while [ -n "$frontier" ]; do
    next=""
    for p in $frontier; do next="$next $(ps -o pid= --ppid "$p" 2>/dev/null || true)"; done
    # shellcheck disable=SC2086,SC2116 # squeeze whitespace
    next=$(echo $next)
    all="$all $next"
    frontier=$next
  done
  echo "$all"
}

# stop_tree PID: SIGTERM to PID (nginx/haproxy masters stop their workers), then to any
# descendant that outlives it; waits for them; forgets PID.
stop_tree() {
  local pid=$1 tree p keep=()
  tree=$(tree_pids "$pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  for p in $tree; do kill "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# status_kib FIELD PID... : sum of a /proc/PID/status field (VmRSS, VmHWM; KiB) over the process
# trees
status_kib() {
  local field=$1 p sum=0 v
  shift
  for p in $(tree_pids "$@"); do
    v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# open file descriptors over the process trees
fd_count() {
  local p sum=0 v
  for p in $(tree_pids "$@"); do
    v=$(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# utime+stime in clock ticks over the process trees (a process's figure includes all of its
# threads, and those that have exited)
cpu_ticks() {
  local p sum=0 v
  for p in $(tree_pids "$@"); do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
HZ=$(getconf CLK_TCK)
now() { date +%s.%N; }
util() { awk -v c="$1" -v t0="$2" -v t1="$3" -v hz="$HZ" 'BEGIN { printf "%.2f", c / hz / (t1 - t0) }'; }
# us_per TICKS N: microseconds of CPU per operation (-1 if N is 0 or empty)
us_per() { awk -v c="$1" -v n="${2:-0}" -v hz="$HZ" 'BEGIN { printf "%.1f", (n > 0 ? c * 1e6 / hz / n : -1) }'; }

# field NAME "RESULT k=v k=v"
field() { echo "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print substr($0, length(k) + 2) }'; }

# render TEMPLATE OUT LISTEN [SED_EXPR...]: fill in the placeholders (and apply extra expressions)
render() {
  local tpl=$1 out=$2 listen=$3 extra=() e
  shift 3
  for e in "$@"; do extra+=(-e "$e"); done
  sed -e "s|@RUN@|$RUN|g" -e "s|@CERTS@|$CERTS|g" -e "s|@BACKEND_ADDR@|$BACKEND_ADDR|g" \
    -e "s|@LISTEN@|$listen|g" -e "s|@SPIFFE_DER_HEX@|$SPIFFE_DER_HEX|g" "${extra[@]}" "$tpl" >"$out"
}

# ---------------------------------------------------------------- setup
# cargo_release DIR [CARGO_ARGS...]: cargo build --release of the crate in DIR unless SKIP_BUILD=1
cargo_release() {
  local dir=$1
  shift
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "$SCRIPT: building $dir (release)"
    (cd "$dir" && cargo build --release --quiet "$@")
  fi
}

# build_yardstick: cargo build of bench/yardstick unless SKIP_BUILD=1; sets BIN
build_yardstick() {
  cargo_release "$HERE/yardstick"
  BIN=$HERE/yardstick/target/release
}

# setup_certs: certs.sh into $CERTS; sets SPIFFE_DER_HEX (haproxy's identity ACL: the DER bytes of
# a URI GeneralName: [6] IMPLICIT IA5String)
setup_certs() {
  "$HERE/certs.sh" "$CERTS" >/dev/null
  if [ ${#ALLOWED_ID} -ge 128 ]; then echo "SPIFFE ID too long for the short DER form" >&2; exit 1; fi
  SPIFFE_DER_HEX=86$(printf '%02X' ${#ALLOWED_ID})$(printf '%s' "$ALLOWED_ID" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
}

port_of() {
  case $1 in
    direct) echo "$BASE_PORT" ;;
    nginx) echo $((BASE_PORT + 1)) ;;
    haproxy) echo $((BASE_PORT + 2)) ;;
    stunnel) echo $((BASE_PORT + 3)) ;;
    yardstick) echo $((BASE_PORT + 4)) ;;
    candidate) echo "${CANDIDATE_PORT:-$((BASE_PORT + 5))}" ;;
    *) echo "unknown peer $1" >&2; exit 1 ;;
  esac
}

# curl_code PORT CERTNAME|none|plain -> HTTP status, or "tls-fail" if no HTTP answer
curl_code() {
  local port=$1 who=$2 code
  local args=(-s -o /dev/null -w '%{http_code}' --max-time 5)
  if [ "$who" = plain ]; then
    code=$(curl "${args[@]}" "http://127.0.0.1:$port/" || true)
  else
    args+=(--cacert "$CERTS/ca.crt" --resolve "localhost:$port:127.0.0.1")
    if [ "$who" != none ]; then args+=(--cert "$CERTS/$who.crt" --key "$CERTS/$who.key"); fi
    code=$(curl "${args[@]}" "https://localhost:$port/" || true)
  fi
  if [ -z "$code" ] || [ "$code" = 000 ]; then code=tls-fail; fi
  echo "$code"
}

wait_ready() { # wait_ready PORT plain|client
  for _ in $(seq 100); do
    [ "$(curl_code "$1" "$2")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# start_backend [SED_EXPR...]: the backend nginx (conf/backend-nginx.conf.in) on BACKEND_ADDR,
# pinned to BACKEND_CPU; sets BACKEND_PID
start_backend() {
  mkdir -p "$RUN/backend-tmp" "$RUN/nginx-tmp"
  render "$HERE/conf/backend-nginx.conf.in" "$RUN/backend.conf" "" "$@"
  start_bg backend "$BACKEND_CPU" nginx -e "$RUN/backend.stderr.log" -p "$RUN" -c "$RUN/backend.conf" -g 'daemon off;'
  BACKEND_PID=$BG_PID
  wait_ready "$BASE_PORT" plain || { echo "backend did not come up; see $RUN/backend.*" >&2; exit 1; }
}

# start_peer NAME PORT [OUTNAME]: start peer NAME on 127.0.0.1:PORT pinned to SERVER_CPU, output
# in $RUN/OUTNAME.out (default NAME); sets PEER_PID
start_peer() {
  local name=$1 port=$2 out=${3:-$1} listen=127.0.0.1:$2
  case $name in
    direct) PEER_PID=$BACKEND_PID; return 0 ;;
    nginx)
      render "$HERE/conf/nginx.conf.in" "$RUN/nginx.conf" "$listen" "${NGINX_SED[@]}"
      start_bg "$out" "$SERVER_CPU" nginx -e "$RUN/nginx.stderr.log" -p "$RUN" -c "$RUN/nginx.conf" -g 'daemon off;' ;;
    haproxy)
      render "$HERE/conf/haproxy.cfg.in" "$RUN/haproxy.cfg" "$listen" "${HAPROXY_SED[@]}"
      start_bg "$out" "$SERVER_CPU" haproxy -db -f "$RUN/haproxy.cfg" ;;
    stunnel)
      render "$HERE/conf/stunnel.conf.in" "$RUN/stunnel.conf" "$listen"
      start_bg "$out" "$SERVER_CPU" stunnel4 "$RUN/stunnel.conf" ;;
    yardstick)
      start_bg "$out" "$SERVER_CPU" "$BIN/yardstick" --listen "$listen" --backend "$BACKEND_ADDR" \
        --ca "$CERTS/ca.crt" --cert "$CERTS/server.crt" --key "$CERTS/server.key" --allow "$ALLOWED_ID" ;;
    candidate)
      BENCH_LISTEN=$listen BENCH_BACKEND=$BACKEND_ADDR BENCH_RUN=$RUN BENCH_CERTS=$CERTS BENCH_CA=$CERTS/ca.crt \
        BENCH_CERT=$CERTS/server.crt BENCH_KEY=$CERTS/server.key BENCH_ALLOW=$ALLOWED_ID \
        start_bg "$out" "$SERVER_CPU" bash -c "exec $CANDIDATE_CMD" ;;
  esac
  # shellcheck disable=SC2034 # used by the sourcing script
  PEER_PID=$BG_PID
}
NGINX_SED=()
HAPROXY_SED=()

# ---------------------------------------------------------------- load phases
# Both run the loadgen built by build_yardstick ($BIN/loadgen). LOADGEN_ARGS holds the loadgen's
# connection arguments (--plain, or --ca/--cert/--key/--sni; --path), set by the caller.
LOADGEN_ARGS=()

# load_phase NAME MODE PORT [ARGS...]: runs `loadgen MODE` (keepalive or handshake) against
# 127.0.0.1:PORT, pinned to CLIENT_CPU, output in $RUN/NAME.out, and reads utime+stime around it of
# each entry of the array MEASURE (an entry is one or more PIDs, separated by spaces, whose trees
# are summed). Sets LOAD_RESULT (the RESULT line, "RESULT" if none), LOAD_ALL (requests or
# connections done, warm-up included, as the CPU window is), LOAD_TICKS (array, one delta per
# MEASURE entry), LOAD_T0 and LOAD_T1.
MEASURE=()
# shellcheck disable=SC2034 # LOAD_* are read by the sourcing script
load_phase() {
  local name=$1 mode=$2 port=$3 m before=() i
  shift 3
  # shellcheck disable=SC2086 # an entry is a list of PIDs
  for m in "${MEASURE[@]}"; do before+=("$(cpu_ticks $m)"); done
  LOAD_T0=$(now)
  taskset -c "$CLIENT_CPU" "$BIN/loadgen" "$mode" --addr "127.0.0.1:$port" "${LOADGEN_ARGS[@]}" "$@" \
    >"$RUN/$name.out" 2>&1 || true
  LOAD_T1=$(now)
  LOAD_TICKS=()
  i=0
  # shellcheck disable=SC2086
  for m in "${MEASURE[@]}"; do LOAD_TICKS+=($(($(cpu_ticks $m) - before[i]))); i=$((i + 1)); done
  LOAD_RESULT=$(grep '^RESULT' "$RUN/$name.out" || echo "RESULT")
  LOAD_ALL=$(field all "$LOAD_RESULT")
}

# hold_phase NAME PORT CONNS PID... : RSS (VmRSS over the PIDs' trees) before and after CONNS idle
# keep-alive connections (`loadgen hold`, each did a handshake and one request), output in
# $RUN/NAME.out. Sets HOLD_RSS0, HOLD_RSS1, HOLD_HWM (VmHWM after), HOLD_OK (connections held)
# and HOLD_KIB (KiB per connection, -1 if none was held).
# shellcheck disable=SC2034 # HOLD_* are read by the sourcing script
hold_phase() {
  local name=$1 port=$2 conns=$3 pid line
  shift 3
  HOLD_RSS0=$(status_kib VmRSS "$@")
  start_bg "$name" "$CLIENT_CPU" "$BIN/loadgen" hold --addr "127.0.0.1:$port" "${LOADGEN_ARGS[@]}" \
    --conns "$conns" --hold 300
  pid=$BG_PID
  for _ in $(seq 600); do
    grep -q '^READY' "$RUN/$name.out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sleep 1
  HOLD_RSS1=$(status_kib VmRSS "$@")
  HOLD_HWM=$(status_kib VmHWM "$@")
  line=$(grep '^READY' "$RUN/$name.out" || echo "READY ok=0 errors=$conns")
  HOLD_OK=$(field ok "$line")
  stop_tree "$pid"
  HOLD_KIB=$(awk -v a="$HOLD_RSS0" -v b="$HOLD_RSS1" -v n="$HOLD_OK" 'BEGIN { printf "%.1f", (n > 0 ? (b - a) / n : -1) }')
}
