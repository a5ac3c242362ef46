from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from umnist.pipeline.images import CUDA_IMAGE


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def infer(images: str, detector: Input[Model], classifier: Input[Model], detections: Output[Dataset], config: str,
          part: int = 0, parts: int = 1):
    """Detect and classify the digits of part `part` of `parts` of the images; write detections.parquet.
    `config`: the run's resolved profile as YAML text (umnist.config.profile_text).

    `images` (a directory or shard set, local or an object-store URI) is a parameter, not an artifact: KFP's
    launcher would copy a whole artifact into every pod; umnist.storage fetches only this part's files or shards.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from umnist import hardware, layout, steps
    from umnist.config import parse_profile
    from umnist.tables import DETECTIONS_FILE, write_empty_detections

    hardware.check_gpu()
    with tempfile.TemporaryDirectory(prefix="umnist-infer-") as work:
        local = Path(work) / "images"
        if not steps.fetch_part(images, part, parts, local):
            write_empty_detections(detections.path)
            return
        from umnist import infer as stage

        out = Path(work) / "out"
        stage.run(local, layout.weights("detector", detector.path), layout.weights("classifier", classifier.path),
                  out, parse_profile(config), progress=False)
        shutil.copyfile(out / DETECTIONS_FILE, detections.path)
