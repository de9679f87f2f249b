#!/usr/bin/env bash
# GPU host side. Needs the unpacked kit (/root/gpukit: the GPU kit that the host is given with the session).
#   bash app/gpu-run.sh selftest                 sdrt gpu selftest (GpuChecks without Maven); last line "N passed, M failed"
#   bash app/gpu-run.sh bench build|latency|all|compare ...   sdrt gpu bench (GpuBench; sdrt gpu bench --help)
#   bash app/gpu-run.sh info ENGINE.plan         what sdrt engine-info shows
#   bash app/gpu-run.sh loopcheck                sdrt gpu loopcheck (DeviceLoopGpuChecks): the device loop on TensorRT against ONNX Runtime
#                                                (tiny pipeline, engines from build-pipeline); last line "N passed, M failed"
#   bash app/gpu-run.sh sdrt ARGS                the sdrt CLI (export-pipeline, optimize, build-pipeline, generate --backend
#                                                tensorrt; ONNX Runtime is staged for Linux x86-64 only, CPU)
# Extra JVM options go in SDRT_JAVA_OPTS, e.g. SDRT_JAVA_OPTS=-Dorg.bytedeco.javacpp.logger.debug=true
# to see where JavaCPP looks for libnvinfer / libcudart.
set -euo pipefail
. /root/gpukit/env.sh
here=$(cd "$(dirname "$0")" && pwd)
java=(java ${SDRT_JAVA_OPTS:-} -cp "$here/lib/*")
command=${1:-selftest}; shift || true
case "$command" in
  selftest) exec "${java[@]}" dev.sdrt.cli.SdrtMain gpu selftest --fixtures "$here/fixtures" --work "${SDRT_WORK:-/tmp/sdrt-gpu}" "$@" ;;
  bench) exec "${java[@]}" dev.sdrt.cli.SdrtMain gpu bench "$@" ;;
  info) exec "${java[@]}" dev.sdrt.cli.SdrtMain engine-info "$@" ;;
  loopcheck) exec "${java[@]}" dev.sdrt.cli.SdrtMain gpu loopcheck --work "${SDRT_WORK:-/tmp/sdrt-gpu}/loop" "$@" ;;
  sdrt) exec "${java[@]}" dev.sdrt.cli.SdrtMain "$@" ;;
  *) echo "usage: gpu-run.sh selftest | loopcheck | bench ARGS | info ENGINE.plan | sdrt ARGS" >&2; exit 2 ;;
esac
