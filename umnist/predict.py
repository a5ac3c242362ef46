"""`umnist predict`: the whole prediction in one command — infer, postprocess and (with labels) score, the last
three steps of umnist.flow, in one output folder.

    umnist predict --detector D --classifier C --images DIR --out OUT [--labels train.csv] [--boxes boxes.csv]

The models run at the input sizes their checkpoints record, whatever the profile (which sets the thresholds,
the detector's scales, the post-processing and the run settings); `--img-size` overrides the detector's, with a
warning. Without `--profile`, the profile is the one the detector's weights record (umnist's trainer writes
its detector, infer and postprocess sections into them), so a model runs as it was trained to run.

Writes in OUT: detections.parquet, detections_filtered.parquet, submission.csv, config.yaml and, with labels,
metrics.json and report.html.
"""

import os
from pathlib import Path

from umnist import config, infer, postprocess, score, storage
from umnist.infer.cli import add_inputs
from umnist.tables import SUBMISSION_FILE


def run(images: str | os.PathLike, detector: str | os.PathLike, classifier: str | os.PathLike,
        out: str | os.PathLike, profile: str | os.PathLike | dict | None = None, *,
        labels: str | os.PathLike | None = None, boxes: str | os.PathLike | None = None, subset: bool = False,
        resume: bool = False, progress: bool = True, **infer_overrides) -> dict:
    """Run the three stages into `out` (inputs as infer takes them); return their summaries: {"infer": ...,
    "postprocess": ..., "score": the metrics, or None without `labels`}. `profile` None: the settings the
    detector's weights record (`infer.model_profile`)."""
    out = Path(out)
    if profile is None:
        profile = infer.model_profile(detector)
    summary = {"infer": infer.run(images, detector, classifier, out, profile, resume=resume, progress=progress,
                                  **infer_overrides),
               "postprocess": postprocess.run(out, out, profile), "score": None}
    if labels is not None:
        local_images = None if storage.is_remote(images) else images
        summary["score"] = score.run(out, labels, out, boxes=boxes, images=local_images, subset=subset)
    return summary


def register(sub) -> None:
    p = sub.add_parser("predict", help="infer + postprocess (+ score with --labels): submission.csv, report.html")
    add_inputs(p)
    p.add_argument("--labels", help="CSV id,digit_sum to score against (the competition's train.csv)")
    p.add_argument("--boxes", help="optional ground-truth boxes CSV id,digit,x1,y1,x2,y2 (needs --labels)")
    p.add_argument("--subset", action="store_true", help="the labels may hold more ids than were predicted")
    config.add_arguments(p, infer.InferConfig, recorded="the detector's weights")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    summary = run(args.images, args.detector, args.classifier, args.out, args.profile, labels=args.labels,
                  boxes=args.boxes, subset=args.subset, resume=args.resume, progress=not args.no_progress,
                  **config.overrides_from_args(args))
    out, metrics = Path(args.out), summary["score"]
    print(f"wrote {out / SUBMISSION_FILE}")
    if metrics is not None:
        print(f"sum accuracy on {metrics['images']} images: {score.ladder_text(metrics)}")
        print(f"report: {out / 'report.html'}")
    return 0
