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
    counts = stage.run(table, predictions.path, parse_profile(config))
    for name in ("images", "digits_kept", f"dropped_{stage.NESTED}", f"dropped_{stage.LOW_PROB}"):
        summary.log_metric(name, counts[name])
