"""`umnist train-detector`: train YOLOv5 on the synth stage's scenes."""

from umnist import config
from umnist.detector.config import DetectorConfig


def register(sub) -> None:
    p = sub.add_parser("train-detector", help="train the YOLOv5 digit detector on synthetic scenes")
    p.add_argument("--data", required=True, help="the synth stage's output directory")
    p.add_argument("--out", required=True, help="output directory: weights/, metrics.csv, config.yaml")
    p.add_argument("--weights", help="a YOLOv5 checkpoint to start from (default: from scratch)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from weights/last.pt with its saved config")
    config.add_arguments(p, DetectorConfig)
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from umnist.detector import run

    summary = run(args.data, args.out, args.profile, weights=args.weights, resume=args.resume,
                  **config.overrides_from_args(args))
    print(f"detector trained in {args.out}: {summary['epochs_completed']} epochs, stopped by {summary['stop_reason']}")
    return 0
