#!/usr/bin/env bash
# Stages what the GPU host runs (see ../shared/gpu/README.md): the sdrt jars (CLI included, so models are
# exported on the host: full-size engines are too big to carry), their runtime dependencies without ONNX Runtime and without the TensorRT/CUDA redist jars (the GPU kit brings the
# native libraries), the tiny SD UNet fixture, and gpu-run.sh. Run from the project root:
#   bash engine-builder/src/gpu/stage-app.sh [OUT]      (OUT defaults to .gpu/app; about 27 MB)
set -euo pipefail
out=$(realpath -m "${1:-.gpu/app}")   # absolute: Maven resolves relative paths per module
fixtures=${SDRT_FIXTURES:-../shared/fixtures}
mvn -o -q install -DskipTests
rm -rf "$out" && mkdir -p "$out/lib" "$out/fixtures"
mvn -o -q -pl cli dependency:copy-dependencies -DincludeScope=runtime \
  -DexcludeArtifactIds=onnxruntime,onnxruntime_gpu -DoutputDirectory="$out/lib"
cp cli/target/sdrt-cli-*.jar "$out/lib/"
cp -r "$fixtures/tiny_sd_unet" "$out/fixtures/" && chmod -R u+w "$out/fixtures"
rm -f "$out/fixtures/tiny_sd_unet/diffusion_pytorch_model.safetensors"   # only model.onnx and the .npy files are used
cp "$(dirname "$0")/gpu-run.sh" "$(dirname "$0")/sd15-unet-bench.sh" "$out/"
if ls "$out/lib" | grep -Eq 'redist|onnxruntime'; then echo "redist or onnxruntime jar staged: remove it" >&2; exit 1; fi
du -sh "$out"
