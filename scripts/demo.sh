#!/usr/bin/env bash
# `make demo`: the launcher on the sample events, against moto server on loopback, driven the
# way a user drives a Lambda locally (cargo lambda watch + cargo lambda invoke).
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PWD/.venv/bin:$PATH"
DEMO=.demo
MOTO_PORT=${MOTO_PORT:-5055}
INVOKE_PORT=${INVOKE_PORT:-9055}
rm -rf "$DEMO" && mkdir -p "$DEMO"

export AWS_ENDPOINT_URL="http://127.0.0.1:${MOTO_PORT}"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_for_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing listens on port $1 (see $DEMO/*.log)" >&2
  return 1
}

echo "== jobrunner demo: S3 uploads and a schedule tick become ECS tasks; a stopped task becomes an alert;"
echo "   a worker service scales with its queue; a jobs-mode worker's tasks drain a queue"
echo "-- starting moto server (local AWS) on 127.0.0.1:${MOTO_PORT}"
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$DEMO/moto.log" 2>&1 &
pids+=($!)
wait_for_port "$MOTO_PORT"

echo "-- creating the demo's AWS resources in moto"
python scripts/demo_moto.py setup examples/jobrunner.toml "$DEMO/jobrunner.toml"
echo "-- config: examples/jobrunner.toml with moto's network IDs"
echo "   $(target/debug/jobrunner validate --config "$DEMO/jobrunner.toml")"

cat >"$DEMO/functions.env" <<ENV
AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL}
AWS_ACCESS_KEY_ID=demo
AWS_SECRET_ACCESS_KEY=demo
AWS_REGION=us-east-1
JOBRUNNER_CONFIG_FILE=$PWD/$DEMO/jobrunner.toml
AWS_LAMBDA_LOG_LEVEL=info
AWS_LAMBDA_LOG_FORMAT=JSON
ENV

echo "-- starting the functions: cargo lambda watch (Lambda runtime emulator on 127.0.0.1:${INVOKE_PORT})"
cargo lambda watch --invoke-port "$INVOKE_PORT" --env-file "$DEMO/functions.env" >"$DEMO/watch.log" 2>&1 &
pids+=($!)
wait_for_port "$INVOKE_PORT"

echo "-- invoking the launcher as EventBridge, SQS and EventBridge Scheduler would:"
for event in s3-object-created s3-object-created-unicode-key sqs-batch-s3 sqs-s3-notification schedule-scheduler-input; do
  result=$(cargo lambda invoke launcher --invoke-port "$INVOKE_PORT" --data-file "events/$event.json" 2>&1) || true
  printf '   %-40s -> %s\n' "events/$event.json" "$result"
done
echo "   (the SQS batch holds one message that is not JSON: only it is reported failed, for its DLQ)"

echo "-- tasks ECS started, read back from moto:"
python scripts/demo_moto.py report

echo "-- the launcher's structured log, one line per event:"
python scripts/demo_moto.py logs "$DEMO/watch.log"
echo
echo "-- a task stopped: the tracker gets ECS's Task State Change events (an OOM kill, and a clean exit)"
for event in ecs-task-stopped-oom ecs-task-stopped-succeeded; do
  result=$(cargo lambda invoke tracker --invoke-port "$INVOKE_PORT" --data-file "events/$event.json" 2>&1) || true
  printf '   %-40s -> %s\n' "events/$event.json" "$result"
done
echo "-- what arrived on the topic's SQS subscription (the clean exit is not worth an alert by default):"
python scripts/demo_moto.py alerts
echo "-- the demo's tasks finish: each STOPPED event goes to the tracker, which records the run's outcome"
python scripts/demo_moto.py stop "$DEMO/stops"
for event in "$DEMO"/stops/*.json; do
  cargo lambda invoke tracker --invoke-port "$INVOKE_PORT" --data-file "$event" >/dev/null 2>&1 || true
done
echo "-- the run ledger: jobrunner run list (newest first), then one run in full"
target/debug/jobrunner run list --config "$DEMO/jobrunner.toml" --since 30d | sed -E 's/^/   /'
run_id=$(target/debug/jobrunner run list --config "$DEMO/jobrunner.toml" --since 30d --job thumbnails --json \
  | python -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
target/debug/jobrunner run view "$run_id" --config "$DEMO/jobrunner.toml" | sed -E 's/^/   /'
echo "-- what the tracker calls for that stop, from the dry run (jobrunner plan runs the tracker's own code):"
target/debug/jobrunner plan --config "$DEMO/jobrunner.toml" --event events/ecs-task-stopped-oom.json \
  | python -c 'import json,sys; [print("   %-5s %s %s" % (a["kind"], a["service"], a["operation"])) for a in json.load(sys.stdin)["actions"]]'
echo "-- the alert as an email subscriber reads it (the plan's Publish):"
target/debug/jobrunner plan --config "$DEMO/jobrunner.toml" --event events/ecs-task-stopped-oom.json \
  | python -c 'import json,sys; a=[x for x in json.load(sys.stdin)["actions"] if x["operation"]=="Publish"][0]["input"]; print("   Subject: " + a["Subject"]); print("\n".join("   " + l for l in json.loads(a["Message"])["email"].splitlines()))'
echo
echo "-- the scaler: a worker service follows its queue from 0 tasks up and back to 0"
echo "   (scale_in_after_seconds compressed to seconds for the demo; see docs/scaling.md)"
cargo run -q -p jobrunner-scaler --example demo 2>/dev/null | sed -E 's/^/   /'
echo "-- jobs mode: the scaler launches worker tasks for a queue's backlog; they drain it and exit when idle"
cargo build -q -p jobrunner-worker
cargo run -q -p jobrunner-scaler --example jobs_demo -- "$DEMO/jobrunner.toml" 2>/dev/null | sed -E 's/^/   /'
echo "== done: moto and the functions are stopped; logs are in $DEMO/"
