"""The yolov5 compatibility fixes: applied in a fresh process, and the full unpickler kept to named files."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from umnist import yolo_compat

REPO = Path(__file__).resolve().parent.parent

FRESH_PROCESS = """
import json, os, sys, cv2
os.environ.pop("OMP_NUM_THREADS", None)
cv2_threads = cv2.getNumThreads()
from umnist import yolo_compat
train = yolo_compat.yolov5_train()
import numpy as np
from PIL import ImageFont
config_dir = os.environ["YOLOV5_CONFIG_DIR"]
font = ImageFont.truetype(os.path.join(config_dir, "Arial.ttf"), 12)
from umnist.detector import read_yolo_checkpoint
original_layout = type(read_yolo_checkpoint(sys.argv[1])["model"]).__module__
print(json.dumps({
    "fonts": sorted(name for name in os.listdir(config_dir) if name.endswith(".ttf")),
    "trapz": float(np.trapz([1.0, 1.0], [0.0, 2.0])), "getsize": list(font.getsize("8")),
    "omp": os.environ.get("OMP_NUM_THREADS"), "cv2_threads_kept": cv2.getNumThreads() == cv2_threads,
    "offline": os.environ.get("YOLO_OFFLINE"), "amp_check": train.check_amp.__module__,
    "hub": train.attempt_download_from_hub("owner/name"),
    "original_layout": original_layout,
}))
"""


def yolov5_model(module: str = "yolov5.models.yolo"):
    """A 10-class YOLOv5n built from its YAML; module "models.yolo" pickles it as the original repo does."""
    import importlib

    train = yolo_compat.yolov5_train()
    model_class = importlib.import_module(module).Model
    return model_class(str(Path(train.__file__).parent / "models" / "yolov5n.yaml"), nc=10)


@pytest.mark.slow
def test_fixes_in_a_fresh_process(tmp_path):
    original = tmp_path / "original_repo_layout.pt"
    torch.save({"model": yolov5_model("models.yolo").half(), "epoch": -1, "optimizer": None}, original)
    # The repository first; packages installed with `pip --target` (a GPU lease) stay reachable after it.
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath, "YOLOV5_CONFIG_DIR": str(tmp_path / "yolov5")}
    env.pop("YOLO_CONFIG_DIR", None)
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(original)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["fonts"] == ["Arial.Unicode.ttf", "Arial.ttf"]
    assert found["trapz"] == 2.0 and min(found["getsize"]) > 0
    assert found["omp"] is None and found["cv2_threads_kept"]
    assert found["offline"] == "1" and found["amp_check"] == "umnist.yolo_compat"
    assert found["hub"] is None  # no Hugging Face lookups, whatever huggingface_hub version is installed
    assert found["original_layout"] == "models.yolo"  # e.g. the winning solution's published best.pt


def test_full_unpickler_only_for_the_named_checkpoints(tmp_path):
    named, other = tmp_path / "named.pt", tmp_path / "other.pt"
    model = yolov5_model()
    for path in (named, other):
        torch.save({"model": model}, path)
    with yolo_compat.trusted_checkpoints(named):
        assert type(torch.load(named)["model"]) is type(model)
        with pytest.raises(Exception, match="Weights only load failed"):
            torch.load(other)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(named)


@pytest.mark.parametrize("deterministic", [True, False])
def test_seeding_follows_the_setting_and_is_undone(deterministic):
    train = yolo_compat.yolov5_train()
    original, before = train.init_seeds, (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    with yolo_compat.process_state_kept(), yolo_compat.seeding(train, deterministic):
        train.init_seeds(1, deterministic=True)  # as yolov5's train() calls it
        assert torch.are_deterministic_algorithms_enabled() is deterministic
        if not deterministic:
            assert torch.backends.cudnn.benchmark  # cuDNN autotunes the fixed training size instead
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    assert train.init_seeds is original


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("killed mid-write")


def test_checkpoint_saves_are_atomic_while_training(tmp_path):
    """A save into the weights folder that dies part-way keeps the previous checkpoint whole."""
    last = tmp_path / "weights" / "last.pt"
    last.parent.mkdir()
    with yolo_compat.atomic_checkpoint_saves(last.parent):
        torch.save({"epoch": 0, "w": torch.ones(1000)}, last)
        with pytest.raises(RuntimeError, match="killed mid-write"):
            torch.save({"epoch": 1, "w": torch.ones(1000), "x": Unpicklable()}, last)
    assert torch.load(last, weights_only=True)["epoch"] == 0
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]


def _module_from_source(tmp_path, name: str, source: str):
    import importlib.util

    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nominal_batch_is_read_from_the_options(tmp_path):
    module = _module_from_source(tmp_path, "fake_train", "def train(hyp, opt, device, callbacks):\n"
                                 f"    {yolo_compat.NOMINAL_BATCH_LINE}\n    return nbs\n")
    yolo_compat._nominal_batch_from_opt(module)
    assert module.train(None, argparse.Namespace(nominal_batch=16), None, None) == 16
    assert module.train(None, argparse.Namespace(), None, None) == 64  # unset: yolov5's constant


def test_a_yolov5_without_the_nominal_batch_line_is_refused(tmp_path):
    module = _module_from_source(tmp_path, "other_train", "def train(hyp, opt, device, callbacks):\n"
                                 "    nbs = 32\n    return nbs\n")
    with pytest.raises(RuntimeError, match="not the 7.0.x umnist supports"):
        yolo_compat._nominal_batch_from_opt(module)


def test_the_installed_yolov5_reads_the_nominal_batch():
    train = yolo_compat.yolov5_train().train
    assert train.umnist_nominal_batch and "nominal_batch" in train.__code__.co_consts
