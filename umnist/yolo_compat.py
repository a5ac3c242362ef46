"""Every fix the `yolov5` package (7.0.14) needs on this stack, in one place, applied before it is imported.

yolov5 7.0.14 predates torch >= 2.6, numpy 2 and Pillow 10, and phones home from several places. umnist calls
`prepare()` (or `yolov5_train()`) before its first yolov5 import, which applies the fixes below once. Each fix
says what breaks without it.
"""

import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

_prepared = False


def _config_dir() -> Path:
    """yolov5/ultralytics settings and fonts: $YOLOV5_CONFIG_DIR if set, else a folder in the temp dir."""
    path = Path(os.environ.get("YOLOV5_CONFIG_DIR") or Path(tempfile.gettempdir()) / "umnist-yolov5")
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare() -> None:
    """Apply the environment and library fixes; safe to call many times. Must run before `import yolov5`."""
    global _prepared
    if _prepared:
        return
    if "yolov5" in sys.modules or "ultralytics" in sys.modules:
        raise RuntimeError("umnist.yolo_compat.prepare() must run before yolov5 is imported")
    config_dir = _config_dir()
    # No network, ever: ultralytics (imported by yolov5) resolves DNS at import time and may pip-install
    # "missing" requirements; albumentations checks PyPI for updates. These switch all of that off.
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS", "1")
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    # yolov5 first asks the Hugging Face hub for any weights name shaped like "owner/name"; offline mode makes
    # such a call fail at once instead of reaching out (umnist passes absolute paths, which it never asks).
    os.environ["HF_HUB_OFFLINE"] = "1"
    # Settings files go to our folder, not to ~/.config (read-only or shared in containers).
    os.environ["YOLOV5_CONFIG_DIR"] = str(config_dir)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    # Training calls check_font('Arial.ttf') even with plots off, which downloads the font when it is missing
    # from the config dir: put matplotlib's DejaVuSans there under the names yolov5 asks for.
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (config_dir / name).is_file():
            shutil.copyfile(font, config_dir / name)
    # numpy 2 removed np.trapz (yolov5's AP integration in utils/metrics.py); np.trapezoid is the same function.
    import numpy as np

    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid
    # Pillow >= 10 removed FreeTypeFont.getsize, used by yolov5's box-label plots; rebuild it from getbbox.
    from PIL import ImageFont

    if not hasattr(ImageFont.FreeTypeFont, "getsize"):
        def getsize(self, text, *args, **kwargs):
            left, top, right, bottom = self.getbbox(text, *args, **kwargs)
            return right - left, bottom - top

        ImageFont.FreeTypeFont.getsize = getsize
    # yolov5 imports pkg_resources (setuptools < 81 is pinned for it), which warns that it is deprecated.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    # Its training loop uses torch.cuda.amp.autocast/GradScaler, deprecated since torch 2.4: one warning per batch.
    warnings.filterwarnings("ignore", message=r"`torch\.cuda\.amp\.", category=FutureWarning)
    # Checkpoints written by the original ultralytics/yolov5 repo (e.g. the winning solution's best.pt) pickle
    # their classes as `models.yolo.Model`; the pip package resolves that name by putting its own folder on
    # sys.path (train.py does it on import). Do the same up front, at the end of the path so nothing is shadowed.
    import importlib.util

    package_dir = str(Path(importlib.util.find_spec("yolov5").origin).parent)
    if package_dir not in sys.path:
        sys.path.append(package_dir)
    # ultralytics (imported by yolov5) sets OMP_NUM_THREADS=1 when it is unset, which would make every child
    # process started later single-threaded, and both switch OpenCV's threads off for the whole process (synth
    # and detection resize with it): import them here and undo both. Training switches OpenCV threads off
    # again while it runs (`process_state_kept`), as yolov5 wants for its data-loader processes.
    import cv2

    omp_threads, cv2_threads = os.environ.get("OMP_NUM_THREADS"), cv2.getNumThreads()
    import yolov5.utils.downloads
    import yolov5.utils.general  # noqa: F401

    yolov5.utils.downloads.attempt_download_from_hub = _no_hub
    if omp_threads is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    cv2.setNumThreads(cv2_threads)
    _prepared = True


def _no_hub(*args, **kwargs) -> None:
    """Replaces yolov5's attempt_download_from_hub, which training calls on every weights name (even ""): umnist
    never loads weights from the Hugging Face hub, and that function imports huggingface_hub.utils._errors, gone
    since huggingface_hub 0.25 (GPU machines' images hold 1.x)."""
    return None


def _amp_on_cuda(model) -> bool:
    """Replaces yolov5's check_amp, which downloads yolov5n.pt on a GPU and silently turns AMP off offline."""
    return next(model.parameters()).device.type == "cuda"


def yolov5_train():
    """The `yolov5.train` module, with the fixes applied."""
    prepare()
    import yolov5.train

    yolov5.train.check_amp = _amp_on_cuda
    yolov5.train.attempt_download_from_hub = _no_hub
    if not getattr(yolov5.train.train, "umnist_nominal_batch", False):
        _nominal_batch_from_opt(yolov5.train)
    return yolov5.train


NOMINAL_BATCH_LINE = "nbs = 64  # nominal batch size"


def _nominal_batch_from_opt(train_module) -> None:
    """yolov5 accumulates gradients up to a nominal batch of 64 images per optimiser step, a constant inside
    train(): with 16 images per batch a short CPU run takes a quarter of the steps it could. Rebuild train()
    with that line reading `opt.nominal_batch` (64 when unset, yolov5's behaviour); refuse a yolov5 whose
    train() lacks the line rather than train differently than asked."""
    import inspect

    lines, first_line = inspect.getsourcelines(train_module.train)
    source = "\n" * (first_line - 1) + "".join(lines)  # tracebacks keep yolov5's own line numbers
    if source.count(NOMINAL_BATCH_LINE) != 1:
        raise RuntimeError(f"yolov5 {train_module.__file__}: train() has no line {NOMINAL_BATCH_LINE!r}; "
                           "this yolov5 is not the 7.0.x umnist supports")
    patched = source.replace(NOMINAL_BATCH_LINE, "nbs = getattr(opt, 'nominal_batch', None) or 64")
    namespace = train_module.__dict__
    exec(compile(patched, train_module.__file__, "exec"), namespace)  # noqa: S102 - yolov5's own source
    namespace["train"].umnist_nominal_batch = True


@contextlib.contextmanager
def process_state_kept() -> Iterator[None]:
    """Run yolov5's training with OpenCV threads off, then undo the process-wide settings it leaves behind.

    Its init_seeds(deterministic=True) turns on torch's deterministic algorithms for the whole process: left
    on, later CUDA work in the same process (the classifier, detection) fails on ops without a deterministic
    kernel, and cudnn autotuning stays off.
    """
    import cv2
    import torch

    deterministic = torch.are_deterministic_algorithms_enabled()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    cublas, cv2_threads = os.environ.get("CUBLAS_WORKSPACE_CONFIG"), cv2.getNumThreads()
    cv2.setNumThreads(0)
    try:
        yield
    finally:
        cv2.setNumThreads(cv2_threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


@contextlib.contextmanager
def seeding(train_module, deterministic: bool) -> Iterator[None]:
    """Make yolov5's training seed with our `deterministic` setting instead of its hard-wired True.

    Deterministic algorithms make runs reproducible but slow a GPU down (no cuDNN autotuning, deterministic
    index kernels); switched off, cuDNN benchmarks its kernels for the fixed training image size instead.
    Use inside `process_state_kept`, which undoes either setting afterwards.
    """
    import torch

    original = train_module.init_seeds

    def init_seeds(seed=0, **_):  # yolov5 passes deterministic=True
        original(seed, deterministic=deterministic)
        if not deterministic:
            torch.backends.cudnn.benchmark = True

    train_module.init_seeds = init_seeds
    try:
        yield
    finally:
        train_module.init_seeds = original


@contextlib.contextmanager
def trusted_checkpoints(*paths: str | os.PathLike) -> Iterator[None]:
    """Let torch.load unpickle these yolov5 checkpoint files (and only these) while the block runs.

    torch >= 2.6 loads with weights_only=True, which refuses yolov5 checkpoints (they pickle the whole model).
    The full unpickler runs code from the file, so it is allowed only for paths the user chose or our own
    runs wrote, never globally: any other file still gets the safe loader.
    """
    import torch

    allowed = {Path(p).resolve() for p in paths if p}
    original = torch.load

    def load(f, *args, **kwargs):
        if isinstance(f, str | os.PathLike) and Path(f).resolve() in allowed:
            kwargs["weights_only"] = False
        return original(f, *args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


@contextlib.contextmanager
def atomic_checkpoint_saves(folder: str | os.PathLike) -> Iterator[None]:
    """Make yolov5's checkpoint saves into `folder` atomic while the block runs.

    yolov5's train() writes last.pt and best.pt with a plain torch.save, which truncates the previous file
    first: a run killed during that write would keep neither the old checkpoint nor the new one, and could not
    resume. Here such a save goes to a temporary name and is renamed when complete.
    """
    import torch

    from umnist.fileio import atomic_path

    folder = Path(folder).resolve()
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(f, str | os.PathLike) and Path(f).resolve().parent == folder:
            with atomic_path(f) as tmp:
                return original(obj, tmp, *args, **kwargs)
        return original(obj, f, *args, **kwargs)

    torch.save = save
    try:
        yield
    finally:
        torch.save = original
