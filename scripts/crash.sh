#!/usr/bin/env bash
# crash.sh runs the kill -9 campaign as JOBS independent campaigns (each with
# its own data dir, broker and random stream) that share ROUNDS between them,
# then the disk-full and read-only faults. Rounds mostly wait for kioskd to
# start and work, so parallel campaigns finish sooner on the same cores.
set -euo pipefail
rounds=${ROUNDS:-1000}
jobs=${JOBS:-2}
go=${GO:-go}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
$go test -c -o "$out/kioskd.test" ./cmd/kioskd/
per=$(( (rounds + jobs - 1) / jobs ))
pids=()
for i in $(seq 1 "$jobs"); do
	(cd cmd/kioskd && KIOSK_CRASH_ROUNDS=$per KIOSK_CRASH_SEED=$((76 + i)) \
		"$out/kioskd.test" -test.timeout 240m -test.v -test.run '^TestCrashCampaign$') >"$out/campaign-$i.log" 2>&1 &
	pids+=($!)
done
rc=0
for i in "${!pids[@]}"; do
	if ! wait "${pids[$i]}"; then rc=1; fi
	echo "== campaign $((i + 1)) of $jobs ($per rounds, seed $((77 + i)))"
	grep -E '^(=== RUN|--- |\s+crash_test.go:.*(rounds:|crash campaign:)|FAIL|ok|PASS)' "$out/campaign-$((i + 1)).log" || true
	if [ $rc -ne 0 ]; then tail -50 "$out/campaign-$((i + 1)).log"; fi
done
(cd cmd/kioskd && "$out/kioskd.test" -test.timeout 30m -test.v -test.run '^TestCrash(DiskFull|ReadOnly)$') || rc=1
exit $rc
