"""`umnist score`: the accuracy of the predicted sums (and boxes); metrics.json and report.html."""

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("score", help="accuracy of the predicted sums; metrics.json and report.html")
    p.add_argument("--predictions", required=True, help="output directory of `umnist postprocess`")
    p.add_argument("--labels", required=True, help="CSV id,digit_sum (the competition's train.csv)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--boxes", help="optional ground-truth boxes CSV id,digit,x1,y1,x2,y2")
    p.add_argument("--images", help="directory of the images ({id}.jpeg/.jpg/.png) for the report's gallery")
    p.add_argument("--gallery-limit", type=int, default=200, help="most wrong images drawn in the report")
    p.add_argument("--subset", action="store_true", help="the labels may hold more ids than were predicted")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from umnist.score import ladder_text, run

    metrics = run(args.predictions, args.labels, args.out, boxes=args.boxes, images=args.images,
                  gallery_limit=args.gallery_limit, subset=args.subset)
    print(f"{metrics['images']} images: {ladder_text(metrics, 4)}; wrote {Path(args.out) / 'report.html'}")
    return 0
