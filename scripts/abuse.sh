#!/usr/bin/env bash
# make abuse: start bin/kioskd with the default configuration (a fresh data
# dir, no camera, no broker) on a free loopback port, run the full abuse
# campaign (localapi TestAbuse) against it, and stop it. The campaign asserts
# that kioskd keeps answering and that its peak RSS stays under 600 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/kioskd}
work=$(mktemp -d)
pid=""
cleanup() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		wait "$pid" || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/kioskd.yaml" <<YAML
device_id: abuse-kiosk
data_dir: $work/data
models:
  dir: ${KIOSK_MODELS_DIR_DEFAULT:-$(pwd)/var/models}
api:
  addr: 127.0.0.1:$port
  temp_dir: $work/tmp
jobs:
  backup_dir: $work/backups
YAML
email=abuse-admin@kiosk.test
password="abuse-campaign-$(date +%s)-kettle"
echo "$password" | "$BIN" admin -config "$work/kioskd.yaml" add --email "$email" --role admin >/dev/null
"$BIN" -config "$work/kioskd.yaml" >"$work/kioskd.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/kioskd.log"; exit 1; }
	sleep 0.2
done
echo "kioskd pid $pid on 127.0.0.1:$port; RSS at start: $(grep VmRSS /proc/$pid/status)"
status=0
KIOSK_ABUSE_URL="http://127.0.0.1:$port" KIOSK_ABUSE_PID=$pid KIOSK_ABUSE_EMAIL=$email KIOSK_ABUSE_PASSWORD=$password \
	go test -count=1 -timeout 30m -run '^TestAbuse$' -v ./localapi/ 2>&1 | grep -Ev '^(=== RUN|    helpers_test.go)' || status=$?
kill -0 "$pid" 2>/dev/null || { echo "kioskd died"; tail -50 "$work/kioskd.log"; exit 1; }
echo "kioskd log: $(wc -l <"$work/kioskd.log") lines, $(grep -c 'level=ERROR' "$work/kioskd.log" || true) errors"
exit $status
