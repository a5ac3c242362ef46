from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Output

from umnist.pipeline.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def score(predictions: Input[Dataset], labels: str, images: str, scores: Output[Dataset],
          summary: Output[Metrics], confusion: Output[ClassificationMetrics], report: Output[HTML],
          run_summary: Output[Markdown], boxes: str = "", detector_stop: str = "", classifier_stop: str = "",
          gallery_limit: int = 200, subset: bool = False):
    """Accuracy ladder, per-sum accuracy, 28x28 confusion and (with `boxes`, a CSV path or URI) detection
    recall and precision, overall and per digit size (all logged in `summary`); the report shows the wrong
    images with their missed digits, of which only those are fetched from `images`.

    `labels`, `images` and `boxes` are paths or URIs read with umnist.storage, not artifacts: KFP's launcher
    would copy every image into the pod. `run_summary`: the ladder, recall (by size when reported) and the
    trainings' stop reasons (`*_stop`) in Markdown, for the UI's run comparison."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from umnist import run_summary as summaries
    from umnist import score as stage
    from umnist import steps, storage

    with tempfile.TemporaryDirectory(prefix="umnist-score-") as work:
        labels_csv = storage.fetch(labels, work, require_marker=False)
        boxes_csv = storage.fetch(boxes, Path(work) / "boxes", require_marker=False) if boxes else None
        wrong = steps.wrong_ids(predictions.path, labels_csv)[:gallery_limit]
        gallery = steps.fetch_named(images, wrong, Path(work) / "gallery")
        metrics = stage.run(predictions.path, labels_csv, scores.path, boxes=boxes_csv, images=gallery,
                            gallery_limit=gallery_limit, subset=subset)
        shutil.copyfile(Path(scores.path) / "report.html", report.path)
    for name, value in steps.score_summary(metrics).items():
        summary.log_metric(name, value)
    sums = [str(s) for s in range(len(metrics["confusion"]))]
    confusion.log_confusion_matrix(sums, metrics["confusion"])
    scores.metadata["sum_accuracy"] = json.dumps(metrics["sum_accuracy"])
    stops = {"detector": detector_stop, "classifier": classifier_stop}
    Path(run_summary.path).write_text(summaries.markdown(metrics, {k: v for k, v in stops.items() if v}))
