#!/usr/bin/env bash
# overload.sh: the overload attacks of issue 16 against mTLS sidecars (see README.md, "Overload").
#
# For each server (nginx, haproxy, and a candidate if CANDIDATE_CMD is set) and each attack, on a
# freshly started server (and backend), bench/yardstick's `attack` (pinned to CLIENT_CPU) sets the
# attack up and then sends a stream of good mTLS clients through it, while this script samples the
# server's process tree (VmRSS summed, open descriptors) and keeps the peak:
#   A  SILENT TCP connections that never send a byte + DRIBBLE connections sending a ClientHello
#      one byte per DRIBBLE_INTERVAL_MS
#   B  H2_CONNS HTTP/2 connections from the allowed identity x H2_STREAMS streams to /stall, a path
#      the app never answers (the backend proxies it to `attack blackhole`)
#   C  A and B at once
#   0  no attack (baseline; not in the default ATTACKS)
# Only 127.0.0.1 is ever used. Every process it starts is stopped by its saved PID.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

SILENT=${SILENT:-5000}                 # attack A: silent TCP connections
DRIBBLE=${DRIBBLE:-200}                # attack A: ClientHello one byte per interval
DRIBBLE_INTERVAL_MS=${DRIBBLE_INTERVAL_MS:-1000}
H2_CONNS=${H2_CONNS:-3}                # attack B: HTTP/2 connections (allowed identity)
H2_STREAMS=${H2_STREAMS:-200}          # attack B: streams per connection to STALL_PATH
STALL_PATH=${STALL_PATH:-/stall}
GOOD=${GOOD:-20}                       # good requests per attack (new mTLS connection + 1 GET each)
GOOD_INTERVAL_MS=${GOOD_INTERVAL_MS:-250}
GOOD_TIMEOUT_MS=${GOOD_TIMEOUT_MS:-5000}
GOOD_PATH=${GOOD_PATH:-/}
GOOD_H2=${GOOD_H2:-0}                  # 1: good clients speak h2 instead of HTTP/1.1
SETTLE_MS=${SETTLE_MS:-1000}           # pause between attack setup and the first good client
OBSERVE_S=${OBSERVE_S:-20}             # attack kept in place this long after setup (>= 15)
REOPEN=${REOPEN:-0}                    # 1: replace each silent/dribbling connection the server closes
CONNECT_CONCURRENCY=${CONNECT_CONCURRENCY:-256}
SAMPLE_S=${SAMPLE_S:-0.5}              # RSS/fd sampling period
ATTACKS=${ATTACKS:-A B C}
SERVER_CPU=${SERVER_CPU:-0}
BACKEND_CPU=${BACKEND_CPU:-$SERVER_CPU}
CLIENT_CPU=${CLIENT_CPU:-1}
BASE_PORT=${BASE_PORT:-18080}          # backend; nginx +1, haproxy +2, candidate +5, blackhole +9
BLACKHOLE_PORT=${BLACKHOLE_PORT:-$((BASE_PORT + 9))}
CANDIDATE_NAME=${CANDIDATE_NAME:-candidate}
SERVERS=${SERVERS:-nginx haproxy}
if [ -n "${CANDIDATE_CMD:-}" ]; then SERVERS="$SERVERS candidate"; fi
ALLOWED_ID=spiffe://example.org/ns/default/sa/client
BACKEND_ADDR=127.0.0.1:$BASE_PORT

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
check_env nginx haproxy taskset curl openssl cargo awk ps
need_fds=$((SILENT + DRIBBLE + H2_CONNS + GOOD + 256))
if [ "$(ulimit -n)" -lt "$need_fds" ]; then
  echo "overload.sh: open-file limit $(ulimit -n) < $need_fds needed by the attack tool" >&2
  exit 1
fi

# HTTP/2 on the peers' listeners, for this script only (compare.sh's figures stay HTTP/1.1-only)
NGINX_SED=('s|ssl backlog=4096;|ssl http2 backlog=4096;|')
HAPROXY_SED=('s|alpn http/1\.1|alpn h2,http/1.1|')
# the backend's never-answering path: proxied to the blackhole, which accepts and never writes
BACKEND_SED=("s|location / {|location $STALL_PATH { proxy_pass http://127.0.0.1:$BLACKHOLE_PORT; proxy_read_timeout 3600s; proxy_send_timeout 3600s; }\n        location / {|")

# this script's own sampling (ps, /proc reads) runs on the client CPU, away from the server's;
# the servers are started with their own taskset
taskset -pc "$CLIENT_CPU" $$ >/dev/null

make_run_dir meshless-overload
RESULTS=$RUN/overload.tsv
build_yardstick
ATTACK=$BIN/attack
setup_certs

attack_args() { # attack_args A|B|C|0
  case $1 in
    0) ;;
    A) echo "--silent $SILENT --dribble $DRIBBLE --dribble-interval-ms $DRIBBLE_INTERVAL_MS" ;;
    B) echo "--h2-conns $H2_CONNS --h2-streams $H2_STREAMS --h2-path $STALL_PATH" ;;
    C) echo "$(attack_args A) $(attack_args B)" ;;
    *) echo "overload.sh: unknown attack '$1' (A, B, C or 0)" >&2; exit 1 ;;
  esac
}
for a in $ATTACKS; do attack_args "$a" >/dev/null; done

# a fresh backend + blackhole (the app), then the server; sets PEER_PID
start_all() { # start_all SERVER PORT OUTNAME
  start_bg "blackhole-$3" "$BACKEND_CPU" "$ATTACK" blackhole --listen "127.0.0.1:$BLACKHOLE_PORT"
  BLACKHOLE_PID=$BG_PID
  start_backend "${BACKEND_SED[@]}"
  start_peer "$1" "$2" "$3"
}
stop_all() {
  stop_tree "$PEER_PID"
  stop_tree "$BACKEND_PID"
  stop_tree "$BLACKHOLE_PID"
}

printf 'server\tattack\tgood_ok\tgood_total\tgood_p50_ms\tgood_p99_ms\tgood_max_ms\tsilent_closed_5s_pct\tsilent_closed_15s_pct\tsilent_open_end\tdribble_closed\th2_responses\th2_statuses\trss0_kib\tfd0\tpeak_rss_kib\tpeak_fds\talive\tsetup_s\temfile\tresult\n' >"$RESULTS"

for server in $SERVERS; do
  port=$(port_of "$server")
  label=$server
  [ "$server" = candidate ] && label=$CANDIDATE_NAME
  for attack in $ATTACKS; do
    name=$server-$attack
    echo "== $label, attack $attack (127.0.0.1:$port)"
    start_all "$server" "$port" "$name"
    if ! wait_ready "$port" client; then
      echo "   did not answer 200 within 10 s; see $RUN/$name.out" >&2
      stop_all
      continue
    fi
    sleep 1
    rss0=$(status_kib VmRSS "$PEER_PID")
    fd0=$(fd_count "$PEER_PID")
    # shellcheck disable=SC2046 # attack_args is a list of flags
    start_bg "$name.attack" "$CLIENT_CPU" "$ATTACK" --addr "127.0.0.1:$port" --sni localhost \
      --ca "$CERTS/ca.crt" --cert "$CERTS/client.crt" --key "$CERTS/client.key" \
      $(attack_args "$attack") --good "$GOOD" --good-interval-ms "$GOOD_INTERVAL_MS" \
      --good-timeout-ms "$GOOD_TIMEOUT_MS" --good-path "$GOOD_PATH" --settle-ms "$SETTLE_MS" \
      --observe-s "$OBSERVE_S" --connect-concurrency "$CONNECT_CONCURRENCY" \
      $([ "$GOOD_H2" = 1 ] && echo --good-h2) $([ "$REOPEN" = 1 ] && echo --reopen)
    ATTACK_PID=$BG_PID
    peak_rss=$rss0 peak_fds=$fd0
    while kill -0 "$ATTACK_PID" 2>/dev/null; do
      r=$(status_kib VmRSS "$PEER_PID")
      f=$(fd_count "$PEER_PID")
      [ "$r" -gt "$peak_rss" ] && peak_rss=$r
      [ "$f" -gt "$peak_fds" ] && peak_fds=$f
      sleep "$SAMPLE_S"
    done
    wait "$ATTACK_PID" 2>/dev/null || true
    stop_tree "$ATTACK_PID"
    alive=yes
    kill -0 "$PEER_PID" 2>/dev/null || alive=no
    res=$(grep '^RESULT' "$RUN/$name.attack.out" || echo "RESULT")
    grep -E '^attack|^  ' "$RUN/$name.attack.out" | sed 's/^/   /' || true
    echo "   server: RSS $((rss0 / 1024)) -> peak $((peak_rss / 1024)) MiB, fds $fd0 -> peak $peak_fds, alive=$alive"
    stop_all
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
      "$label" "$attack" "$(field good_ok "$res")" "$(field good_total "$res")" "$(field good_p50_ms "$res")" \
      "$(field good_p99_ms "$res")" "$(field good_max_ms "$res")" "$(field silent_closed_5s_pct "$res")" \
      "$(field silent_closed_15s_pct "$res")" "$(field silent_open_end "$res")" "$(field dribble_closed "$res")" \
      "$(field h2_responses "$res")" "$(field h2_statuses "$res")" "$rss0" "$fd0" "$peak_rss" "$peak_fds" "$alive" \
      "$(field setup_s "$res")" "$(field emfile "$res")" "$res" >>"$RESULTS"
    sleep 1
  done
done

# ---------------------------------------------------------------- report
echo
echo "Results: $RESULTS   (servers on CPU $SERVER_CPU, backend on CPU $BACKEND_CPU, attack tool on CPU $CLIENT_CPU)"
echo "A = $SILENT silent + $DRIBBLE dribbling connections (1 byte / ${DRIBBLE_INTERVAL_MS} ms);" \
  "B = $H2_CONNS h2 conns x $H2_STREAMS streams on $STALL_PATH; C = A + B."
echo "Good clients: $GOOD x (new mTLS connection + GET $GOOD_PATH$([ "$GOOD_H2" = 1 ] && echo ', h2')), one every" \
  "${GOOD_INTERVAL_MS} ms, timeout ${GOOD_TIMEOUT_MS} ms; p99 over all of them (a failure counts with its time to fail)."
awk -F'\t' -v dribble="$DRIBBLE" -v h2="$((H2_CONNS * H2_STREAMS))" '
  NR == 1 { next }
  { n++; for (i = 1; i <= NF; i++) v[n, i] = $i; if ($1 == "nginx") ref[$2] = $6 }
  function d(x) { return x == "" ? "-" : x }
  END {
    print ""
    print "| server | attack | good ok | good p99 ms | p99 / nginx | silent closed <= 15 s % | dribble closed | h2 responses (statuses) | peak RSS MiB | peak fds | setup s |"
    print "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"
    for (i = 1; i <= n; i++) {
      a = v[i, 2]
      ratio = (ref[a] > 0 && v[i, 6] != "") ? sprintf("%.2f", v[i, 6] / ref[a]) : "-"
      sil = (a == "A" || a == "C") ? d(v[i, 9]) : "-"
      dr = (a == "A" || a == "C") ? d(v[i, 11]) "/" dribble : "-"
      hr = (a == "B" || a == "C") ? d(v[i, 12]) "/" h2 " (" d(v[i, 13]) ")" : "-"
      printf "| %s%s | %s | %s/%s | %s | %s | %s | %s | %s | %.1f | %s | %s |\n", v[i, 1], (v[i, 18] == "no" ? " (died)" : ""), a,
        d(v[i, 3]), d(v[i, 4]), d(v[i, 6]), ratio, sil, dr, hr, v[i, 16] / 1024, v[i, 17], d(v[i, 19])
      if (v[i, 20] > 0) warn = warn sprintf("\nnote: %s/%s: %s connects failed with EMFILE in the attack tool (raise ulimit -n)", v[i, 1], a, v[i, 20])
    }
    if (warn != "") print warn
  }' "$RESULTS" | tee "$RUN/table.md"
