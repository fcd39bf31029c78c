#!/usr/bin/env bash
# Prints the summary of tests skipped for missing test data (the skip helper
# in recognizer/recognizertest appends one line per skip to LOG).
log=${1:-var/test-skips.log}
if [ ! -s "$log" ]; then
  echo "test summary: no test skipped for missing test data"
  exit 0
fi
n=$(wc -l <"$log")
echo "test summary: $n test(s) skipped for missing test data (put ../shared/testdata beside the repository to run them):"
sort "$log" | sed 's/^/  /'
echo "by file:"
sed -n 's/^.*: needs \([^ ]*\) (.*$/\1/p' "$log" | sort | uniq -c | sort -rn | sed 's/^/  /'
