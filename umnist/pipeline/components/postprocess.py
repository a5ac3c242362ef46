from typing import List

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from umnist.pipeline.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def postprocess(detections: Input[List[Dataset]], predictions: Output[Dataset], summary: Output[Metrics],
                config: str):
    """Collect the parts' detections, drop nested and unsure digits, sum per image (submission.csv).
    `config`: the run's resolved profile as YAML text (umnist.config.profile_text)."""
    from umnist import postprocess as stage
    from umnist import steps
    from umnist.config import parse_profile

    table = steps.concat_detections([part.path for part in detections])
    filtered = stage.run(table, predictions.path, parse_profile(config))
    reasons = filtered["drop_reason"].value_counts()
    summary.log_metric("images", int(filtered["image_id"].nunique()))
    summary.log_metric("digits_kept", int(filtered["kept"].sum()))
    for reason in (stage.NESTED, stage.LOW_PROB):
        summary.log_metric(f"dropped_{reason}", int(reasons.get(reason, 0)))
