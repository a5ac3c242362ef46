"""Settings of the detector stage (training and detection). Defaults are the `full` profile (docs/recipe.md)."""

from dataclasses import dataclass
from typing import Literal

from umnist.config import opt

# yolov5 hyper-parameters that the recipe (docs/recipe.md) does not set: the package's own from-scratch values
# (data/hyps/hyp.scratch-low.yaml), written out so that a run never depends on a file inside the package.
YOLOV5_FIXED_HYP = {
    "warmup_momentum": 0.8, "warmup_bias_lr": 0.1, "box": 0.05, "cls": 0.5, "cls_pw": 1.0, "obj": 1.0,
    "obj_pw": 1.0, "iou_t": 0.20, "anchor_t": 4.0, "fl_gamma": 0.0, "shear": 0.0, "perspective": 0.0,
    "mixup": 0.0, "copy_paste": 0.0,
}
# `batch: auto`: training memory per image at 640 px with yolov5's AMP, in GB, rounded up generously from the
# GPU memory yolov5 logs (yolov5s: ~0.16 GB per 640 px image); activations grow with the pixel count.
TRAIN_GB_PER_640_IMAGE = {"yolov5n": 0.12, "yolov5s": 0.25, "yolov5m": 0.6, "yolov5l": 1.1, "yolov5x": 1.8}
AUTO_MEMORY_SHARE = 0.6  # of the GPU's memory: room for the estimate's error and a classifier sharing the GPU
AUTO_MAX_BATCH = 64  # yolov5's nominal batch: above it there is no gradient accumulation left to save
AUTO_CPU_BATCH = 4  # no GPU: memory is not the limit, and a CPU step's time grows with the batch
# The DetectorConfig fields that are yolov5 hyper-parameters (the rest are run settings).
HYP_FIELDS = ("lr0", "lrf", "momentum", "weight_decay", "warmup_epochs", "hsv_h", "hsv_s", "hsv_v", "degrees",
              "translate", "scale", "flipud", "fliplr", "mosaic")


@dataclass
class DetectorConfig:
    model: Literal["yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x"] = opt(
        "yolov5s", "YOLOv5 model YAML, built from scratch with 10 classes: the winner's YOLOv5s gets the boxes "
        "right and leaves the digit classes to the re-classifier")
    img_size: int = opt(2560, "train and detect side in px: the whole 4000 px image at 2560 keeps 14 px digits "
                        "about 9 px, still detectable (a multiple of 32, the model's largest stride)")
    batch: int | Literal["auto"] = opt(
        2, "images per batch: the winner's GPU fitted 2 at 2560 (yolov5 accumulates gradients up to "
        "`nominal_batch` images per step); 'auto' = as many as fit in 60 % of the GPU's memory by a per-model "
        f"estimate, at most 64 ({AUTO_CPU_BATCH} without a GPU)")
    nominal_batch: int = opt(
        64, "images per optimiser step: yolov5 accumulates the gradients of batches up to this many (its "
        "constant 64, the winner's); a batch of at least this many steps every batch. A short CPU run wants a "
        "step per batch: with 16 images per batch, 64 leaves it a quarter of the steps")
    epochs: int = opt(100, "training epochs (the winner: SGD, 100 epochs, stopped early on the objectness loss)")
    optimizer: Literal["SGD", "Adam", "AdamW"] = opt("SGD", "optimizer (the winner's SGD)")
    lr0: float = opt(0.01, "initial learning rate (yolov5's SGD default)")
    lrf: float = opt(0.01, "final learning rate as a share of lr0, reached linearly at the last epoch")
    momentum: float = opt(0.937, "SGD momentum (yolov5 default)")
    weight_decay: float = opt(0.0005, "weight decay (yolov5 default, scaled by yolov5 to the nominal batch)")
    warmup_epochs: float = opt(3.0, "epochs of learning-rate warmup (yolov5 default; at least 100 batches)")
    hsv_h: float = opt(0.015, "hue jitter: the winner's light HSV augmentation (yolov5 default)")
    hsv_s: float = opt(0.7, "saturation jitter (no effect on grey scenes; yolov5 default)")
    hsv_v: float = opt(0.4, "brightness jitter (yolov5 default)")
    degrees: float = opt(5.0, "rotation +- degrees: light, harsh augmentation pushes digits out of the image")
    translate: float = opt(0.01, "translation +- share of the side (light)")
    scale: float = opt(0.02, "scale jitter +- share (light: digit sizes already span 6-1500 px)")
    flipud: float = opt(0.0, "vertical flip probability: none, a flipped 6 is a 9")
    fliplr: float = opt(0.0, "horizontal flip probability: none, mirrored digits do not occur")
    mosaic: float = opt(1.0, "mosaic probability (the winner kept yolov5's mosaic)")
    obj_loss_stop: float = opt(0.008, "stop once an epoch's mean training objectness loss is at or below this "
                               "(the winner's criterion: recall matters, the class loss does not); 0 = never")
    conf: float = opt(0.1, "detection confidence threshold: low, for recall; the re-classifier drops junk")
    conf_objectness: bool = opt(
        True, "threshold (and rank, for max_det) boxes on their objectness alone, not yolov5's objectness x "
        "class probability: the class is re-classified anyway, and a detector whose classes are still weak "
        "would lose true digits (a 2-epoch CPU detector: recall of 16-32 px digits 31 % -> 64 %); for a "
        "well-trained detector the two agree")
    iou: float = opt(0.1, "NMS IoU threshold: digits never overlap, so any overlapping pair is one digit")
    scales: tuple[float, ...] = opt(
        (1.0,), "detection input sizes as multiples of the input size, their boxes merged by one NMS; (1, 2) "
        "also runs the image enlarged 2x, where digits too small for the detector at 1x (under ~16 px) look like "
        "the 16-32 px digits it finds, for ~5x the detection time; 1 alone is the winner's single pass")
    enlarged_max_px: int = opt(
        64, "boxes of the enlarged passes (scales > 1) count only up to this side in the original image's px: "
        "there they are the small digits the pass is for, while a big digit enlarged past the sizes the "
        "detector knows comes out in pieces")
    max_det: int = opt(5, "most boxes per image: a competition image holds 3-5 digits")
    max_minutes: float | None = opt(None, "wall-clock budget of a training run in minutes: stop cleanly when "
                                    "the next epoch would not finish in it (or at the limit), keeping the best "
                                    "weights so far; None = no limit")
    workers: int = opt(8, "data-loading processes (yolov5 caps them at the CPU count and the batch size)")
    seed: int = opt(0, "training seed (yolov5 seeds python, numpy and torch from it)")
    deterministic: bool = opt(True, "yolov5's deterministic algorithms (reproducible runs); false lets cuDNN "
                              "pick its fastest kernels, much faster on a GPU (a short GPU lease)")

    def check(self) -> list[str]:
        problems = []
        if self.img_size < 64 or self.img_size % 32:
            problems.append(f"img_size={self.img_size} must be a multiple of 32, at least 64")
        if self.batch != "auto" and self.batch < 1:
            problems.append(f"batch={self.batch} must be at least 1 (or auto)")
        for name in ("epochs", "max_det", "nominal_batch"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be at least 1")
        if self.workers < 0:
            problems.append(f"workers={self.workers} must not be negative")
        for name in ("conf", "iou", "flipud", "fliplr", "mosaic", "lrf", "translate", "scale"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name}={getattr(self, name)} must be within 0..1")
        for name in ("lr0", "momentum", "weight_decay", "warmup_epochs", "obj_loss_stop", "degrees"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} must not be negative")
        if not self.scales or any(not 0.25 <= scale <= 4 for scale in self.scales):
            problems.append(f"scales={list(self.scales)} must be one or more multiples within 0.25..4")
        if self.max_minutes is not None and self.max_minutes <= 0:
            problems.append(f"max_minutes={self.max_minutes} must be positive (or None for no limit)")
        return problems

    def batch_for(self, gpu_memory_bytes: int | None) -> int:
        """The batch size to train with on a GPU of this much memory (None: no GPU)."""
        if self.batch != "auto":
            return self.batch
        if gpu_memory_bytes is None:
            return AUTO_CPU_BATCH
        per_image = TRAIN_GB_PER_640_IMAGE[self.model] * (self.img_size / 640) ** 2 * 1e9
        return int(min(AUTO_MAX_BATCH, max(1, AUTO_MEMORY_SHARE * gpu_memory_bytes // per_image)))

    def hyp(self) -> dict:
        """The full yolov5 hyper-parameter dict: the fields above plus the fixed yolov5 values."""
        return {**{name: float(getattr(self, name)) for name in HYP_FIELDS}, **YOLOV5_FIXED_HYP}
