#!/usr/bin/env bash
# Runs Schemathesis (property-based API fuzzing from docs/openapi.yaml)
# against a real kioskd local API and fails when any response is a 5xx or
# does not conform to the document.
#
# Installs schemathesis into var/venv-st (pip) on first use; starts the
# server with `go test ./localapi -run TestServeForSchemathesis` (real bbolt
# store, dlib encoder, matcher; an admin token) and stops it at the end.
#
# Usage: scripts/schemathesis.sh [extra schemathesis args]
# Env:   ST_MAX_EXAMPLES (default 30), ST_CHECKS (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=var/venv-st
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip --disable-pip-version-check --quiet install 'schemathesis>=4,<5'
fi
tmp=$(mktemp -d)
ready="$tmp/ready"
KIOSK_ST_SERVE="$ready" go test ./localapi -run '^TestServeForSchemathesis$' -count=1 -timeout 30m -v >"$tmp/server.log" 2>&1 &
server=$!
cleanup() {
  # go test runs the test binary as its child: stop the child first (by its
  # parent's pid), then go itself.
  pkill -TERM -P "$server" 2>/dev/null || true
  sleep 1
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  echo "server log: $tmp/server.log"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  [ -s "$ready" ] && break
  if ! kill -0 "$server" 2>/dev/null; then cat "$tmp/server.log"; exit 1; fi
  sleep 0.5
done
read -r url token <"$ready"
echo "schemathesis: against $url"
"$venv/bin/st" run docs/openapi.yaml \
  --url "$url" \
  --header "Authorization: Bearer $token" \
  --checks "${ST_CHECKS:-all}" \
  --max-examples "${ST_MAX_EXAMPLES:-30}" \
  --exclude-path-regex '^/(kiosk/events|kiosk/preview.mjpeg)$' \
  --exclude-path '/api/v1/auth/logout' \
  "$@"
