#!/usr/bin/env bash
# Issue 7's table from the logs of gpu-session.sh's 'lowp' plan: per engine (fp16, int8, fp8 of the same SD 1.5 UNet),
# build time, plan size, median step latency eager and as a replayed CUDA graph, the speed-up over fp16, and the kernel
# classes that take most of the time.
#   bash lowp-table.sh LOG_DIR [MODE...]      (modes as in LOWP_MODES; default fp16 int8 fp8)
set -uo pipefail
dir=${1:?usage: lowp-table.sh LOG_DIR [MODE...]}
shift
modes=("$@")
((${#modes[@]})) || modes=(fp16 int8 fp8)
# "| eager enqueueV3, median of 100 | 8.420 ms (p10 ...) |" -> 8.420
median() { grep -h "^| $1" "$2" 2>/dev/null | head -n 1 | sed -E 's/^[^|]*\|[^|]*\| *([0-9.]+) ms.*/\1/'; }
failures=""
fp16_graph=$(median "CUDA graph replay" "$dir/lowp-latency-fp16.log")
echo "| engine | build | plan | eager ms/step | CUDA graph ms/step | speed-up vs fp16 (graph) | one step vs fp16 |"
echo "|---|---|---|---|---|---|---|"
for m in "${modes[@]}"; do
  build=$(grep -h '^built ' "$dir/lowp-build-$m.log" 2>/dev/null | grep -oE '[0-9.]+ s$' | head -n 1)
  size=$(grep -h '^engine ' "$dir/lowp-build-$m.log" 2>/dev/null | grep -oE '\([^()]*\)$' | head -n 1 | tr -d '()')
  eager=$(median "eager enqueueV3" "$dir/lowp-latency-$m.log")
  graph=$(median "CUDA graph replay" "$dir/lowp-latency-$m.log")
  speedup=n/a
  if [[ -n $fp16_graph && -n $graph ]]; then
    speedup=$(awk -v a="$fp16_graph" -v b="$graph" 'BEGIN { printf "%.2fx", a / b }')
  fi
  # "| output out_sample | cosine 0.999871, max rel diff 1.2e-02 |" -> "cosine 0.999871, max rel diff 1.2e-02"
  step=$(grep -h '^| output ' "$dir/lowp-compare-$m.log" 2>/dev/null | head -n 1 | sed -E 's/^[^|]*\|[^|]*\| *(.*[^ ]) *\|$/\1/')
  [[ $m == fp16 ]] && step=ref
  echo "| $m | ${build:-n/a} | ${size:-n/a} | ${eager:-n/a} | ${graph:-n/a} | $speedup | ${step:-n/a} |"
  if [[ -z $build && -f $dir/lowp-build-$m.log ]]; then
    failures+="$m build, last lines:"$'\n'"$(tail -n 4 "$dir/lowp-build-$m.log")"$'\n'
  fi
done
[[ -n $failures ]] && printf '\n%s' "$failures"
echo
for m in "${modes[@]}"; do
  f="$dir/lowp-profile-$m.md"
  [[ -f $f ]] || continue
  # the kernel-class rows: "| convolution int8 | 120 | 3.210 | 41.0% |" -> "convolution int8 41.0%"
  classes=$(sed -n '/^| kernel class/,/^$/p' "$f" | grep -vE '^\| kernel class|^\|-' | head -n 5 |
    awk -F'|' 'NF > 4 { gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $5); printf "%s%s %s", sep, $2, $5; sep = ", " }')
  echo "$m kernels: $classes"
done
