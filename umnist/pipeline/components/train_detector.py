from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from umnist.pipeline.images import CUDA_IMAGE


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def train_detector(detection: Input[Dataset], model: Output[Model], summary: Output[Metrics],
                   profile: str = "tiny", weights: str = "", epochs: int = -1,
                   overrides: dict = {}) -> str:
    """YOLOv5 on the synthetic scenes; `model` holds weights/best.pt and metrics.csv.

    `weights` (a path or object-store URI of a YOLOv5 checkpoint) skips training: it becomes the model.
    Returns why training stopped (summary.json's stop_reason; "supplied" for given weights), for score's
    run summary. A retried step resumes from the last checkpoint its earlier attempt mirrored (umnist.attempts).
    """
    import shutil
    import tempfile
    from pathlib import Path

    from umnist import attempts, hardware, run_summary, steps, storage

    out = Path(model.path)
    if weights:
        with tempfile.TemporaryDirectory(prefix="umnist-weights-") as work:
            (out / "weights").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(storage.fetch(weights, work), out / "weights" / "best.pt")
        model.metadata["supplied"] = weights
        return "supplied"
    from umnist import detector

    hardware.check_gpu()
    resume = attempts.restore(model.uri, out, needs="weights/last.pt")
    with attempts.Mirror(model.uri, out):
        detector.train(detection.path, out, profile, resume=resume,
                       **steps.given(overrides, epochs=epochs, workers=steps.detector_workers(profile, overrides)))
    for name, value in steps.last_epoch(out / "metrics.csv").items():
        summary.log_metric(name, value)
    return run_summary.stop_reason(out / "summary.json")
