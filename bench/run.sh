#!/usr/bin/env bash
# `make bench`: every speed and cost claim, measured side by side, written to bench/RESULTS.md.
#
#   1. builds (isolated in target/bench so other builds never hold its lock): the three Lambda
#      functions and the hello-world floor with `cargo lambda build --release --output-format zip`,
#      the cold-start harness, the jobrunner CLI (the simulator)
#   2. sizes of the zipped functions
#   3. criterion benchmarks of the hot path (crates/core/benches/hot_path.rs), short measurement
#   4. cold start of each function and of the floor under a fake Runtime API, first invocation
#      against moto server on loopback (bench/coldstart, bench/moto_setup.py)
#   5. simulations of every trace in bench/traces/ under every policy (jobrunner simulate), with
#      charts in bench/charts/, and the scaling benchmark (`jobrunner simulate --trace bench/traces`:
#      jobrunner in both modes against every peer, goals checked)
#   6. bench/RESULTS.md (bench/report.py)
#
# COLDSTART_ONLY=1 builds the functions, the floor and the harness, runs only step 4 and replaces just
# the cold-start parts of bench/RESULTS.md (report.py --splice-cold).
#
# TARGET (cargo target directory, default target/bench). SIMULATIONS_ONLY=1 builds only the CLI, runs step 5 and replaces just the scaling parts of
# bench/RESULTS.md (report.py --splice), leaving the other measurements as they were.
#
# BASELINE (a directory holding launcher/, scaler/, tracker/ bootstrap.zip built from another commit,
# e.g. `cargo lambda build --release --output-format zip --lambda-dir DIR` there) adds those functions
# to the cold-start runs as launcher-before etc., interleaved with these, for a before/after table;
# BASELINE_LABEL names that commit in RESULTS.md.
#
# Environment: RUNS (cold starts per function, default 30), WARMUP (discarded, default 2),
# JOBS (cargo jobs, default 2), SEED (processing times, default 1), MEASUREMENT_SECONDS
# (criterion, default 3), MOTO_PORT (default 5077), CALL_LATENCY_MS (each AWS call held this long in
# the cold-start run that models an endpoint's round trip, default 10). Raw outputs go to bench/out/
# (not committed).
set -euo pipefail
# BASELINE may be relative to where run.sh was started.
if [ -n "${BASELINE:-}" ]; then BASELINE=$(cd "$BASELINE" && pwd); fi
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH"

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-2}
JOBS=${JOBS:-2}
SEED=${SEED:-1}
MEASUREMENT_SECONDS=${MEASUREMENT_SECONDS:-3}
MOTO_PORT=${MOTO_PORT:-5077}
CALL_LATENCY_MS=${CALL_LATENCY_MS:-10}
SIMULATIONS_ONLY=${SIMULATIONS_ONLY:-}
COLDSTART_ONLY=${COLDSTART_ONLY:-}
BASELINE=${BASELINE:-}
BASELINE_LABEL=${BASELINE_LABEL:-the baseline}
TARGET="${TARGET:-$ROOT/target/bench}"
OUT="$ROOT/bench/out"
CHARTS="$ROOT/bench/charts"
FUNCTIONS=(launcher scaler tracker)
TRACES=(burst diurnal trickle spiky)

rm -rf "$OUT" && mkdir -p "$OUT" "$CHARTS"
: >"$OUT/commands.txt"
: >"$OUT/timings.txt"
began=$(date +%s)
phase_start=$began

log() { printf '== %s\n' "$*"; }
run() { # run and record a command line
  printf '%s\n' "$*" >>"$OUT/commands.txt"
  "$@"
}
phase_done() {
  local now
  now=$(date +%s)
  printf '%s\t%s\n' "$1" "$((now - phase_start))" >>"$OUT/timings.txt"
  phase_start=$now
}

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# The machine, for RESULTS.md.
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "rustc=$(rustc -V)"
  echo "cargo_lambda=$(cargo lambda -V 2>/dev/null | head -1)"
  echo "moto=$(python3 -c 'import importlib.metadata as m; print(m.version("moto"))')"
  echo "load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  if [ -n "$BASELINE" ]; then echo "baseline=$BASELINE_LABEL"; fi
} >"$OUT/machine.txt"

if [ -z "$SIMULATIONS_ONLY" ]; then
log "1/6 builds (release, cargo lambda, target/bench)"
run env CARGO_TARGET_DIR="$TARGET" cargo lambda build --release -j"$JOBS" --output-format zip \
  --lambda-dir "$TARGET/lambda" --bin launcher --bin scaler --bin tracker
(cd bench/hello && run env CARGO_TARGET_DIR="$TARGET/hello" cargo lambda build --release -j"$JOBS" \
  --output-format zip --lambda-dir "$TARGET/lambda")
run env CARGO_TARGET_DIR="$TARGET/tools" cargo build -q --release -j"$JOBS" --manifest-path bench/coldstart/Cargo.toml
fi
if [ -z "$COLDSTART_ONLY" ]; then
  run env CARGO_TARGET_DIR="$TARGET" cargo build -q -j"$JOBS" -p jobrunner-cli
fi
JOBRUNNER="$TARGET/debug/jobrunner"
phase_done builds

if [ -z "$SIMULATIONS_ONLY" ]; then

log "2/6 sizes"
{
  for fn in "${FUNCTIONS[@]}" hello; do
    zip="$TARGET/lambda/$fn/bootstrap.zip"
    mkdir -p "$OUT/cold/$fn"
    (cd "$OUT/cold/$fn" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".")' "$zip")
    chmod +x "$OUT/cold/$fn/bootstrap"
    printf '%s\t%s\t%s\n' "$fn" "$(stat -c %s "$zip")" "$(stat -c %s "$OUT/cold/$fn/bootstrap")"
  done
} >"$OUT/sizes.tsv"
if [ -n "$BASELINE" ]; then
  for fn in "${FUNCTIONS[@]}"; do
    mkdir -p "$OUT/cold/$fn-before"
    (cd "$OUT/cold/$fn-before" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".")' "$BASELINE/$fn/bootstrap.zip")
    chmod +x "$OUT/cold/$fn-before/bootstrap"
  done
fi
cat "$OUT/sizes.tsv"
phase_done sizes

if [ -z "$COLDSTART_ONLY" ]; then
log "3/6 criterion (hot path)"
run env CARGO_TARGET_DIR="$TARGET" cargo bench -q -j"$JOBS" -p jobrunner-core --bench hot_path -- \
  --warm-up-time 1 --measurement-time "$MEASUREMENT_SECONDS" --noplot 2>&1 | grep -E '^[a-z0-9_]+/|time:' | tee "$OUT/criterion.txt"
mkdir -p "$OUT/criterion"
for dir in "$TARGET"/criterion/*/; do
  name=$(basename "$dir")
  [ -f "$dir/new/estimates.json" ] && cp "$dir/new/estimates.json" "$OUT/criterion/$name.json"
done
phase_done criterion
fi

log "4/6 cold start ($RUNS runs each after $WARMUP warm-up runs, moto on 127.0.0.1:$MOTO_PORT)"
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$OUT/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break; sleep 0.2; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
python3 bench/moto_setup.py "$OUT"
# Each function's event and config; with BASELINE, the same functions from that build too.
cold_args() { # SUFFIX: the functions' arguments, their names suffixed
  echo --function "launcher$1" "$OUT/cold/launcher$1/bootstrap" events/s3-object-created.json "$OUT/config-launcher.toml"
  echo --function "scaler$1" "$OUT/cold/scaler$1/bootstrap" bench/events/scaler-tick.json "$OUT/config-scaler.toml"
  echo --function "tracker$1" "$OUT/cold/tracker$1/bootstrap" events/ecs-task-stopped-non-zero-exit.json "$OUT/config-tracker.toml"
}
read -ra AFTER <<<"$(cold_args "" | tr '\n' ' ')"
BEFORE=()
if [ -n "$BASELINE" ]; then read -ra BEFORE <<<"$(cold_args -before | tr '\n' ' ')"; fi
run "$TARGET/tools/release/coldstart" --runs "$RUNS" --warmup "$WARMUP" --endpoint "$AWS_ENDPOINT_URL" \
  --function hello "$OUT/cold/hello/bootstrap" events/s3-object-created.json - "${AFTER[@]}" "${BEFORE[@]}" \
  >"$OUT/coldstart.json"
cat "$OUT/coldstart.json"
# The opt-out's cost: the system's certificate store instead of the compiled-in AWS roots.
run "$TARGET/tools/release/coldstart" --runs "$RUNS" --warmup "$WARMUP" --endpoint "$AWS_ENDPOINT_URL" \
  --env JOBRUNNER_TLS_ROOTS=system \
  --function hello "$OUT/cold/hello/bootstrap" events/s3-object-created.json - "${AFTER[@]}" \
  >"$OUT/coldstart-system-roots.json"
# Calls as slow as an AWS endpoint's round trip, where moto on loopback answers in a millisecond:
# what sending independent reads together saves.
run "$TARGET/tools/release/coldstart" --runs "$RUNS" --warmup "$WARMUP" --endpoint "$AWS_ENDPOINT_URL" \
  --call-latency "$CALL_LATENCY_MS" \
  --function hello "$OUT/cold/hello/bootstrap" events/s3-object-created.json - "${AFTER[@]}" "${BEFORE[@]}" \
  >"$OUT/coldstart-latency.json"
echo "call_latency_ms=$CALL_LATENCY_MS" >>"$OUT/machine.txt"
phase_done coldstart
fi

if [ -n "$COLDSTART_ONLY" ]; then
  log "6/6 bench/RESULTS.md (cold start only)"
  python3 bench/report.py "$OUT" --splice-cold bench/RESULTS.md
  log "done in $(($(date +%s) - began)) s: bench/RESULTS.md (cold start)"
  exit 0
fi

log "5/6 simulations"
simulate() { # NAME TRACE ARGS...
  local name=$1 trace=$2
  shift 2
  run "$JOBRUNNER" simulate --config bench/jobrunner.toml --trace "bench/traces/$trace.csv" --seed "$SEED" --json "$@" \
    >"$OUT/sim-$name-$trace.json"
}
for trace in "${TRACES[@]}"; do
  # The comparison: the same bounds (the worker's 0–50) for every policy, chart included.
  simulate same "$trace" --worker orders --min-tasks 0 --max-tasks 50 --chart "$CHARTS/$trace.svg"
  # Everyone keeps one task up.
  simulate min1 "$trace" --worker orders --min-tasks 1 --max-tasks 50
  # Each at its own defaults: CDK 1–2 tasks, the others the worker's 0–50.
  simulate defaults "$trace" --worker orders
  # Sensitivity: no CloudWatch delay at all, exponential processing times.
  simulate nodelay "$trace" --worker orders --min-tasks 0 --max-tasks 50 --metric-delay-seconds 0
  simulate exp "$trace" --worker orders --min-tasks 0 --max-tasks 50 --work-seconds exp:10
  # jobrunner exactly as examples/jobrunner.toml: one decision per minute.
  simulate minutely "$trace" --worker orders-minutely --min-tasks 0 --max-tasks 50 --policy jobrunner --policy keda
done
"$JOBRUNNER" simulate --config bench/jobrunner.toml --worker orders --trace bench/traces/spiky.csv --min-tasks 0 --max-tasks 50 \
  | tee "$OUT/sim-example.txt"
# The scaling benchmark: every trace at the same bounds, jobrunner in both modes (tasks launched in
# jobs mode exit after 5 s idle, one sampling period), every peer, the goals checked.
BENCH_ARGS=(--config bench/jobrunner.toml --worker orders --trace bench/traces --min-tasks 0 --max-tasks 50 --idle-exit-seconds 5 --seed "$SEED")
run "$JOBRUNNER" simulate "${BENCH_ARGS[@]}" | tee "$OUT/scaling.md"
"$JOBRUNNER" simulate "${BENCH_ARGS[@]}" --json >"$OUT/scaling.json"
phase_done simulations

log "6/6 bench/RESULTS.md"
printf 'total\t%s\n' "$(($(date +%s) - began))" >>"$OUT/timings.txt"
if [ -n "$SIMULATIONS_ONLY" ]; then
  python3 bench/report.py "$OUT" --splice bench/RESULTS.md
else
  python3 bench/report.py "$OUT" >bench/RESULTS.md
fi
log "done in $(($(date +%s) - began)) s: bench/RESULTS.md, bench/charts/*.svg"
