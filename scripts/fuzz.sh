#!/usr/bin/env bash
# Runs every fuzz target of the module for a while each (default 60s):
#   scripts/fuzz.sh 5m
# Targets are found by name (func FuzzX(f *testing.F)); new ones join automatically.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
fail=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/.*func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"$line")
  pkg=$(dirname "$file")
  echo "fuzz: $pkg $name for $t"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" "$pkg"; then
    echo "fuzz: $pkg $name FAILED (the crasher is in $pkg/testdata/fuzz/$name)" >&2
    fail=1
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . | grep -v '^./var/')
exit $fail
