from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from umnist.pipeline.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def synth(detection: Output[Dataset], crops: Output[Dataset], summary: Output[Metrics], config: str,
          mnist: str = "", workers: int = 0):
    """Synthetic scenes (YOLO layout, for train-detector) and digit crops (for train-classifier).

    `config`: the run's resolved profile as YAML text (umnist.config.profile_text); `mnist`: directory or
    object-store prefix of the MNIST idx files ("" = $UMNIST_MNIST_DIR); `workers`: 0 = one per CPU.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from umnist import steps, storage
    from umnist import synth as stage
    from umnist.config import parse_profile

    with tempfile.TemporaryDirectory(prefix="umnist-synth-") as work:
        mnist_dir = storage.fetch(mnist, work, require_marker=False) if mnist else None
        out = Path(work) / "data"
        manifest = stage.run(mnist_dir, out, parse_profile(config), workers=workers or None, progress=False)
        steps.copy_tree(out / "detection", detection.path)
        steps.copy_tree(out / "crops", crops.path)
        for name in ("manifest.json", "config.yaml"):
            shutil.copyfile(out / name, Path(detection.path) / name)
    for split, counts in manifest["splits"].items():
        for key in ("scenes", "empty_scenes", "digits", "crops"):
            summary.log_metric(f"{split}_{key}", counts[key])
