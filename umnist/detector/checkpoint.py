"""Reading YOLOv5 checkpoints: one clear error for anything that is not a usable 10-class YOLOv5 checkpoint.

A YOLOv5 checkpoint (ours or the ultralytics/yolov5 repo's, e.g. the winning solution's published best.pt)
is a pickled dict holding the whole model object under 'model' (and 'ema' while training), so it needs
torch's full unpickler. That runs code from the file, so it is used only on paths the user named or our own
runs wrote, through `yolo_compat.trusted_checkpoints`.
"""

import logging
import os
import pickle
import zipfile
from pathlib import Path

from umnist import yolo_compat
from umnist.errors import UmnistError
from umnist.labels import NUM_CLASSES

# The settings a checkpoint's weights are meant to run with. umnist's trainer writes its profile's sections
# that inference reads (the detector's thresholds and scales, infer's run settings, postprocess's floor) into
# the final weights, so `umnist predict` runs a model as it was trained to run without being told the profile:
# a cpu-profile detector run with tiny's single scale misses most digits under 16 px, silently.
PROFILE_KEY = "umnist_profile"
RECORDED_SECTIONS = ("detector", "infer", "postprocess")


def read_yolo_checkpoint(path: str | os.PathLike, num_classes: int | None = NUM_CLASSES) -> dict:
    """Load and check a YOLOv5 checkpoint file; `num_classes=None` accepts any class count (fine-tuning)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UmnistError(f"{path}: weights file not found")
    yolo_compat.prepare()
    try:
        with yolo_compat.trusted_checkpoints(path):
            ckpt = torch.load(path, map_location="cpu")
    except ModuleNotFoundError as exc:
        raise UmnistError(f"{path}: not a YOLOv5 checkpoint (it pickles module '{exc.name}', "
                          "which is not installed)") from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError, AttributeError,
            IndexError, KeyError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UmnistError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupt? ({reason[:120]})") \
            from None
    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "yaml") or not hasattr(model, "stride"):
        what = f"a dict with keys {sorted(map(str, ckpt))[:6]}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UmnistError(f"{path}: not a YOLOv5 checkpoint (no YOLOv5 model inside; found {what})")
    nc = int(getattr(model, "nc", model.yaml.get("nc", -1)))
    if num_classes is not None and nc != num_classes:
        raise UmnistError(f"{path}: a YOLOv5 model with {nc} classes; umnist detects {num_classes} (digits 0-9)")
    return ckpt


def trained_img_size(ckpt: dict) -> int | None:
    """The image side a checkpoint was trained at, from the options yolov5's train.py saves in it
    (`opt.imgsz`, an int; `opt.img_size`, [train, test], before yolov5 v6); None when it records none."""
    options = ckpt.get("opt")
    if not isinstance(options, dict):
        return None
    size = options.get("imgsz", options.get("img_size"))
    if isinstance(size, list | tuple):
        size = size[0] if size else None
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return None
    return size


def checkpoint_model(ckpt: dict):
    """The model to run from a checkpoint: the EMA weights when present, in float32, eval mode, BN fused.

    yolov5 logs "Fusing layers..." and a model summary to stderr while fusing: silenced, so that what a user
    sees on stderr from a command is its progress and, on a problem, the one-line error."""
    import torch

    model = (ckpt.get("ema") or ckpt["model"]).float()
    for module in model.modules():
        if isinstance(module, torch.nn.Upsample) and not hasattr(module, "recompute_scale_factor"):
            module.recompute_scale_factor = None  # checkpoints pickled before torch 1.11
    yolov5_logger = logging.getLogger("yolov5")
    level = yolov5_logger.level
    yolov5_logger.setLevel(logging.WARNING)
    try:
        return model.fuse().eval()
    finally:
        yolov5_logger.setLevel(level)


def recorded_profile(ckpt: dict) -> dict | None:
    """The profile sections a checkpoint records (`PROFILE_KEY`), a profile mapping; None for a checkpoint
    umnist did not finish (yolov5's own, a run's last.pt while it trains)."""
    profile = ckpt.get(PROFILE_KEY)
    return dict(profile) if isinstance(profile, dict) else None
