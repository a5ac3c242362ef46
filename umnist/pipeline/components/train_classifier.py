from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from umnist.pipeline.images import CUDA_IMAGE


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def train_classifier(crops: Input[Dataset], model: Output[Model], summary: Output[Metrics],
                     confusion: Output[ClassificationMetrics], config: str, weights: str = "",
                     init_weights: str = "") -> str:
    """The digit re-classifier on the crops; `model` holds its weights (umnist.layout), metrics.csv and
    confusion.csv, also logged as `confusion` (10x10 on the validation crops, best weights) for the Kubeflow UI.

    `config`: the run's resolved profile as YAML text (umnist.config.profile_text).
    `weights` (a path or object-store URI of a classifier best.pt) skips training: it becomes the model.
    `init_weights` starts training from them (e.g. ImageNet weights; nothing downloads at run time).
    Returns why training stopped (summary.json's stop_reason; "supplied" for given weights), for score's
    run summary. A retried step resumes from the last checkpoint its earlier attempt mirrored (umnist.attempts).
    """
    import tempfile
    from pathlib import Path

    from umnist import attempts, hardware, layout, run_summary, steps, storage
    from umnist.config import parse_profile

    if weights:
        return steps.supply_weights("classifier", weights, model)
    from umnist import classifier

    hardware.check_gpu()
    out = Path(model.path)
    resume = attempts.restore(model.uri, out, needs=layout.checkpoint("classifier", out))
    with tempfile.TemporaryDirectory(prefix="umnist-weights-") as work, attempts.Mirror(model.uri, out):
        classifier.run(crops.path, out, parse_profile(config), resume=resume,
                       init_weights=storage.fetch(init_weights, work) if init_weights and not resume else None)
    for name, value in steps.last_epoch(out / "metrics.csv").items():
        summary.log_metric(name, value)
    confusion.log_confusion_matrix(*steps.read_confusion(out / "confusion.csv"))
    return run_summary.stop_reason(out / "summary.json")
