#!/usr/bin/env bash
# GPU host: exports the SD 1.5 UNet with random weights (fp16, static batch 2, 64x64 latent, 77 tokens),
# optionally rewrites it with a pass spec, builds a TensorRT engine and measures it with GpuBench.
#   bash app/sd15-unet-bench.sh WORKDIR [PASS_SPEC]
# Full-size engines are too big to bring back, so everything happens here in one command.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-/tmp/sd15}
passes=${2:-}
mkdir -p "$work"
shape=(--batch 2 --height 64 --width 64)
bash "$here/gpu-run.sh" sdrt export --arch sd15 --component unet --random-weights --seed 0 --precision fp16 \
  --static "${shape[@]}" --sequence 77 --out "$work/unet.onnx"
model="$work/unet.onnx"
if [[ -n $passes ]]; then
  bash "$here/gpu-run.sh" sdrt optimize "$model" --passes "$passes" --out "$work/unet-opt.onnx" --no-check
  model="$work/unet-opt.onnx"
fi
bash "$here/gpu-run.sh" bench all --onnx "$model" --out "$work/unet.plan" "${shape[@]}" --tokens 77 --static \
  --runs 100 --warmup 20 --timing-cache "$work/timing.cache" ${passes:+--pass-spec "$passes"}
