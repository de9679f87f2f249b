#!/usr/bin/env bash
# GPU host: the whole SD 1.5 pipeline (random weights) on TensorRT with the device loop. Exports it in float32 with
# DeepCache graphs, runs the fp16 pass on the four graphs the GPU runs (it keeps their inputs and outputs float32,
# which the device loop binds; 'export-pipeline --precision fp16' would make them fp16), builds the engines at 512x512
# batch 1 with 'sdrt build-pipeline', then runs 'sdrt generate --backend tensorrt' for 50 steps at guidance 7.5:
# eager, replayed CUDA graph, and DeepCache N=3 and N=5 (replayed). A table comes last.
#   bash app/sd15-pipeline-bench.sh WORKDIR [prepare|build|build-deepcache|run|all]
# Each phase is meant to fit one 10-minute command (the UNet engine alone builds in about 4.5 minutes on an H100) and
# skips what an earlier run finished: exported and optimized files are kept, engines are reused through their
# manifests. A phase cut short is simply run again. 'all' (the default) runs the four phases in order.
# Environment: OPT_LEVEL (TensorRT builder level, default 3), REPEAT (generate runs per variant, default 3: the
# table shows the median of runs 2..REPEAT), STEPS (default 50), DEEPCACHE (default 1; 0 leaves the DeepCache graphs,
# engines and rows out, which brings prepare + build + run within one 10-minute command on an H100).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-/tmp/sd15-pipeline}
phase=${2:-all}
opt=${OPT_LEVEL:-3}
repeat=${REPEAT:-3}
steps=${STEPS:-50}
deepcache=${DEEPCACHE:-1}
fp32="$work/fp32"
pipe="$work/pipe"
gpu_graphs=(unet vae_decoder)
((deepcache)) && gpu_graphs+=(unet_deepcache_full unet_deepcache_shallow)
mkdir -p "$work"

runner=${SDRT_GPU_RUN:-$here/gpu-run.sh}   # gpu-session.sh's tests pass a stub
sdrt() { bash "$runner" sdrt "$@"; }
stamp() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

prepare() {
  if [[ ! -f $fp32/sdrt-pipeline.json ]]; then
    stamp "export: SD 1.5, random weights, float32$( ((deepcache)) && echo ", DeepCache branch 0")"
    rm -rf "$fp32"
    sdrt export-pipeline --arch sd15 --random-weights --seed 0 $( ((deepcache)) && echo "--deepcache-branch 0") --out "$fp32"
  fi
  mkdir -p "$pipe"
  # The text encoder (ONNX Runtime, CPU), the scheduler-step graphs, tokenizer and spec as exported ...
  for f in "$fp32"/*; do
    b=$(basename "$f")
    case $b in unet.onnx*|vae_decoder.onnx*|unet_deepcache_full.onnx*|unet_deepcache_shallow.onnx*) continue ;; esac
    [[ -e $pipe/$b ]] || cp -r "$f" "$pipe/"
  done
  # ... and the GPU graphs in fp16 (float32 at their inputs and outputs), four optimizations side by side.
  # 'sdrt optimize' writes its output atomically, so a file that exists is complete.
  local pids=() g
  for g in "${gpu_graphs[@]}"; do
    if [[ ! -f $pipe/$g.onnx ]]; then
      stamp "fp16 pass: $g"
      SDRT_JAVA_OPTS="${SDRT_JAVA_OPTS:-} -Xmx24g" sdrt optimize "$fp32/$g.onnx" --passes fp16 --out "$pipe/$g.onnx" \
        --no-check >"$work/optimize-$g.log" 2>&1 &
      pids+=($!)
    fi
  done
  for p in ${pids[@]+"${pids[@]}"}; do
    wait "$p" || { tail -n 20 "$work"/optimize-*.log; exit 1; }
  done
  du -sh "$fp32" "$pipe"
}

build() {
  stamp "engines: denoiser, VAE decoder, scheduler steps at 512x512, batch 1 (static), opt level $opt"
  sdrt build-pipeline --model "$pipe" --size 512x512 --batch 1 --opt-level "$opt" --timing-cache "$work/timing.cache" \
    --only denoiser,vae_decoder,scheduler_step,scheduler_step_guided
}

build_deepcache() {
  stamp "engines: DeepCache full and shallow UNets (the timing cache holds most of the UNet's tactics)"
  sdrt build-pipeline --model "$pipe" --size 512x512 --batch 1 --opt-level "$opt" --timing-cache "$work/timing.cache" \
    --only deepcache_full,deepcache_shallow
}

generate() {
  local name=$1; shift
  stamp "generate: $name"
  sdrt generate --model "$pipe" --backend tensorrt --prompt "a photograph of an astronaut riding a horse" \
    --steps "$steps" --guidance 7.5 --seed 0 --size 512x512 --repeat "$repeat" --out "$work/$name.png" "$@" \
    2>"$work/generate-$name.err" | tee "$work/generate-$name.log" \
    || { tail -n 30 "$work/generate-$name.err"; return 1; }
}

# One table row from a generate log's last summary line, e.g.
# "median of runs 2..3: total 612.3 ms (0.612 s/image), loop 580.1 ms (11.60 ms/step), syncs 1, upload 0.40 ms, enqueue 1.30 ms, wait 578.4 ms"
row() {
  local log="$work/generate-$1.log" line
  line=$(grep -E '^(median of runs|device loop)' "$log" 2>/dev/null | tail -n 1) || true
  if [[ -z $line ]]; then
    printf '| %-28s | %9s | %13s | %11s | %17s | %13s |\n' "$2" failed - - - -
    return
  fi
  printf '| %-28s | %9s | %13s | %11s | %17s | %13s |\n' "$2" \
    "$(sed -E 's/.*\(([0-9.]+) s\/image\).*/\1/' <<<"$line")" \
    "$(sed -E 's/.*\(([0-9.]+) ms\/step\).*/\1/' <<<"$line")" \
    "$(sed -E 's/.*syncs ([0-9]+),.*/\1/' <<<"$line")" \
    "$(sed -E 's/.*enqueue ([0-9.]+) ms.*/\1/' <<<"$line")" \
    "$(sed -E 's/.*wait ([0-9.]+) ms.*/\1/' <<<"$line")"
}

run() {
  local failed=0
  generate eager || failed=1
  generate cuda-graph --cuda-graph || failed=1
  if ((deepcache)); then
    generate deepcache3 --cuda-graph --deepcache 3 || failed=1
    generate deepcache5 --cuda-graph --deepcache 5 || failed=1
  fi
  stamp "UNet engine alone (GpuBench: CUDA events, random inputs)"
  bash "$runner" bench latency --engine "$pipe/unet.plan" --runs 100 --warmup 20 | tee "$work/unet-latency.log" || failed=1
  local unet
  unet=$(grep -E '^\| CUDA graph replay' "$work/unet-latency.log" 2>/dev/null | sed -E 's/.*\| ([0-9.]+) ms.*/\1/') || true
  echo
  echo "SD 1.5 (random weights) 512x512, batch 1, $steps steps, guidance 7.5, euler; TensorRT fp16 engines (float32 I/O),"
  echo "text encoder on ONNX Runtime (CPU); median of runs 2..$repeat of each 'sdrt generate --backend tensorrt'."
  echo "s/image: wall time of one request (the pipeline caches the encoded prompt after run 1, so: loop + read-back + PNG"
  echo "conversion). loop ms/step: upload + enqueue + wait of the"
  echo "device loop / steps (UNet, scheduler step and the VAE decode spread over the steps). UNet engine alone, replayed: ${unet:-?} ms."
  printf '| %-28s | %9s | %13s | %11s | %17s | %13s |\n' variant s/image "loop ms/step" syncs/image "host enqueue ms" "host wait ms"
  printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..30})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..15})" \
    "$(printf -- '-%.0s' {1..13})" "$(printf -- '-%.0s' {1..19})" "$(printf -- '-%.0s' {1..15})"
  row eager "eager (enqueue per launch)"
  row cuda-graph "CUDA graph"
  if ((deepcache)); then
    row deepcache3 "CUDA graph + DeepCache N=3"
    row deepcache5 "CUDA graph + DeepCache N=5"
  fi
  return $failed
}

case "$phase" in
  prepare) prepare ;;
  build) build ;;
  build-deepcache) build_deepcache ;;
  run) run ;;
  all) prepare; build; if ((deepcache)); then build_deepcache; fi; run ;;
  *) echo "usage: sd15-pipeline-bench.sh WORKDIR [prepare|build|build-deepcache|run|all]" >&2; exit 2 ;;
esac
