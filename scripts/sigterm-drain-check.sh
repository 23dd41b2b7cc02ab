#!/usr/bin/env bash
# Real-signal drain check (manual, not in CI; needs `npm run build` first). Starts the fake upstream with 5 s
# latency and dist/main.js, opens 200 streams, sends SIGTERM, and reports readiness, a late /predict, the exit
# code and how every stream ended.
set -u
cd "$(dirname "$0")/.." || exit 1
W=$(mktemp -d)
node scripts/fake-openai.js --latency-ms 5000 >"$W/fake.json" 2>"$W/fake.err" &
FP=$!
for _ in $(seq 1 50); do [ -s "$W/fake.json" ] && break; sleep 0.1; done
UP=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).url)' "$W/fake.json")
PORT=18931
env OPENAI_API_KEY=sk-x OPENAI_BASE_URL="$UP" PORT=$PORT HOST=127.0.0.1 SHUTDOWN_GRACE_MS=700 \
  MAX_CONCURRENT_PREDICTIONS=256 CACHE_DISK_ENABLED=false LOG_LEVEL=warn LM_MAX_RETRIES=0 \
  node dist/main.js >"$W/app.log" 2>&1 &
AP=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health/live" >/dev/null && break; sleep 0.1; done
N=200
CP=()
for i in $(seq 1 $N); do
  curl -sN -X POST -H 'content-type: application/json' -d "{\"question\":\"q $i?\"}" \
    "http://127.0.0.1:$PORT/predict/stream" >"$W/s$i.txt" 2>/dev/null &
  CP+=("$!")
done
sleep 1.5
kill -TERM "$AP"
sleep 0.1
echo "ready during drain: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health/ready")"
echo "predict during drain: $(curl -s -o /dev/null -w '%{http_code} retry-after=%header{retry-after}' -X POST \
  -H 'content-type: application/json' -d '{"question":"late?"}' "http://127.0.0.1:$PORT/predict")"
wait "$AP"
echo "exit code: $?"
wait "${CP[@]}"
echo "streams: $N; ending with [DONE]: $(grep -l 'data: \[DONE\]' "$W"/s*.txt | wc -l);" \
  "with service_draining: $(grep -l service_draining "$W"/s*.txt | wc -l);" \
  "complete: $(grep -l '"type":"complete"' "$W"/s*.txt | wc -l)"
kill "$FP"
