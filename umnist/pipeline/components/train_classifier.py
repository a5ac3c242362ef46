from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from umnist.pipeline.images import CUDA_IMAGE


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def train_classifier(crops: Input[Dataset], model: Output[Model], summary: Output[Metrics],
                     confusion: Output[ClassificationMetrics],
                     profile: str = "tiny", weights: str = "", init_weights: str = "",
                     epochs: int = -1, overrides: dict = {}) -> str:
    """The digit re-classifier on the crops; `model` holds best.pt, metrics.csv and confusion.csv, also logged
    as `confusion` (10x10 on the validation crops, best weights) for the Kubeflow UI.

    `weights` (a path or object-store URI of a classifier best.pt) skips training: it becomes the model.
    `init_weights` starts training from them (e.g. ImageNet weights; nothing downloads at run time).
    Returns why training stopped (summary.json's stop_reason; "supplied" for given weights), for score's
    run summary. A retried step resumes from the last checkpoint its earlier attempt mirrored (umnist.attempts).
    """
    import shutil
    import tempfile
    from pathlib import Path

    from umnist import attempts, hardware, run_summary, steps, storage

    out = Path(model.path)
    with tempfile.TemporaryDirectory(prefix="umnist-weights-") as work:
        if weights:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(storage.fetch(weights, work), out / "best.pt")
            model.metadata["supplied"] = weights
            return "supplied"
        from umnist.classifier.train import train

        hardware.check_gpu()
        resume = attempts.restore(model.uri, out, needs="last.pt")
        with attempts.Mirror(model.uri, out):
            train(crops.path, out, profile, resume=resume,
                  init_weights=storage.fetch(init_weights, work) if init_weights and not resume else None,
                  **steps.given(overrides, epochs=epochs))
    for name, value in steps.last_epoch(out / "metrics.csv").items():
        summary.log_metric(name, value)
    confusion.log_confusion_matrix(*steps.read_confusion(out / "confusion.csv"))
    return run_summary.stop_reason(out / "summary.json")
