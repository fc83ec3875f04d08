#!/usr/bin/env bash
# The scale figures that need a GPU, in one run (issue "Scale", docs/results/scale/):
#  1. benchmarks/stats_speed.py on the GPU: extract-and-score SasWOT against a plain forward+backward;
#  2. benchmarks/segsearch_latency.py: the latency table against 20 students measured at 1024x2048;
#  3. every micro (4096) and macro (3256) arch scored by SasWOT and NWOT at --profile benchmark, one
#     `proxylang eval --all-archs` per space, with its wall time and peak GPU and host memory.
# Each step has a time limit and writes into OUT as it goes, so a cut-off run still reports; run again
# on the same machine, a space's eval resumes from its score store.
#   DATA=../shared/benchmarks bash benchmarks/scale_gpu.sh [OUT_DIR] [seconds per space]
set -u
out=${1:-runs/scale-gpu}
limit=${2:-300}
data=${DATA:-../shared/benchmarks}
mkdir -p "$out"
export PROXYLANG_DATA=$data PYTHONUNBUFFERED=1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
gpu_mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
workers=$(( gpu_mib > 100000 ? 12 : 6 ))  # up to ~10 GB of GPU memory each at the benchmark profile (12 took 122 GB on macro, H200)

if [ ! -s "$out/stats-speed-lite.txt" ]; then
  timeout 100 python3 benchmarks/stats_speed.py --devices cuda --archs 6 --repeats 3 --trace --data "$data" \
    > "$out/stats-speed-lite.txt" 2>&1
fi
if [ ! -s "$out/segsearch-latency.txt" ]; then
  timeout 120 python3 benchmarks/segsearch_latency.py --archs 20 --size 1024x2048 --device cuda \
    --table "$out/latency-table.json" > "$out/segsearch-latency.txt" 2>&1
fi

sample() {  # peak GPU memory in use (MiB, nvidia-smi) and host memory in use (MiB, free), every 0.5 s
  while :; do
    echo "$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)" \
         "$(free -m | awk '/^Mem:/ {print $3}')"
    sleep 0.5
  done
}
for space in micro macro; do
  sample > "$out/memory-$space.txt" &
  sampler=$!
  start=$(date +%s.%N)
  timeout "$limit" proxylang eval examples/saswot.px examples/nwot.px --space $space --all-archs \
    --profile benchmark --device cuda --workers "$workers" --cache runs/scale-gpu-cache \
    --scores-out "$out/scores-$space.csv" > "$out/eval-$space.txt" 2> "$out/eval-$space.log"
  status=$?
  kill "$sampler"
  awk -v s="$start" -v e="$(date +%s.%N)" -v w="$workers" -v st="$status" '
    $1 > g {g = $1} $2 > h {h = $2}
    END {printf "wall %.1f s, exit %d, %d workers, peak GPU memory %d MiB, peak host memory %d MiB\n",
         e - s, st, w, g, h}' "$out/memory-$space.txt" | tee "$out/wall-$space.txt"
done

if [ ! -s "$out/stats-speed-benchmark.txt" ]; then
  timeout 100 python3 benchmarks/stats_speed.py --devices cuda --archs 3 --repeats 2 --profile benchmark \
    --data "$data" > "$out/stats-speed-benchmark.txt" 2>&1
fi
tail -n 4 "$out"/*.txt
