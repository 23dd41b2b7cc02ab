#!/usr/bin/env bash
# Builds what the Dockerfile builds, without a Docker engine, and starts it.
#
# In a fresh temporary directory: the build context (the repository less .dockerignore), then the Dockerfile's
# steps with the same commands: `npm ci` from the lock (stage deps), `npm run build` and `npm prune --omit=dev`
# (stage build), and a runtime tree holding only what the runtime stage copies (node_modules, dist,
# scripts/healthcheck.js, package.json, optimized_state.json when present). That tree is started like the
# container's CMD (`node dist/main.js`, NODE_ENV=production, an environment holding only the image's variables
# plus the LM endpoint) against the fake OpenAI-compatible upstream, probed with the image's own HEALTHCHECK
# script, asked one /predict, and stopped with SIGTERM, which must end it cleanly.
#
#   scripts/build-like-image.sh            # KEEP_BUILD_DIR=1 keeps the temporary directory for a look
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/build-like-image.XXXXXX")
context="$work/context"
build="$work/build"
runtime="$work/runtime"
fake_pid=""
app_pid=""

log() { printf '==> %s\n' "$*"; }
fail() {
  printf 'build-like-image: FAILED: %s\n' "$*" >&2
  if [ -s "$work/app.log" ]; then
    printf -- '--- app log (last 40 lines) ---\n' >&2
    tail -n 40 "$work/app.log" >&2
  fi
  exit 1
}
cleanup() {
  local pid
  for pid in "$app_pid" "$fake_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ "${KEEP_BUILD_DIR:-0}" = 1 ]; then
    printf 'kept %s\n' "$work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

log "context: $repo less .dockerignore"
node "$repo/scripts/docker-context.js" "$repo" "$context"
[ ! -e "$context/node_modules" ] || fail "node_modules is in the build context"
[ ! -e "$context/.env" ] || fail ".env is in the build context"

log "stage deps: npm ci"
mkdir -p "$build"
cp "$context/package.json" "$context/package-lock.json" "$build/"
(cd "$build" && npm ci --no-audit --no-fund)

log "stage build: npm run build && npm prune --omit=dev"
cp "$context/tsconfig.json" "$context/tsconfig.build.json" "$build/"
cp -R "$context/src" "$build/src"
# typescript survives the prune as node-llama-cpp's optional peer (types only, unused at run time): drop it.
(cd "$build" && npm run build && npm prune --omit=dev --no-audit --no-fund && rm -rf node_modules/typescript)

log "stage runtime: node_modules, dist, healthcheck, package.json, optional state"
mkdir -p "$runtime/scripts" "$runtime/.cache/dspy" "$runtime/models"
cp -R "$build/node_modules" "$runtime/node_modules"
cp -R "$build/dist" "$runtime/dist"
cp "$context/scripts/healthcheck.js" "$runtime/scripts/healthcheck.js"
cp "$context/package.json" "$runtime/package.json"
if [ -f "$context/optimized_state.json" ]; then
  cp "$context/optimized_state.json" "$runtime/optimized_state.json"
fi

log "runtime holds production dependencies only"
for dev in typescript jest eslint @swc/core supertest dockerfile-ast; do
  [ ! -e "$runtime/node_modules/$dev" ] || fail "devDependency $dev survived npm prune --omit=dev"
done
(cd "$runtime" && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1 as one').get()") ||
  fail "better-sqlite3's native module does not load in the runtime tree"

log "fake OpenAI-compatible upstream"
node "$repo/scripts/fake-openai.js" >"$work/fake.json" 2>"$work/fake.err" &
fake_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/fake.json" ] && break
  kill -0 "$fake_pid" 2>/dev/null || fail "the fake upstream did not start: $(cat "$work/fake.err")"
  sleep 0.1
done
upstream=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).url)' "$work/fake.json")

port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { process.stdout.write(String(s.address().port)); s.close(); })')

log "start: node dist/main.js on 127.0.0.1:$port"
(
  cd "$runtime"
  # Only the image's ENV (Dockerfile) plus what an operator passes; nothing leaks from this shell.
  exec env -i PATH="$PATH" HOME="$work" NODE_ENV=production HOST=127.0.0.1 PORT="$port" \
    CACHE_DIR="$runtime/.cache/dspy" OPENAI_API_KEY=sk-build-like-image OPENAI_BASE_URL="$upstream" \
    LM_MAX_RETRIES=0 LOG_LEVEL=warn node dist/main.js
) >"$work/app.log" 2>&1 &
app_pid=$!

log "HEALTHCHECK: node scripts/healthcheck.js"
healthy=0
for _ in $(seq 1 150); do
  kill -0 "$app_pid" 2>/dev/null || fail "the app exited during startup"
  if (cd "$runtime" && HOST=127.0.0.1 PORT="$port" node scripts/healthcheck.js 2>/dev/null); then
    healthy=1
    break
  fi
  sleep 0.2
done
[ "$healthy" = 1 ] || fail "/health/live did not answer 200 within 30 s"

log "POST /predict"
node - "http://127.0.0.1:$port" <<'EOF' || fail "/predict did not answer as the contract says"
const base = process.argv[2];
(async () => {
  const res = await fetch(`${base}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ question: `What does build-like-image check (${Date.now()})?` }),
  });
  const body = await res.json();
  const fields = ['answer', 'reasoning', 'key_concepts', 'question_type', 'usage', 'latency_seconds', 'cached', 'request_id', 'cost_usd'];
  const missing = fields.filter((f) => !(f in body));
  if (res.status !== 200 || missing.length > 0 || typeof body.answer !== 'string' || body.answer === '') {
    console.error(`status ${res.status}, missing ${missing.join(',') || 'none'}: ${JSON.stringify(body)}`);
    process.exit(1);
  }
  console.log(`200: answer ${JSON.stringify(body.answer)}, request_id ${body.request_id}`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
EOF

log "SIGTERM: the app drains and exits"
kill -TERM "$app_pid"
status=0
for _ in $(seq 1 100); do
  kill -0 "$app_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$app_pid" 2>/dev/null && fail "the app was still running 10 s after SIGTERM"
wait "$app_pid" || status=$?
app_pid=""
# Nest re-raises the signal once its shutdown hooks ran: 143 (128 + SIGTERM) is a clean stop, as is 0.
[ "$status" = 0 ] || [ "$status" = 143 ] || fail "the app exited with status $status after SIGTERM"

printf 'build-like-image: OK\n'
