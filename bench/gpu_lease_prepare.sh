#!/usr/bin/env bash
# Usage: bench/gpu_lease_prepare.sh [MNIST_DIR]
# Prepares what travels to a borrowed GPU machine (README "GPU budget"), in the ignored folder .lease/:
# .lease/wheels, the wheels of bench/gpu_lease_wheels.txt for Python 3.12 on manylinux x86_64 (that machine has
# no network), and .lease/mnist, the MNIST files (MNIST_DIR, else $UMNIST_MNIST_DIR, else ../shared/data/mnist).
# Prints what travels and the device command; run it there with `bash bench/gpu_lease.sh`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
python="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
mnist="${1:-${UMNIST_MNIST_DIR:-../shared/data/mnist}}"
lease=.lease
# The device tool's limit on what travels: the working tree and the carried paths together.
limit_mib=64

files=$(ls "$mnist"/*-idx[13]-ubyte* 2>/dev/null) || { echo "gpu_lease_prepare: no MNIST idx files in $mnist" >&2; exit 1; }
rm -rf "$lease/wheels" "$lease/mnist"
mkdir -p "$lease/wheels" "$lease/mnist"
# shellcheck disable=SC2086  # one path per line
cp $files "$lease/mnist/"

# pip matches manylinux tags exactly: name every glibc from 2.17 (manylinux2014) to the machine's 2.39.
platforms=(--platform manylinux1_x86_64 --platform manylinux2014_x86_64)
for n in $(seq 17 39); do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$lease/wheels" -r bench/gpu_lease_wheels.txt

wheels=$(ls "$lease/wheels" | wc -l)
expected=$(grep -cE '^[a-zA-Z]' bench/gpu_lease_wheels.txt)
[ "$wheels" -eq "$expected" ] || { echo "gpu_lease_prepare: $wheels wheels for $expected requirements" >&2; exit 1; }
tree_kib=$(git ls-files -coz --exclude-standard | du -ck --files0-from=- | tail -1 | cut -f1)
total_kib=$(( tree_kib + $(du -sk "$lease" | cut -f1) ))
echo "wheels: $wheels ($(du -sh "$lease/wheels" | cut -f1)), mnist: $(du -sh "$lease/mnist" | cut -f1)"
echo "travels: $(( total_kib / 1024 )) MiB of $limit_mib (tree $(( tree_kib / 1024 )) MiB + .lease)"
[ $(( total_kib / 1024 )) -lt "$limit_mib" ] || { echo "gpu_lease_prepare: over $limit_mib MiB" >&2; exit 1; }
echo 'device run: command "bash bench/gpu_lease.sh", carry [".lease"], timeout_s 600'
