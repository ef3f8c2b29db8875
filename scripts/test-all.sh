#!/usr/bin/env bash
# Runs every check of the project: formatting, clippy, all tests with all features,
# the docs, and the fuzz targets (built, then replaying their committed corpora).
# This is the README's test command and exactly what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --all-targets --all-features -- -D warnings

step "each feature alone, with a crypto provider (what cargo hack check --each-feature does)"
for features in aws-lc-rs ring aws-lc-rs,yaml aws-lc-rs,server aws-lc-rs,client aws-lc-rs,axum \
  aws-lc-rs,testing aws-lc-rs,jwt aws-lc-rs,jwt-https; do
  echo "  --no-default-features --features $features"
  cargo check --quiet --lib --no-default-features --features "$features"
done

step "cargo test (all features)"
cargo test --all-features

step "cargo doc (-D warnings)"
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --all-features

step "fuzz targets: build and replay corpora"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# With a nightly toolchain the targets run under AddressSanitizer; on stable without it.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
  san=()
else
  fuzz=(cargo fuzz)
  san=(--sanitizer none)
fi
(
  cd fuzz
  "${fuzz[@]}" build "${san[@]}"
  for target in $("${fuzz[@]}" list); do
    mkdir -p "corpus/$target"
    echo "replaying corpus/$target ($(ls "corpus/$target" | wc -l) inputs)"
    "${fuzz[@]}" run "${san[@]}" "$target" "corpus/$target" -- -runs=0 2>&1 | tail -n 2
  done
)
echo
echo "all checks passed"
