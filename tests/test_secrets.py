"""Secrets and safe loading.

One run with known fake credentials in the environment (the SeaweedFS test server's keys): the synth
component reading MNIST from the store, `umnist predict` on images in the store, a wrong-secret failure and
the pipeline compiled. Neither key may appear in anything it leaves: stdout, stderr, the error message, every
file written (config.yaml, manifest.json, metrics.json, report.html, ...) or the pipeline YAML.
And every `torch.load` in the package is weights-only, except inside `yolo_compat.trusted_checkpoints`.
"""

import ast
from pathlib import Path

import pytest
from kfp.dsl import Dataset, Metrics

from tests.conftest import tiny_config
from tests.s3_server import ACCESS_KEY, SECRET_KEY
from umnist import storage
from umnist.cli import main
from umnist.pipeline import components, graph

REPO = Path(__file__).resolve().parent.parent
WRONG_SECRET = "umnist-wrong-secret-4e1d0a"


@pytest.mark.slow
def test_no_credential_in_outputs_logs_errors_or_the_pipeline(s3_uri, mnist_dir, tiny_data, tiny_detector,
                                                              tiny_classifier, tmp_path, monkeypatch, capfd):
    storage.upload(mnist_dir, f"{s3_uri}/mnist")
    synth = tmp_path / "synth"
    components.synth.python_func(detection=Dataset(name="d", uri=str(synth / "detection")),
                                 crops=Dataset(name="c", uri=str(synth / "crops")),
                                 summary=Metrics(name="s", uri=str(synth / "summary")), mnist=f"{s3_uri}/mnist",
                                 config=tiny_config(synth={"scenes_train": 2, "scenes_val": 1, "empty_train": 0,
                                                           "empty_val": 0}), workers=1)
    assert (synth / "detection" / "manifest.json").is_file()

    scenes = tiny_data / "detection" / "images" / "val"
    storage.upload(scenes, f"{s3_uri}/images")
    labels = tmp_path / "train.csv"
    labels.write_text("id,digit_sum\n" + "".join(f"{p.stem},0\n" for p in sorted(scenes.glob("*.jpg"))))
    predicted = tmp_path / "predicted"
    assert main(["predict", "--detector", str(tiny_detector / "weights" / "best.pt"), "--classifier",
                 str(tiny_classifier[0] / "best.pt"), "--images", f"{s3_uri}/images", "--labels", str(labels),
                 "--out", str(predicted)]) == 0
    assert {"config.yaml", "metrics.json", "report.html", "submission.csv"} <= {p.name for p in predicted.iterdir()}

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
    assert main(["infer", "--images", f"{s3_uri}/images", "--detector", "d.pt", "--classifier", "c.pt",
                 "--out", str(tmp_path / "refused")]) == 2
    logs = capfd.readouterr()
    assert "access refused" in logs.err

    graph.compile_pipeline(str(tmp_path / "umnist-pipeline.yaml"))
    texts = {"stdout": logs.out, "stderr": logs.err}
    texts |= {str(p): p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()}
    assert {str(predicted / "config.yaml"), str(synth / "detection" / "manifest.json")} <= set(texts)
    for secret in (SECRET_KEY, ACCESS_KEY, WRONG_SECRET):
        leaks = [name for name, text in texts.items() if secret in text]
        assert not leaks, f"{secret!r} found in {leaks}"


def trusted_lines(tree: ast.AST) -> set[int]:
    """Lines inside `with ...trusted_checkpoints(...)` blocks."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call)
                and ast.unparse(item.context_expr.func).endswith("trusted_checkpoints") for item in node.items):
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def torch_loads(path: Path) -> list[tuple[int, bool]]:
    """(line, safe) for each `torch.load(...)` call: safe = weights_only=True or in a trusted block."""
    tree = ast.parse(path.read_text())
    trusted = trusted_lines(tree)
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
            weights_only = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                               for k in node.keywords)
            calls.append((node.lineno, weights_only or node.lineno in trusted))
    return calls


def test_every_torch_load_is_weights_only_or_a_trusted_yolov5_checkpoint():
    found = {f"{path.relative_to(REPO)}:{line}": safe
             for folder in ("umnist", "components") for path in sorted((REPO / folder).rglob("*.py"))
             for line, safe in torch_loads(path)}
    assert len(found) >= 3  # the classifier's weights, the detector's checkpoints, the detector's finishing
    unsafe = [where for where, safe in found.items() if not safe]
    assert not unsafe, f"torch.load without weights_only=True outside yolo_compat.trusted_checkpoints: {unsafe}"


@pytest.mark.parametrize("source, safe", [
    ("torch.load(p)", False),
    ("torch.load(p, weights_only=False)", False),
    ("torch.load(p, map_location='cpu', weights_only=True)", True),
    ("with yolo_compat.trusted_checkpoints(p):\n    torch.load(p)", True),
    ("with yolo_compat.trusted_checkpoints(p):\n    pass\ntorch.load(p)", False),
])
def test_the_audit_tells_safe_from_unsafe(tmp_path, source, safe):
    path = tmp_path / "m.py"
    path.write_text(source + "\n")
    assert [ok for _, ok in torch_loads(path)] == [safe]
