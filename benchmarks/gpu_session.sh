#!/usr/bin/env bash
# The one device run of a session that is lent a GPU (the `device` tool's `run`, from the repository root):
#   bash benchmarks/gpu_session.sh
# It needs only what the lent GPU image holds (python3 with torch, transformers, numpy, pyyaml, jinja2); it writes
# its logs to $OUT (or benchmarks/results/local/), which the session commits as benchmarks/results/<gpu>-<date>/.
# Planned for < 10 minutes on one H100/H200:
#   1. gpu_cost.py --check: what only a GPU can tell (CUDA-graph vs eager tokens, a row alone vs batched, the flow's
#      and HiFT's batch error within their bounds; its last line is the verdict, its exit status 1 on a failure),
#      then the batched TTS at 1/16/64/256 sentences and the ear (large-v3 and turbo) at 16/64/128;
#   2. device_account.py --compare: the account's prediction for the same shapes beside each measured stage.
# Untested before this runs on a GPU: the CUDA-graph capture (llm.py via graphs.GraphCache), pinned non-blocking
# copies, and every timing. Rehearse the CPU part with: python benchmarks/gpu_cost.py --device cpu --tiny --check
set -uo pipefail
out="${OUT:-benchmarks/results/local}"
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  date -u +%Y-%m-%dT%H:%M:%SZ; } > "$out/gpu.txt" 2>&1
PYTHONUNBUFFERED=1 timeout 420 python3 benchmarks/gpu_cost.py --check 2>&1 | grep -v "max_length\`(=448)" | tee "$out/gpu_cost.log"
status=${PIPESTATUS[0]}
CUDA_VISIBLE_DEVICES= timeout 150 python3 benchmarks/device_account.py --compare "$out/gpu_cost.log" 2>&1 \
  | grep -v Warning | tee "$out/device_account_compare.log"
echo "gpu_cost.py exit status: $status" | tee -a "$out/gpu_cost.log"
exit "$status"
