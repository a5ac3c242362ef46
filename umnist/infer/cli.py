"""`umnist infer`: detect and re-classify the digits of every image into detections.parquet."""

from pathlib import Path

from umnist import config
from umnist.infer.config import InferConfig
from umnist.tables import DETECTIONS_FILE


def add_inputs(p) -> None:
    """The flags infer and predict share: images, the two models, the output folder, resume, progress."""
    p.add_argument("--images", required=True, help="directory or object-store prefix of {id}.jpeg/.jpg/.png")
    p.add_argument("--detector", required=True, help="detector weights (YOLOv5 checkpoint, e.g. weights/best.pt)")
    p.add_argument("--classifier", required=True, help="classifier weights (best.pt of train-classifier)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--resume", action="store_true", help="keep the finished chunk files of a killed run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub) -> None:
    p = sub.add_parser("infer", help="detect and re-classify the digits of every image: detections.parquet")
    add_inputs(p)
    config.add_arguments(p, InferConfig, recorded="the detector's weights")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from umnist.infer import run

    summary = run(args.images, args.detector, args.classifier, args.out, args.profile, resume=args.resume,
                  progress=not args.no_progress, **config.overrides_from_args(args))
    skipped = len(summary["skipped_images"])
    print(f"{summary['images']} images, {summary['detections']} detections"
          + (f", {skipped} unreadable image(s) skipped (error column, sum 0)" if skipped else "")
          + f"; wrote {Path(args.out) / DETECTIONS_FILE}")
    return 0
