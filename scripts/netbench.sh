#!/usr/bin/env bash
# LAN/WAN benchmark: three hosts (Linux network namespaces on a bridge), each party in its own,
# with every link shaped to a LAN or WAN profile. Prints a markdown table for BENCHMARKS.md.
# Needs root and iproute2. Run from anywhere:
#
#   sudo scripts/netbench.sh                 # LeNet-5 and ResNet-18 (32x32), 2PC and 3PC
#   MODELS="lenet" PROTOCOLS="3pc" PROFILES="wan" scripts/netbench.sh
#   PROTOCOLS="3pc" SECURITY="semi-honest malicious" scripts/netbench.sh   # both security levels
#   PROTOCOLS="2pc" EXTRA="--preprocess" scripts/netbench.sh   # the dealer's material first
#   MODELS="resnet50" PROTOCOLS="3pc" PROFILES="wan" SECURITY="semi-honest malicious" scripts/netbench.sh
#                                            # ResNet-50 at 224x224 (scripts/make_big_models.py first)
#   MUSKET_BIN=/tmp/musket-old scripts/netbench.sh   # another build of musket (a baseline),
#                                            # with this tree's musket-netsim
#
# Link shaping: each party's listener sits behind a musket-netsim relay in its namespace that
# delays every byte by the one-way delay in both directions and caps each connection's
# bandwidth, which is what `tc qdisc add dev IF root netem delay D rate R` does. The relay is
# used because the kernels this was measured on have no sch_netem; where netem exists the
# numbers should agree (same delay, same cap).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
MODELS=${MODELS:-"lenet resnet18"}
PROTOCOLS=${PROTOCOLS:-"3pc 2pc"}
PROFILES=${PROFILES:-"lan wan"}
SECURITY=${SECURITY:-"semi-honest"}
# Extra options of every party's `infer` (word-split on purpose).
EXTRA=${EXTRA:-}
if [ -n "${MUSKET_BIN:-}" ]; then
  cargo build --release -q --bin musket-netsim
  musket=$(realpath "$MUSKET_BIN")
else
  cargo build --release -q --bin musket --bin musket-netsim
  musket=$root/target/release/musket
fi
netsim=$root/target/release/musket-netsim

tag=mkb$$
subnet=10.254.$(( $$ % 250 ))
work=$(mktemp -d)
relays=()
cleanup() {
  for p in "${relays[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for i in 0 1 2; do ip netns del $tag-$i 2>/dev/null || true; ip link del ${tag}h$i 2>/dev/null || true; done
  ip link del ${tag}br 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip link add ${tag}br type bridge
ip link set ${tag}br up
for i in 0 1 2; do
  ip netns add $tag-$i
  ip link add ${tag}h$i type veth peer name ${tag}n$i
  ip link set ${tag}n$i netns $tag-$i
  ip link set ${tag}h$i master ${tag}br up
  ip -n $tag-$i addr add $subnet.$((i + 1))/24 dev ${tag}n$i
  ip -n $tag-$i link set ${tag}n$i up
  ip -n $tag-$i link set lo up
done

profile_args() {
  case $1 in
    lan) echo "--delay-ms 0.25 --rate-mbit 1000" ;;   # RTT 0.5 ms, 1 Gbit/s
    wan) echo "--delay-ms 20 --rate-mbit 100" ;;      # RTT 40 ms, 100 Mbit/s
  esac
}
model_files() {
  case $1 in
    lenet) echo "examples/lenet5-28-opset17.onnx examples/lenet5-28-sample.npy" ;;
    resnet18) echo "examples/resnet18-32-opset17.onnx examples/resnet18-32-sample.npy" ;;
    # Generated, not committed: `python3 scripts/make_big_models.py` writes them.
    resnet50) echo "target/models/resnet50-224.onnx target/models/imagenet-224-sample.npy" ;;
    bert) echo "target/models/bert-base-128.onnx target/models/bert-base-128-input.npy" ;;
    *) echo "unknown unknown" ;;
  esac
}

echo "| model (batch 1) | protocol | security | network | seconds (party 1) | online (party 1) | wall seconds | rounds | MB sent (max party) |"
echo "|---|---|---|---|---|---|---|---|---|"
for profile in $PROFILES; do
  for i in 0 1 2; do
    # shellcheck disable=SC2046
    ip netns exec $tag-$i "$netsim" --link $subnet.$((i + 1)):7200=127.0.0.1:7100 $(profile_args $profile) \
      2>/dev/null &
    relays+=($!)
  done
  sleep 0.5
  for protocol in $PROTOCOLS; do
  for security in $SECURITY; do
    dir=$work/$profile-$protocol-$security
    "$musket" cluster init --dir "$dir" --protocol "$protocol" --security "$security" --host 127.0.0.1 \
      --base-port 7100 >/dev/null
    # Party i listens on its own loopback; the others reach it through its relay.
    sed -i "s/timeout_secs = 60/timeout_secs = 300/" "$dir/cluster.toml"
    for i in 0 1 2; do
      sed -i "s/address = \"127.0.0.1:710$i\"/address = \"$subnet.$((i + 1)):7200\"\nlisten = \"127.0.0.1:7100\"/" \
        "$dir/cluster.toml"
    done
    for model in $MODELS; do
      read -r onnx npy <<<"$(model_files $model)"
      if [ ! -f "$onnx" ] || [ ! -f "$npy" ]; then
        echo "netbench: no files for model '$model' (lenet, resnet18, resnet50, bert; resnet50 and" \
          "bert need scripts/make_big_models.py first)" >&2
        exit 2
      fi
      start=$(date +%s.%N)
      ip netns exec $tag-0 "$musket" party --config "$dir/cluster.toml" --id 0 --json infer $EXTRA --model "$onnx" \
        >"$dir/p0.json" 2>"$dir/p0.err" &
      a=$!
      ip netns exec $tag-1 "$musket" party --config "$dir/cluster.toml" --id 1 --json infer $EXTRA --input "$npy" \
        >"$dir/p1.json" 2>"$dir/p1.err" &
      b=$!
      ip netns exec $tag-2 "$musket" party --config "$dir/cluster.toml" --id 2 --json infer $EXTRA \
        >"$dir/p2.json" 2>"$dir/p2.err" &
      c=$!
      ok=1
      wait $a || ok=0
      wait $b || ok=0
      wait $c || ok=0
      wall=$(echo "$(date +%s.%N) - $start" | bc)
      if [ $ok = 0 ]; then
        echo "| $model | $protocol | $security | $profile | failed: $(cat "$dir"/p*.err | head -c 200) | | | | |"
        continue
      fi
      python3 - "$dir" "$model" "$protocol" "$security" "$profile" "$wall" <<'PY'
import json, sys
d, model, protocol, security, profile, wall = sys.argv[1:]
rows = [json.load(open(f"{d}/p{i}.json")) for i in range(3)]
mb = max(r["bytes_sent"] for r in rows) / 1e6
online = rows[1].get("online_seconds")
online = "—" if online is None else f"{online:.2f}"
print(f"| {model} | {protocol} | {security} | {profile} | {rows[1]['seconds']:.2f} | {online} | {float(wall):.2f} | "
      f"{max(r['rounds'] for r in rows)} | {mb:.1f} |")
PY
    done
  done
  done
  for p in "${relays[@]}"; do kill "$p" 2>/dev/null || true; done
  relays=()
  sleep 0.5
done
