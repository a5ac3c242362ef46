"""`umnist postprocess`: drop nested and unsure digits, sum the rest per image (submission.csv)."""

import sys
from pathlib import Path

from umnist import config
from umnist.postprocess.config import PostprocessConfig
from umnist.tables import LOW_PROB, NESTED, SUBMISSION_FILE


def register(sub) -> None:
    p = sub.add_parser("postprocess", help="drop nested and unsure digits; write submission.csv")
    p.add_argument("--detections", required=True,
                   help="the output folder of `umnist infer`, or its detections.parquet")
    p.add_argument("--out", required=True, help="output directory")
    config.add_arguments(p, PostprocessConfig, recorded="the config.yaml infer wrote beside the detections")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from umnist.postprocess import run

    summary = run(args.detections, args.out, args.profile, **config.overrides_from_args(args))
    print(f"{summary['images']} images, {summary['digits_kept']} digits kept; dropped: "
          f"{summary[f'dropped_{NESTED}']} nested, {summary[f'dropped_{LOW_PROB}']} below the floor; "
          f"wrote {Path(args.out) / SUBMISSION_FILE}")
    skipped = summary["skipped_images"]
    if skipped:
        print(f"{len(skipped)} image(s) were unreadable, skipped by infer and given sum 0: "
              + ", ".join(list(skipped)[:5]) + (", ..." if len(skipped) > 5 else ""), file=sys.stderr)
    return 0
