"""`umnist synth`: synthetic detection scenes (YOLO layout) and the classifier crop set."""

from umnist import config
from umnist.synth.config import SynthConfig


def register(sub) -> None:
    p = sub.add_parser("synth", help="generate detection scenes (YOLO layout) and 128x128 digit crops")
    p.add_argument("--out", required=True, help="output directory (replaced atomically when complete)")
    p.add_argument("--mnist", help="MNIST idx directory (default: $UMNIST_MNIST_DIR)")
    p.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    config.add_arguments(p, SynthConfig)
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from umnist.synth import run

    manifest = run(args.mnist, args.out, args.profile, workers=args.workers, progress=not args.no_progress,
                   **config.overrides_from_args(args))
    counts = ", ".join(f"{split} {n['scenes']} scenes, {n['digits']} digits, {n['crops']} crops"
                       for split, n in manifest["splits"].items())
    print(f"synthetic data written to {args.out}: {counts} (see manifest.json)")
    return 0
