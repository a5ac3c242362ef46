"""`umnist train-classifier`: train the digit classifier on a synth crop set."""

from umnist import config
from umnist.classifier.config import ClassifierConfig


def register(sub) -> None:
    p = sub.add_parser("train-classifier", help="train the EfficientNetV2 digit classifier on a crop set")
    p.add_argument("--crops", required=True, help="the synth stage's crops/ folder (index.csv + shards)")
    p.add_argument("--out", required=True, help="output folder: best.pt, last.pt, metrics.csv, ...")
    p.add_argument("--init-weights", metavar="PATH",
                   help="start from these weights (.pt/.pth/.bin/.safetensors, e.g. timm's ImageNet file "
                        "for the arch); the classification head is replaced when its size differs")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from last.pt with its config.yaml (flags still override)")
    config.add_arguments(p, ClassifierConfig)
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from umnist.classifier import run

    summary = run(args.crops, args.out, args.profile, init_weights=args.init_weights, resume=args.resume,
                    **config.overrides_from_args(args))
    print(f"stopped ({summary['stop_reason']}) after {summary['epochs_done']}/{summary['epochs']} epochs; "
          f"best val accuracy {summary['best_val_accuracy']:.4f} at epoch {summary['best_epoch']}; "
          f"{summary['seconds']} s; weights in {args.out}/best.pt")
    return 0
