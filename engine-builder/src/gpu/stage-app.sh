#!/usr/bin/env bash
# Stages what the GPU host runs (see ../shared/gpu/README.md): the engine-builder jar, its runtime
# dependencies without ONNX Runtime and without the TensorRT/CUDA redist jars (the GPU kit brings the
# native libraries), the tiny SD UNet fixture, and gpu-run.sh. Run from the project root:
#   bash engine-builder/src/gpu/stage-app.sh [OUT]      (OUT defaults to .gpu/app; about 27 MB)
set -euo pipefail
out=${1:-.gpu/app}
fixtures=${SDRT_FIXTURES:-../shared/fixtures}
mvn -o -q -pl runtime,graphs install -DskipTests
mvn -o -q -pl engine-builder package -DskipTests
rm -rf "$out" && mkdir -p "$out/lib" "$out/fixtures"
mvn -o -q -pl engine-builder dependency:copy-dependencies -DincludeScope=runtime \
  -DexcludeArtifactIds=onnxruntime,onnxruntime_gpu -DoutputDirectory="$out/lib"
cp engine-builder/target/sdrt-engine-builder-*.jar "$out/lib/"
cp -r "$fixtures/tiny_sd_unet" "$out/fixtures/"
rm -f "$out/fixtures/tiny_sd_unet/diffusion_pytorch_model.safetensors"   # only model.onnx and the .npy files are used
cp "$(dirname "$0")/gpu-run.sh" "$out/"
if ls "$out/lib" | grep -Eq 'redist|onnxruntime'; then echo "redist or onnxruntime jar staged: remove it" >&2; exit 1; fi
du -sh "$out"
