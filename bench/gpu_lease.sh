#!/usr/bin/env bash
# Usage: bash bench/gpu_lease.sh [--rehearsal] [gpu_check options]
# The one command to run on a borrowed GPU machine, after bench/gpu_lease_prepare.sh here (README "GPU budget"):
# checks that torch computes on a CUDA GPU, installs the carried wheels (.lease/wheels) into a temporary folder,
# imports everything the check needs, runs bench/gpu_check.sh on .lease/mnist in the time the command has left,
# checks that both trainers ran on the GPU, and leaves in $OUT (default runs/gpu-lease): gpu_check.json,
# lease.log, logs.tar.gz (stage logs, summaries, metrics), and report.html and both best weights when small.
# --rehearsal: the same path without a GPU, at the check's CPU toy sizes (tiny profile, 6 small held-out scenes).
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
rehearsal=0
if [ "${1:-}" = --rehearsal ]; then rehearsal=1; shift; fi
out="${OUT:-runs/gpu-lease}"
python="${PYTHON:-python3}"  # the machine's own Python, with its torch
# The device run's timeout_s (the tool's most); in a rehearsal, what the check's 180 s toy budget needs.
limit_s="${LEASE_LIMIT_S:-$([ $rehearsal = 1 ] && echo 290 || echo 600)}"
# Kept back from the check: its stages' stop (up to 10 s past a deadline), its exit, the copy into $OUT, slack.
reserve_s="${LEASE_RESERVE_S:-75}"
site="${TMPDIR:-/tmp}/umnist-lease-site"
work="${TMPDIR:-/tmp}/umnist-gpu-check"
max_back=$((16 * 1024 * 1024))  # the most one file may weigh to come back from the device
if [ $rehearsal = 1 ]; then
    check_args=(--profile tiny --heldout 6 --heldout-size 256)
else
    check_args=(--profile gpu-lease)
fi

fail() { echo "gpu_lease: $*" >&2; exit 1; }

steps() {
    if [ $rehearsal = 0 ]; then
        timeout 120 "$python" - <<'EOF' || fail "torch cannot compute on a CUDA GPU here (--rehearsal runs without)"
import torch

assert torch.cuda.is_available(), f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"
a = torch.randn(4096, 4096, device="cuda")
print(f"gpu: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"a 4096^2 matmul ran ({float((a @ a).norm()):.0f})")
EOF
    else
        export CUDA_VISIBLE_DEVICES=""
    fi
    compgen -G ".lease/wheels/*.whl" >/dev/null || fail "no .lease/wheels: run bench/gpu_lease_prepare.sh, carry .lease"
    rm -rf "$site"
    timeout 180 "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
        .lease/wheels/*.whl || fail "installing the carried wheels failed"
    export PYTHONPATH="$repo:$site${PYTHONPATH:+:$PYTHONPATH}"
    timeout 180 "$python" -c "
import importlib.metadata as md
from umnist import yolo_compat
yolo_compat.yolov5_train()
import timm, umnist.classifier.augment, umnist.cli, umnist.predict
print('imports ok:', ', '.join(f'{d} {md.version(d)}' for d in ('torch', 'torchvision', 'numpy', 'timm', 'yolov5',
      'ultralytics', 'albumentations', 'opencv-python-headless')))" || fail "an import the check needs failed (above)"

    budget=$(( limit_s - SECONDS - reserve_s ))
    [ "$budget" -ge 60 ] || fail "only ${budget} s left for the check"
    echo "gpu_lease: check budget ${budget} s after $SECONDS s of preparation"
    PYTHON="$python" timeout -k 10 $(( budget + 30 )) bench/gpu_check.sh "${budget}s" --out "$work" \
        --mnist "$repo/.lease/mnist" "${check_args[@]}" "$@"
    status=$?
    [ $rehearsal = 1 ] || "$python" - "$work/gpu_check.json" <<'EOF' || status=1
import json, pathlib, sys

path = pathlib.Path(sys.argv[1])
report = json.loads(path.read_text()) if path.is_file() else {}
for trainer in ("detector", "classifier"):
    device = (report.get(trainer) or {}).get("device", "nowhere (no summary)")
    if "cuda" not in device:
        sys.exit(f"gpu_lease: the {trainer} trained on {device}, not on the GPU")
print("gpu used: both trainers on cuda; sampled", report.get("gpu_sampled"))
EOF
    return $status
}

collect() {
    cp "$work/gpu_check.json" "$out/" 2>/dev/null || echo "gpu_lease: no gpu_check.json"
    (cd "$work" 2>/dev/null && find logs detector classifier predict -maxdepth 1 -type f \
        \( -name '*.log' -o -name '*.json' -o -name '*.csv' -o -name '*.yaml' \) -size -8M -print0 2>/dev/null |
        tar czf - --null -T -) > "$out/logs.tar.gz"
    for pair in predict/report.html:report.html detector/weights/best.pt:detector-best.pt \
        classifier/best.pt:classifier-best.pt; do
        from="$work/${pair%%:*}"
        if [ -f "$from" ] && [ "$(stat -c %s "$from")" -le "$max_back" ]; then cp "$from" "$out/${pair##*:}"; fi
    done
    ls -l "$out"
}

main() {
    rm -rf "$work"  # no figures of an earlier run can pass for this one's
    ( steps "$@" )
    local status=$?
    collect
    echo "gpu_lease: exit $status after $SECONDS s"
    return $status
}

mkdir -p "$out"
main "$@" 2>&1 | tee "$out/lease.log"
exit "${PIPESTATUS[0]}"
