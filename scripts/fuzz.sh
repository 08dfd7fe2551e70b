#!/usr/bin/env bash
# Fuzzes everything Musket reads from an untrusted source, for a bounded time per target, and
# prints a summary (time, executions, crashes). Not part of CI: it needs the nightly toolchain
# and cargo-fuzz (`cargo install cargo-fuzz`).
#
#   scripts/fuzz.sh            # every target, 300 s each
#   scripts/fuzz.sh 60 npy_input wire_frames
#
# Seeds come from examples/ (models, inputs) and small hand-made cases; the corpus grows in
# fuzz/corpus/<target> and crashes land in fuzz/artifacts/<target>. A crash must become a
# regression test in the crate that owns the code before it is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(onnx_import npy_input cluster_toml wire_frames architecture_json)
fi
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2; exit 1; }

seed() {
  local t=$1 dir=fuzz/corpus/$1
  mkdir -p "$dir"
  case $t in
    onnx_import) cp examples/ops-opset13.onnx examples/ops-opset17.onnx examples/digits-cnn-opset17.onnx \
                    examples/digits-mlp-opset13.onnx examples/digits-transformer-opset17.onnx "$dir"/ ;;
    npy_input) cp examples/digits-cnn-sample.npy examples/ops-input.npy examples/digits-test-y.npy "$dir"/ ;;
    cluster_toml) cargo run -q --release --bin musket -- cluster init --dir /tmp/musket-fuzz-seed >/dev/null
                  cp /tmp/musket-fuzz-seed/cluster.toml "$dir"/ ;;
    wire_frames) printf '\0\0\0\0\3\0\0\0\0\0\0\0\0\0\0\0abc\2\0\0\0\4\0\0\0\1\0\0\0\0\0\0\0\1\0\0\0' > "$dir"/two-frames ;;
    architecture_json) cargo run -q --release --example dump_architecture -p musket-onnx -- \
                         examples/digits-cnn-opset17.onnx > "$dir"/cnn.json 2>/dev/null \
                       || echo '{}' > "$dir"/empty.json ;;
  esac
}

summary=()
for t in "${targets[@]}"; do
  seed "$t"
  log=fuzz/artifacts/$t.log
  mkdir -p fuzz/artifacts/"$t"
  before=$(find fuzz/artifacts/"$t" -type f | wc -l)
  start=$(date +%s)
  # -rss_limit_mb: a declared-size cap that fails shows up as an out-of-memory crash.
  (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
      -timeout=10 -print_final_stats=1) >"$log" 2>&1 || true
  took=$(( $(date +%s) - start ))
  runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  after=$(find fuzz/artifacts/"$t" -type f | wc -l)
  summary+=("$(printf '%-18s %6ss %12s runs %3s new crash files' "$t" "$took" "$runs" "$((after - before))")")
done
echo
printf '%s\n' "${summary[@]}"
