#!/usr/bin/env bash
# The benchmark-fidelity figures that need a GPU, in one run (docs/benchmark.md, docs/results/fidelity/):
# the classic proxies at --profile benchmark on 150 archs per space against the data files' reference
# scores, the whole search split of both spaces at the default profile (baselines, SasWOT, SasWOT-), and
# the profile comparison of benchmarks/profile_agreement.py. Jobs run side by side on one GPU.
#   DATA=../shared/benchmarks bash benchmarks/fidelity_gpu.sh [seconds per job] [results.tgz]
set -u
limit=${1:-500}
data=${DATA:-../shared/benchmarks}
out=runs/fidelity
mkdir -p "$out"
export PROXYLANG_DATA=$data PROXYLANG_CACHE_GB=0 OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
pl() { timeout "$limit" python3 -m proxylang "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/gpu.txt"
for space in micro macro; do
  pl baselines --space $space --profile benchmark --device cuda --archs docs/results/archs-$space-150.txt \
    --cache "$out/cache-bench" --format json > "$out/baselines-benchmark-$space.json" 2> "$out/err-bench-$space.log" &
  pl baselines --space $space --device cuda --cache "$out/cache-lite" --format json \
    > "$out/baselines-lite-$space.json" 2> "$out/err-lite-$space.log" &
done
( for px in saswot saswot_minus; do
    pl eval examples/$px.px --device cuda --cache "$out/cache-eval" > "$out/eval-$px.txt" 2>> "$out/err-eval.log"
  done ) &
timeout "$limit" python3 benchmarks/profile_agreement.py --archs 60 --device cuda --data "$data" \
  --profiles lite,r128-white-uniform,r128-pink-regions,r128-photos-uniform,r64-white-uniform \
  > "$out/profile-agreement.txt" 2> "$out/err-agreement.log" &
wait
tar czf "${2:-$out.tgz}" --exclude='*.pt' -C "$out" .
echo "done: $(ls "$out")"
