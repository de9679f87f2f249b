#!/usr/bin/env bash
# Stand-in for gpu-run.sh in GpuSessionPlanTest: answers every command gpu-session.sh (and sd15-pipeline-bench.sh)
# runs with the lines the real tools print, after a simulated duration, writing the files they would write.
#   STUB_SECS    simulated seconds per command (default 10); STUB_SECS_<KIND> per kind (e.g. STUB_SECS_SD15BUILD)
#   STUB_HANG    kinds that never end (an overrun); STUB_FAIL kinds that exit 1
#   STUB_CALLS   file that gets one line per call: "<kind> <args>"
# Kinds: selftest loopcheck sd15build latency compare export exportpipeline optimize calibrate build profile bench
#        buildpipeline generate
set -uo pipefail
scale=${SDRT_TIME_SCALE:-1}
args=("$@")
opt() { local i; for ((i = 0; i < ${#args[@]}; i++)); do [[ ${args[i]} == "$1" ]] && { echo "${args[i + 1]}"; return; }; done; }
case "$1 ${2:-}" in
  selftest*) kind=selftest ;;
  loopcheck*) kind=loopcheck ;;
  "bench build") kind=sd15build ;;
  "bench latency") kind=latency ;;
  "bench compare") kind=compare ;;
  "sdrt export") kind=export ;;
  "sdrt export-pipeline") kind=exportpipeline ;;
  "sdrt optimize") kind=optimize ;;
  "sdrt calibrate") kind=calibrate ;;
  "sdrt build") kind=build ;;
  "sdrt profile") kind=profile ;;
  "sdrt bench") kind=bench ;;
  "sdrt build-pipeline") kind=buildpipeline ;;
  "sdrt generate") kind=generate ;;
  *) echo "stub: unknown command $*" >&2; exit 2 ;;
esac
[[ -n ${STUB_CALLS:-} ]] && echo "$kind ${*}" >>"$STUB_CALLS"
var="STUB_SECS_${kind^^}"
secs=${!var:-${STUB_SECS:-10}}
if [[ " ${STUB_HANG:-} " == *" $kind "* ]]; then secs=1000000; fi
ms=$((secs * 1000 / scale))
sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
if [[ " ${STUB_FAIL:-} " == *" $kind "* ]]; then echo "stub: $kind failed on purpose"; exit 1; fi
touch_out() { local f; f=$(opt "$1"); [[ -n $f ]] && mkdir -p "$(dirname "$f")" && echo stub >"$f"; }
case $kind in
  selftest) echo "9 passed, 0 failed" ;;
  loopcheck) echo "6 passed, 0 failed" ;;
  sd15build) touch_out --out; echo "| build time | 271.5 s |"; echo "| engine size | 1.74 GB |" ;;
  latency) echo "| eager enqueueV3, median of 100 | 8.420 ms (p10 8.401, p90 8.466) |"
           echo "| CUDA graph replay, median of 100 | 7.710 ms (p10 7.702, p90 7.731) |" ;;
  compare) echo "| output out_sample | cosine 0.998800, max rel diff 3.100e-02 |" ;;
  export|optimize|calibrate) touch_out --out ;;
  exportpipeline) d=$(opt --out); mkdir -p "$d" && echo '{}' >"$d/sdrt-pipeline.json" && echo stub >"$d/unet.onnx" ;;
  build) touch_out --out; echo "built $(opt --out)"; echo "engine         $(opt --out) (1.7 GB)"
         echo "built          2026-12-07T00:00:00Z by sdrt dev in $secs.0 s" ;;
  profile) f=$(opt --out); printf '| kernel class | calls | ms | share |\n|---|---|---|---|\n| convolution fp16 | 120 | 3.210 | 41.0%% |\n\n' >"$f"; cat "$f" ;;
  bench) d=$(opt --out); mkdir -p "$d" && echo "| variant | s/image |" >"$d/bench.md" && echo '{}' >"$d/bench.json"; cat "$d/bench.md" ;;
  buildpipeline) echo "built engines" ;;
  generate) echo "median of runs 2..3: total 612.3 ms (0.612 s/image), loop 580.1 ms (11.60 ms/step), syncs 1, upload 0.40 ms, enqueue 1.30 ms, wait 578.4 ms" ;;
esac
