#!/usr/bin/env bash
# Median wall time, over 10 runs, from process start to iqa_version() returning through dlopen.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --lib --quiet
exe=$(mktemp -d)/startup
cc -O2 -o "$exe" benches/startup.c -ldl
lib="$PWD/target/release/libiqa.so"
"$exe" "$lib" >/dev/null   # warm the page cache once
times=()
for _ in $(seq 10); do
  t0=$(date +%s%N); "$exe" "$lib" >/dev/null; t1=$(date +%s%N)
  times+=($(( (t1 - t0) / 1000 )))
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print (a[5]+a[6])/2}')
echo "runs (us): $(echo $sorted | tr '\n' ' ')"
echo "median process start -> iqa_version() via dlopen: $(awk -v m="$median" 'BEGIN {printf "%.1f ms", m/1000}')"
