from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from umnist.pipeline.images import CUDA_IMAGE


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def train_detector(detection: Input[Dataset], model: Output[Model], summary: Output[Metrics], config: str,
                   weights: str = "") -> str:
    """YOLOv5 on the synthetic scenes; `model` holds its weights (umnist.layout) and metrics.csv.

    `config`: the run's resolved profile as YAML text (umnist.config.profile_text).
    `weights` (a path or object-store URI of a YOLOv5 checkpoint) skips training: it becomes the model.
    Returns why training stopped (summary.json's stop_reason; "supplied" for given weights), for score's
    run summary. A retried step resumes from the last checkpoint its earlier attempt mirrored (umnist.attempts).
    """
    from pathlib import Path

    from umnist import attempts, hardware, layout, run_summary, steps
    from umnist.config import parse_profile

    if weights:
        return steps.supply_weights("detector", weights, model)
    from umnist import detector

    hardware.check_gpu()
    out, profile = Path(model.path), parse_profile(config)
    resume = attempts.restore(model.uri, out, needs=layout.checkpoint("detector", out))
    with attempts.Mirror(model.uri, out):
        detector.run(detection.path, out, profile, resume=resume, workers=steps.detector_workers(profile))
    for name, value in steps.last_epoch(out / "metrics.csv").items():
        summary.log_metric(name, value)
    return run_summary.stop_reason(out / "summary.json")
