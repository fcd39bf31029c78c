#!/usr/bin/env bash
# API latency with 200 concurrent clients against a real bin/kioskd on
# defaults (200 users in the store), two ways:
#   closed loop: wrk -c200, every client sends its next request as soon as
#     the last one returns; on a 2-core machine wrk and kioskd share the
#     cores, so this measures saturation (mean latency = 200 / throughput);
#   paced: hey -c200 -q Q, each of the 200 clients sending Q requests a
#     second (200*Q offered); hey's clients tick in step, so each tick is a
#     burst of 200 requests at the same instant;
#   think time: wrk -c200 with scripts/wrk_think.lua, each client waiting a
#     random 0-T ms before each request (T = 200, 40, 20, 10: from about
#     2,000 requests a second up to saturation), at independent moments:
#     the latency 200 polling clients see as their load grows.
# Usage: scripts/api_bench.sh [seconds per run, default 15] [Q, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
q=${2:-10}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v hey >/dev/null || need+=(hey)
if ((${#need[@]})); then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get install -y -q "${need[@]}" >/dev/null
fi
make -s build

dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
export KIOSK_DATA_DIR=$dir KIOSK_API_ADDR=127.0.0.1:$port KIOSK_LOG_LEVEL=warn
email=bench.tech@example.org
pw="api-bench technician 9"
echo "$pw" | bin/kioskd admin add --email $email --role technician >/dev/null
bin/kioskd >"$dir/kioskd.log" 2>&1 &
pid=$!
base=http://127.0.0.1:$port
for _ in $(seq 100); do curl -fs $base/readyz >/dev/null && break; sleep 0.2; done
token=$(curl -fs -H 'Content-Type: application/json' -d "{\"email\":\"$email\",\"password\":\"$pw\"}" $base/api/v1/auth/login |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for i in $(seq -w 1 200); do
	curl -fs -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		-d "{\"external_id\":\"B$i\",\"email\":\"bench$i@example.org\",\"full_name\":\"Bench User $i\",\"role\":\"trainee\"}" $base/api/v1/users
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
for ep in /api/v1/status '/api/v1/users?limit=50&offset=100'; do
	echo "== closed loop: wrk -t2 -c200 -d${secs}s $ep"
	wrk -t2 -c200 -d${secs}s --latency -H "Authorization: Bearer $token" "$base$ep" |
		grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors'
	echo "== paced: hey -c 200 -q $q -z ${secs}s $ep ($((200 * q)) req/s offered)"
	hey -c 200 -q "$q" -z "${secs}s" -H "Authorization: Bearer $token" "$base$ep" |
		grep -E 'Requests/sec|(50|90|99)% in|responses'
	for think in 200 40 20 10; do
		echo "== think time 0-${think} ms: wrk -t2 -c200 -d${secs}s -s scripts/wrk_think.lua $ep -- 0 $think"
		wrk -t2 -c200 -d${secs}s --latency -s scripts/wrk_think.lua -H "Authorization: Bearer $token" "$base$ep" -- 0 "$think" |
			grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors'
	done
done
