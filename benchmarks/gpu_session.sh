#!/usr/bin/env bash
# The one device run of a session that is lent a GPU (the `device` tool's `run`, from the repository root):
#   bash benchmarks/gpu_session.sh
# It needs only what the lent H200 image holds (python3 with torch, transformers, numpy, pyyaml, jinja2); it writes
# its log to $OUT (or benchmarks/results/local/), which the session commits as benchmarks/results/<gpu>-<date>/.
# Planned for < 8 minutes on one H200: the checks of what only a GPU can tell (CUDA-graph vs eager tokens, a row
# alone vs batched), the batched TTS at 1/16/64/256 sentences and the ear (large-v3 and turbo) at 16/64/128.
# Rehearse it on CPU with: python benchmarks/gpu_cost.py --device cpu --tiny --check
set -uo pipefail
out="${OUT:-benchmarks/results/local}"
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  date -u +%Y-%m-%dT%H:%M:%SZ; } > "$out/gpu.txt" 2>&1
PYTHONUNBUFFERED=1 timeout 480 python3 benchmarks/gpu_cost.py --check 2>&1 | grep -v "max_length\`(=448)" | tee "$out/gpu_cost.log"
