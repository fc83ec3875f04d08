#!/usr/bin/env bash
# segsearch on a CUDA GPU, as the paper's second stage runs it: how well the latency table predicts
# measured latency at 1024x2048, then a search scored at 512x1024 whose --target-fps is the median
# measured FPS of random students (so the constraint binds), its wall time, and the FPS of the found
# student at 1024x2048 in fp32 and fp16.
#
#   bash benchmarks/segsearch_gpu.sh [OUT_DIR]        # default runs/segsearch-gpu
set -euo pipefail
out=${1:-runs/segsearch-gpu}
mkdir -p "$out"
segsearch() { python3 -c 'import sys; from segsearch.cli import main; sys.argv[0] = "segsearch"; main()' "$@"; }

python3 benchmarks/segsearch_latency.py --archs 20 --size 1024x2048 --device cuda | tee "$out/table-vs-measured.txt"
target=$(python3 - "$out/table-vs-measured.txt" <<'EOF'
import re, statistics, sys
ms = [float(m) for m in re.findall(r"measured\s+([\d.]+) ms", open(sys.argv[1]).read())]
print(f"{1000 / statistics.median(ms):.1f}")
EOF
)
echo "target FPS (median of random students): $target"
start=$(date +%s.%N)
segsearch search --proxy examples/saswot.px --out "$out/arch.json" --resolution 512x1024 --device cuda \
    --target-fps "$target" --latency-size 1024x2048 --latency-table "$out/latency-table.json"
echo "search wall time: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s"
segsearch latency "$out/arch.json" --size 1024x2048 --device cuda --predict --latency-table "$out/latency-table.json"
segsearch latency "$out/arch.json" --size 1024x2048 --device cuda --fp16
