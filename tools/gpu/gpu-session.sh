#!/usr/bin/env bash
# GPU host: the checks and measurements the open issues need from a GPU, as ONE command that is sure to bring back
# its headline numbers first, whatever else runs out of time.
#   bash app/gpu-session.sh checks|pipeline|lowp BUDGET_SECONDS
# BUDGET_SECONDS is the device time this call may use: what the host has left, minus about 90 s for the give-back and
# the files' way home. The plan's time budget is printed line by line before anything starts.
#
# What comes back: stdout (every phase prints its result line when it ends, and the headline numbers as soon as they
# are measured, so the output tail holds them even when the call is cut) and two files in $OUT: session.txt (the same
# lines) and logs.tar.gz (every log and report). The archive is rewritten after every phase and from the EXIT/TERM
# trap, so a call that is cut still leaves the logs of the phases that ended.
#
# Plans:
#   checks    headline: the SD 1.5 UNet (random weights, fp16, static batch 2, 64x64 latent, 77 tokens, opt level 3)
#             exports and builds in the background from the start; when the build exits, the phase then running is
#             paused (SIGSTOP) and the engine is measured alone (eager and CUDA-graph replay, median of 100, CUDA
#             events), then profiled kernel by kernel; then the paused phase resumes. Meanwhile the tiny checks run,
#             each capped at what is left minus the time held back for the headline:
#               selftest   GpuChecks (opt level 1): TensorRT load, build + manifest, cache reuse/refusal, enqueue, graphs
#               loopcheck  the device loop on TensorRT vs ONNX Runtime: 1 sync per batch, replay, DeepCache
#               passes     engines from pass outputs (tiny UNet: fuse-qkv + tome + channels-last + fp16; int8; fp8),
#                          calibrate --backend tensorrt
#               bench      sdrt bench --backend tensorrt on the tiny pipeline
#   lowp      the SD 1.5 UNet as fp16, int8 and fp8 engines of one graph (export in float32, CPU calibration at
#             256x256, optimize), then for each mode in turn, fp16 first: build (one shared timing cache, opt level
#             LOWP_OPT_LEVEL, default 1, each build capped at its share of what is left), its latency at once, and its
#             step cosine against fp16; kernel profiles with whatever time is left.
#   pipeline  the SD 1.5 pipeline at 512x512, 50 steps, guidance 7.5 on the device loop (sd15-pipeline-bench.sh,
#             DEEPCACHE=0): s/image, syncs per image, host enqueue time, eager vs replay.
#
# Environment: OUT (results folder, default /tmp/sdrt-session), SDRT_WORK (scratch, default /tmp/sdrt-gpu),
# SDRT_GPU_RUN (the runner, default gpu-run.sh beside this script; tests pass a stub), SDRT_TIME_SCALE (tests only:
# simulated seconds per real second, so a 540 s plan runs in seconds against the stub).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage="usage: gpu-session.sh checks|pipeline|lowp BUDGET_SECONDS (the device time left, minus about 90 s)"
plan=${1:-}
budget=${2:-}
[[ $plan == checks || $plan == pipeline || $plan == lowp ]] || { echo "$usage" >&2; exit 2; }
[[ $budget =~ ^[0-9]+$ ]] || { echo "$usage" >&2; exit 2; }
out=${OUT:-/tmp/sdrt-session}
work=${SDRT_WORK:-/tmp/sdrt-gpu}
logs="$work/logs"
runner=${SDRT_GPU_RUN:-$here/gpu-run.sh}
scale=${SDRT_TIME_SCALE:-1}
mkdir -p "$out" "$logs"
rm -f "$out/session.txt" "$out/logs.tar.gz"
export SDRT_WORK="$work" OUT_DIR="$logs" SDRT_GPU_RUN="$runner"

# --- clock, printing, archive ----------------------------------------------------------------------------------------
# Time is counted in (simulated) seconds since the start; with SDRT_TIME_SCALE=1 they are real seconds. clock sets
# NOW and LEFT without a subshell: the polling loops run it many times a second, and a signal that arrives while
# bash parses a command substitution can derail the parse (and the trap).
started_us=${EPOCHREALTIME/./}
clock() { NOW=$(((${EPOCHREALTIME/./} - started_us) * scale / 1000000)); LEFT=$((budget - NOW)); }
# a tenth of a real second (not 'read -t': a trap that exits during its timeout crashes bash 5.2)
tick() { sleep 0.1; }
say() { printf '%s\n' "$*"; printf '%s\n' "$*" >>"$out/session.txt"; }
stamp() { clock; local line; printf -v line '[%4ds] %s' "$NOW" "$*"; say "$line"; }
pack() { tar -czf "$out/logs.tar.gz.part" -C "$work" logs 2>/dev/null && mv "$out/logs.tar.gz.part" "$out/logs.tar.gz"; }

sdrt() { bash "$runner" sdrt "$@"; }
run_tool() { bash "$runner" "$@"; }
export -f sdrt run_tool
export runner here work logs

declare -A result      # phase → outcome
declare -a phase_order # phases in the order they ended, for the table
declare -a groups=()   # process groups still running (killed on exit)
paused_pgid=""
forget_group() { local g kept=(); for g in "${groups[@]}"; do [[ $g == "$1" ]] || kept+=("$g"); done; groups=(${kept[@]+"${kept[@]}"}); }

finish() {
  local rc=$?
  trap - EXIT TERM INT
  [[ -n $paused_pgid ]] && kill -CONT -- "-$paused_pgid" 2>/dev/null
  local g
  for g in ${groups[@]+"${groups[@]}"}; do kill -TERM -- "-$g" 2>/dev/null; done
  ((interrupted)) && stamp "session: interrupted; packing the logs of what ran"
  summary
  pack
  say "logs: $out/logs.tar.gz ($(tar -tzf "$out/logs.tar.gz" 2>/dev/null | grep -c '\.log$') logs)"
  exit "$rc"
}
interrupted=0
trap finish EXIT
trap 'interrupted=1; exit 143' TERM INT

# --- phases ----------------------------------------------------------------------------------------------------------
# reserve: sets RESERVE, the seconds the current plan holds back for work that matters more and has not run yet.
reserve() { RESERVE=0; }
# on_poll PGID: called while a phase runs, between polls; a plan sets it to measure its headline as soon as it can,
# pausing the phase meanwhile; it adds the seconds the phase was paused to paused_for.
on_poll() { :; }
paused_for=0
MIN_PHASE=20

# phase NAME CAP RESULT_REGEX COMMAND...: runs COMMAND in its own process group with its output in $logs/NAME.log,
# cut at CAP or at what is left minus the reserve, whichever is smaller; prints the outcome and the phase's result
# line (the last log line matching RESULT_REGEX, or the last line) when it ends. Time the phase spends paused does
# not count against its cap.
phase() {
  local name=$1 cap=$2 pick=$3; shift 3
  clock; reserve
  local limit=$((LEFT - RESERVE))
  ((cap < limit)) && limit=$cap
  if ((limit < MIN_PHASE)); then
    result[$name]="skipped: out of time"
    phase_order+=("$name")
    stamp "$name: skipped (out of time: ${limit}s of ${cap}s)"
    return 1
  fi
  stamp "$name: start (limit ${limit}s)"
  setsid bash -c '"$@"' "$name" "$@" >"$logs/$name.log" 2>&1 &
  local pid=$!
  groups+=("$pid")
  clock; local t0=$NOW
  local timed_out=0 paused_before=$paused_for
  while kill -0 "$pid" 2>/dev/null; do
    # its own limit (paused time excluded), and never past the budget, whatever a pause took
    clock
    if ((NOW - t0 - (paused_for - paused_before) > limit || LEFT <= 0)); then
      timed_out=1
      kill -TERM -- "-$pid" 2>/dev/null
      local k=$NOW
      while kill -0 "$pid" 2>/dev/null && { clock; ((NOW - k < 10)); }; do tick; done
      kill -KILL -- "-$pid" 2>/dev/null
      break
    fi
    on_poll "$pid"
    tick
  done
  wait "$pid"
  local rc=$?
  forget_group "$pid"
  clock; local took=$((NOW - t0 - (paused_for - paused_before)))
  if ((timed_out)); then
    result[$name]="TIMED OUT after ${took}s"
  elif ((rc == 0)); then
    result[$name]="ok in ${took}s"
  else
    result[$name]="FAILED (exit $rc) in ${took}s"
  fi
  phase_order+=("$name")
  local line; line=$(grep -E "$pick" "$logs/$name.log" 2>/dev/null | tail -n 1)
  [[ -n $line ]] || line=$(tail -n 1 "$logs/$name.log" 2>/dev/null)
  stamp "$name: ${result[$name]} — ${line:0:200}"
  pack
  [[ ${result[$name]} == ok* ]]
}

summary() {
  say ""
  clock
  say "GPU session $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo '(no nvidia-smi)'), plan $plan, budget ${budget}s, used ${NOW}s"
  local p
  for p in ${phase_order[@]+"${phase_order[@]}"}; do say "$(printf '| %-22s | %s |' "$p" "${result[$p]}")"; done
  plan_summary
}
plan_summary() { :; }

# The plan's budget, line by line, before it starts.
budget_line() { say "$(printf '  %-22s %s' "$1" "$2")"; }

# --- plan: checks ----------------------------------------------------------------------------------------------------
SD15_BUILD_EST=${SD15_BUILD_EST:-330}   # export ~45 s + build ~272 s at opt level 3 on an H100 + margin
SD15_LATENCY=60
SD15_PROFILE=45
LATENCY_ROWS='^\| (build time|engine size|device memory|eager|CUDA graph)'

sd15_build() {
  set -e
  local shape=(--batch 2 --height 64 --width 64)
  sdrt export --arch sd15 --component unet --random-weights --seed 0 --precision fp16 --static "${shape[@]}" \
    --sequence 77 --out "$work/sd15/unet.onnx"
  run_tool bench build --onnx "$work/sd15/unet.onnx" --out "$work/sd15/unet.plan" "${shape[@]}" --tokens 77 \
    --static --opt-level 3 --timing-cache "$work/sd15/timing.cache"
}

passes_check() {
  set -e
  local t="$work/passes"
  rm -rf "$t" && mkdir -p "$t"
  sdrt export-pipeline --arch tiny --random-weights --out "$t/tiny"
  # tiny: 64x64 images, VAE factor 2, so the UNet sees 32x32 latents; batch 2 = one guided image
  sdrt optimize "$t/tiny/unet.onnx" --out "$t/unet-fp16-opt.onnx" \
    --passes static-shapes:batch=2:height=32:width=32,cleanup,fuse-qkv,tome:ratio=0.5,channels-last,fp16
  sdrt calibrate --model "$t/tiny" --out "$t/scales.json" --steps 4 --prompt-count 2
  sdrt optimize "$t/tiny/unet.onnx" --passes qdq:mode=int8 --scales "$t/scales.json" --out "$t/unet-int8.onnx"
  sdrt optimize "$t/tiny/unet.onnx" --passes qdq:mode=fp8 --scales "$t/scales.json" --out "$t/unet-fp8.onnx"
  local failed=0 m
  if sdrt calibrate --model "$t/tiny" --backend tensorrt --opt-level 1 --out "$t/scales-trt.json" --steps 4 --prompt-count 2; then
    echo "PASS calibrate tensorrt"
  else
    echo "FAIL calibrate tensorrt"; failed=1
  fi
  for m in fp16-opt int8 fp8; do
    if sdrt build "$t/unet-$m.onnx" --out "$t/unet-$m.plan" --batch 2 --height 64 --width 64 --vae-scale-factor 2 \
        --opt-level 1; then
      echo "PASS build unet-$m"
      if sdrt profile "$t/unet-$m.plan" --runs 5 --top 8 --out "$OUT_DIR/profile-$m.md"; then
        echo "PASS profile unet-$m"
      else
        echo "FAIL profile unet-$m"; failed=1
      fi
    else
      echo "FAIL build unet-$m"; failed=1
    fi
  done
  echo "passes: $( ((failed)) && echo 'some FAILED' || echo 'all passed')"
  return $failed
}

bench_check() {
  sdrt bench --arch tiny --backend tensorrt --opt-level 1 --sizes 64 --batch 1,2 --steps 20 --runs 3 --warmup 1 \
    --variants fp32,fp32+fuse-qkv,fp32+tome:0.5,fp32+deepcache:3,fp16 --out "$work/bench-tiny"
  local rc=$?
  cp "$work/bench-tiny/bench.md" "$work/bench-tiny/bench.json" "$OUT_DIR/" 2>/dev/null
  return $rc
}
export -f sd15_build passes_check bench_check

checks_plan() {
  mkdir -p "$work/sd15"
  say "plan checks, budget ${budget}s"
  budget_line sd15-build "background from 0 s, expected to end by ~${SD15_BUILD_EST}s (held back until it ends)"
  budget_line sd15-latency "${SD15_LATENCY}s as soon as the build exits (the running phase pauses)"
  budget_line sd15-profile "${SD15_PROFILE}s right after the latency"
  budget_line selftest "<= 90s (opt level 1)"
  budget_line loopcheck "<= 150s"
  budget_line passes "<= 200s"
  budget_line bench "<= 150s"
  budget_line rule "each tiny phase gets at most what is left minus the SD 1.5 headline's need"
  ((budget < SD15_BUILD_EST + SD15_LATENCY)) &&
    say "  WARNING: ${budget}s may not fit the SD 1.5 build and its latency (~$((SD15_BUILD_EST + SD15_LATENCY))s)"

  setsid bash -c sd15_build >"$logs/sd15-build.log" 2>&1 &
  sd15_pid=$!
  groups+=("$sd15_pid")
  build_state=running   # running → measuring (the build exited) → measured
  stamp "sd15-build: started in the background"

  reserve() {
    RESERVE=0
    # while measuring, the measurement's own phases run with nothing held back
    if [[ $build_state == running ]]; then
      clock
      local until_built=$((SD15_BUILD_EST - NOW))
      ((until_built > 0)) && RESERVE=$until_built
      RESERVE=$((RESERVE + SD15_LATENCY + SD15_PROFILE))
    fi
  }
  on_poll() {
    [[ $build_state == running ]] || return 0
    kill -0 "$sd15_pid" 2>/dev/null && return 0
    clock; local current=${1:-} p0=$NOW
    if [[ -n $current ]]; then
      kill -STOP -- "-$current" 2>/dev/null
      paused_pgid=$current
      stamp "sd15-build: exited; pausing the running phase to measure SD 1.5 alone"
    fi
    sd15_headline
    if [[ -n $current ]]; then
      kill -CONT -- "-$current" 2>/dev/null
      paused_pgid=""
      clock; paused_for=$((paused_for + NOW - p0))
      stamp "resuming the paused phase"
    fi
  }
  sd15_headline() {
    build_state=measuring
    wait "$sd15_pid"
    local rc=$?
    forget_group "$sd15_pid"
    clock
    if ((rc == 0)); then result[sd15-build]="ok in ~${NOW}s (beside the tiny checks)"; else result[sd15-build]="FAILED (exit $rc)"; fi
    phase_order+=(sd15-build)
    stamp "sd15-build: ${result[sd15-build]} — $(grep -E '^\| (build time|engine size)' "$logs/sd15-build.log" | tr -s ' ' | paste -sd' ')"
    if ((rc == 0)); then
      phase sd15-latency "$SD15_LATENCY" '^\| CUDA graph replay' run_tool bench latency --engine "$work/sd15/unet.plan" \
        --runs 100 --warmup 20
      grep -hE "$LATENCY_ROWS" "$logs/sd15-build.log" "$logs/sd15-latency.log" 2>/dev/null |
        while IFS= read -r row; do say "HEADLINE sd15 $row"; done
      phase sd15-profile "$SD15_PROFILE" '^\| (convolution|matmul|attention)' run_tool sdrt profile "$work/sd15/unet.plan" \
        --runs 10 --top 30 --out "$logs/sd15-profile.md"
    else
      stamp "sd15-build: last lines: $(tail -n 3 "$logs/sd15-build.log" | tr '\n' ' ' | cut -c1-400)"
    fi
    build_state=measured
  }

  phase selftest 90 '[0-9]+ passed, [0-9]+ failed' run_tool selftest --opt-level 1
  phase loopcheck 150 '[0-9]+ passed, [0-9]+ failed' run_tool loopcheck
  phase passes 200 '^passes: ' passes_check
  phase bench 150 '' bench_check

  if [[ $build_state == running ]]; then
    clock; stamp "sd15-build: waiting (up to $((LEFT - SD15_LATENCY))s)"
    while kill -0 "$sd15_pid" 2>/dev/null && { clock; ((LEFT > SD15_LATENCY)); }; do tick; done
    if kill -0 "$sd15_pid" 2>/dev/null; then
      kill -TERM -- "-$sd15_pid" 2>/dev/null
      forget_group "$sd15_pid"
      clock; result[sd15-build]="TIMED OUT at ${NOW}s"
      phase_order+=(sd15-build)
      stamp "sd15-build: ${result[sd15-build]} — $(tail -n 1 "$logs/sd15-build.log")"
      say "HEADLINE sd15 not measured: the build did not finish within the budget"
      build_state=measured
    else
      on_poll ""
    fi
  fi
  plan_summary() {
    # read before writing: say appends to session.txt
    local lines
    lines=$(grep -h '^HEADLINE' "$out/session.txt"
      grep -hE '^(PASS|FAIL) (build|calibrate|profile)' "$logs/passes.log" 2>/dev/null
      sed -n '/^| kernel class/,/^$/p' "$logs/sd15-profile.md" 2>/dev/null)
    [[ -n $lines ]] && say "$lines"
  }
}

# --- plan: lowp ------------------------------------------------------------------------------------------------------
LOWP_OPT_LEVEL=${LOWP_OPT_LEVEL:-1}
LOWP_MODES=${LOWP_MODES:-fp16 int8 fp8}
LOWP_PREPARE=240   # export float32 (~60 s on 16 cores), calibrate 256x256 2 steps, optimize the modes side by side
LOWP_LATENCY=45   # JVM start, a 1.7 GB engine loaded, 120 eager calls and 120 replays of ~8 ms
LOWP_COMPARE=30   # two engines loaded, one call each
export LOWP_OPT_LEVEL LOWP_MODES

lowp_prepare() {
  set -e
  local lp="$work/lowp"
  mkdir -p "$lp"
  [[ -f $lp/fp32/sdrt-pipeline.json ]] || sdrt export-pipeline --arch sd15 --random-weights --seed 0 --out "$lp/fp32"
  [[ -f $lp/scales.json ]] || sdrt calibrate --model "$lp/fp32" --out "$lp/scales.json" --width 256 --height 256 \
    --steps 2 --prompt-count 1
  local pids=() m passes
  for m in $LOWP_MODES; do
    case $m in
      fp16) passes=(--passes fp16) ;;
      int8|fp8) passes=(--passes "fp16,qdq:mode=$m" --scales "$lp/scales.json") ;;
      int8-qdq-first|fp8-qdq-first) passes=(--passes "qdq:mode=${m%%-*},fp16" --scales "$lp/scales.json") ;;
      *) echo "unknown LOWP_MODES entry '$m' (fp16, int8, fp8, int8-qdq-first, fp8-qdq-first)" >&2; return 2 ;;
    esac
    [[ -f $lp/unet-$m.onnx ]] && continue   # optimize writes atomically: a file that exists is complete
    SDRT_JAVA_OPTS="${SDRT_JAVA_OPTS:-} -Xmx24g" sdrt optimize "$lp/fp32/unet.onnx" "${passes[@]}" \
      --out "$lp/unet-$m.onnx" --no-check >"$OUT_DIR/optimize-$m.log" 2>&1 &
    pids+=($!)
  done
  for p in ${pids[@]+"${pids[@]}"}; do wait "$p" || { tail -n 20 "$OUT_DIR"/optimize-*.log; return 1; }; done
  echo "prepared: $(cd "$lp" && ls unet-*.onnx | paste -sd' ')"
}
lowp_build() {
  local m=$1
  sdrt build "$work/lowp/unet-$m.onnx" --out "$work/lowp/unet-$m.plan" --batch 2 --height 512 --width 512 \
    --opt-level "$LOWP_OPT_LEVEL" --timing-cache "$work/lowp/timing.cache"
}
export -f lowp_prepare lowp_build

lowp_plan() {
  local modes=($LOWP_MODES) n=${#modes[@]}
  local per=$(((budget - LOWP_PREPARE) / (n > 0 ? n : 1)))
  say "plan lowp, budget ${budget}s, modes ${LOWP_MODES}, opt level ${LOWP_OPT_LEVEL}"
  budget_line lowp-prepare "<= ${LOWP_PREPARE}s (export float32, calibrate on the CPU, optimize the modes side by side)"
  local m
  for m in "${modes[@]}"; do
    budget_line "lowp-$m" "~${per}s: build (its share of what is left, minus ${LOWP_LATENCY}+${LOWP_COMPARE}s per mode still to go), latency ${LOWP_LATENCY}s at once$([[ $m != fp16 ]] && echo ", step cosine vs fp16 ${LOWP_COMPARE}s")"
  done
  budget_line lowp-profile-MODE "45s each with what is left"
  phase lowp-prepare "$LOWP_PREPARE" '^prepared: ' lowp_prepare || return 0
  local i=0
  for m in "${modes[@]}"; do
    local to_go=$((n - i)) need=$((LOWP_LATENCY + LOWP_COMPARE))
    # this build's share: what is left after every later mode's measurements, split over the builds still to run
    clock; local cap=$(((LEFT - to_go * need) / to_go))
    i=$((i + 1))
    phase "lowp-build-$m" "$cap" '^(built|reused) ' lowp_build "$m" || continue
    phase "lowp-latency-$m" "$LOWP_LATENCY" '^\| CUDA graph replay' run_tool bench latency \
      --engine "$work/lowp/unet-$m.plan" --runs 100 --warmup 20 &&
      grep -E '^\| (eager|CUDA graph)' "$logs/lowp-latency-$m.log" | while IFS= read -r row; do say "HEADLINE lowp $m $row"; done
    if [[ $m != fp16 && -f $work/lowp/unet-fp16.plan ]]; then
      phase "lowp-compare-$m" "$LOWP_COMPARE" '^\| output ' run_tool bench compare --engine "$work/lowp/unet-$m.plan" \
        --reference "$work/lowp/unet-fp16.plan" &&
        grep -E '^\| output ' "$logs/lowp-compare-$m.log" | while IFS= read -r row; do say "HEADLINE lowp $m vs fp16 $row"; done
    fi
  done
  for m in "${modes[@]}"; do
    [[ -f $work/lowp/unet-$m.plan ]] || continue
    phase "lowp-profile-$m" 45 '^\| (convolution|matmul)' run_tool sdrt profile "$work/lowp/unet-$m.plan" --runs 10 --top 15 \
      --out "$logs/lowp-profile-$m.md"
  done
  plan_summary() {
    # lowp-table.sh reads lowp-build-M.log, lowp-latency-M.log, lowp-compare-M.log and lowp-profile-M.md
    say "$(bash "$here/lowp-table.sh" "$logs" $LOWP_MODES)"
  }
}

# --- plan: pipeline --------------------------------------------------------------------------------------------------
pipeline_plan() {
  say "plan pipeline, budget ${budget}s"
  budget_line pipeline "<= ${budget}s: sd15-pipeline-bench.sh all with DEEPCACHE=0 (export, fp16 pass, build-pipeline at opt level ${OPT_LEVEL:-3}, generate eager and replayed)"
  phase pipeline "$budget" '^\| CUDA graph ' env DEEPCACHE=0 REPEAT=3 bash "$here/sd15-pipeline-bench.sh" "$work/sd15p" all
  plan_summary() {
    local table; table=$(sed -n '/^SD 1.5 (random weights)/,$p' "$logs/pipeline.log" 2>/dev/null)
    [[ -n $table ]] && say "$table"
  }
}

case $plan in
  checks) checks_plan ;;
  lowp) lowp_plan ;;
  pipeline) pipeline_plan ;;
esac
