#!/usr/bin/env bash
# Stages what the GPU host runs (see the GPU section of BENCHMARKS.md): the sdrt jars (CLI included, so models are
# exported on the host: full-size engines are too big to carry), their runtime dependencies without the TensorRT/CUDA
# redist jars (the GPU kit brings the native libraries), ONNX Runtime with its Linux x86-64 library only (the text
# encoders of 'sdrt generate --backend tensorrt' and the loop checks run on it), the tiny SD UNet fixture, and the
# scripts. Run from the project root:
#   bash tools/gpu/stage-app.sh [OUT]      (OUT defaults to .gpu/app; about 38 MB)
set -euo pipefail
out=$(realpath -m "${1:-.gpu/app}")   # absolute: Maven resolves relative paths per module
fixtures=${SDRT_FIXTURES:-testdata}
mvn -o -q install -DskipTests
rm -rf "$out" && mkdir -p "$out/lib" "$out/fixtures"
mvn -o -q -pl cli dependency:copy-dependencies -DincludeScope=runtime \
  -DexcludeArtifactIds=onnxruntime,onnxruntime_gpu -DoutputDirectory="$out/lib"
cp cli/target/sdrt-cli-*.jar "$out/lib/"
# ONNX Runtime without its macOS, Windows and Linux arm64 libraries: 11 MB instead of 54.
ort=$(mktemp -d)
mvn -o -q -pl cli dependency:copy-dependencies -DincludeScope=runtime -DincludeArtifactIds=onnxruntime -DoutputDirectory="$ort"
for jar in "$ort"/onnxruntime-*.jar; do
  zip -q -d "$jar" 'ai/onnxruntime/native/osx-*' 'ai/onnxruntime/native/win-*' 'ai/onnxruntime/native/linux-aarch64/*'
  cp "$jar" "$out/lib/"
done
rm -rf "$ort"
cp -r "$fixtures/tiny_sd_unet" "$out/fixtures/" && chmod -R u+w "$out/fixtures"
rm -f "$out/fixtures/tiny_sd_unet/diffusion_pytorch_model.safetensors"   # only model.onnx and the .npy files are used
cp "$(dirname "$0")"/{gpu-run.sh,gpu-session.sh,lowp-table.sh,sd15-unet-bench.sh,sd15-pipeline-bench.sh} "$out/"
if ls "$out/lib" | grep -Eq 'redist|onnxruntime_gpu'; then echo "redist or onnxruntime_gpu jar staged: remove it" >&2; exit 1; fi
if ! ls "$out/lib" | grep -q '^onnxruntime-'; then echo "no onnxruntime jar staged" >&2; exit 1; fi
du -sh "$out"
