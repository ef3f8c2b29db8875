#!/usr/bin/env bash
# The slow half of the hardening suite (the fast half runs in every `cargo test`).
#
#   scripts/hardening.sh            slow tests (--ignored) + fuzz corpus replay
#   scripts/hardening.sh tests      only the slow tests, in release mode
#   scripts/hardening.sh replay     only the fuzz corpus replay
#   scripts/hardening.sh fuzz [S]   a fuzzing campaign: every target for S seconds
#                                   (default 600), one at a time, corpora grown in place
#
# Figures (connections held, memory per connection, requests during rotation, fuzz
# execs and coverage) are printed; RELIABILITY.md records the latest run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

step() { printf '\n==> %s\n' "$*"; }

slow_tests() {
  step "slow hardening tests (release, --ignored, one at a time)"
  cargo test --release --all-features --test hardening -- --ignored --test-threads=1 --nocapture \
    --skip hardening_flood hardening 2>&1 | grep -E 'figure:|^test |test result|panicked'
  # Each flood in a process of its own: a second flood would reuse the memory the first freed.
  for protocol in http1 h2; do
    cargo test --release --all-features --test hardening -- --ignored --nocapture --exact \
      "faults::hardening_flood_of_idle_mtls_connections_$protocol" 2>&1 \
      | grep -E 'figure:|^test |test result|panicked'
  done
  step "overload through the reference proxy (release, --ignored, issue 16's full sizes)"
  cargo test --release --all-features --test proxy -- --ignored --test-threads=1 --nocapture overload_full 2>&1 \
    | grep -E 'figure:|^test |test result|panicked'
}

fuzz_cmd() {
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz); san=()
  else
    fuzz=(cargo fuzz); san=(--sanitizer none)
  fi
}

replay() {
  step "fuzz corpora replay"
  fuzz_cmd
  (
    cd fuzz
    "${fuzz[@]}" build "${san[@]}"
    for target in $("${fuzz[@]}" list); do
      mkdir -p "corpus/$target"
      printf '%-16s %5s inputs: ' "$target" "$(ls "corpus/$target" | wc -l)"
      "${fuzz[@]}" run "${san[@]}" "$target" "corpus/$target" -- -runs=0 2>&1 | grep -E 'INITED|Done' | tail -n 1
    done
  )
}

campaign() {
  local seconds="${1:-600}"
  step "fuzzing campaign: ${seconds}s per target, one target at a time"
  fuzz_cmd
  (
    cd fuzz
    "${fuzz[@]}" build "${san[@]}"
    for target in $("${fuzz[@]}" list); do
      mkdir -p "corpus/$target"
      local before log
      before=$(ls "corpus/$target" | wc -l)
      log=$(mktemp)
      "${fuzz[@]}" run "${san[@]}" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || {
          echo "$target: CRASH, see fuzz/artifacts/$target"; tail -n 30 "$log"; exit 1; }
      local last execs
      last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
      execs=$(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}')
      printf 'figure: fuzz %-16s %ss execs=%s corpus %s -> %s | %s\n' "$target" "$seconds" \
        "$execs" "$before" "$(ls "corpus/$target" | wc -l)" "$last"
      rm -f "$log"
    done
  )
}

case "${1:-all}" in
  tests) slow_tests ;;
  replay) replay ;;
  fuzz) campaign "${2:-600}" ;;
  all) slow_tests; replay ;;
  *) echo "usage: $0 [tests|replay|fuzz [seconds]]" >&2; exit 2 ;;
esac
