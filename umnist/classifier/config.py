"""The `classifier` section: EfficientNetV2-B1 digit re-classifier (defaults = the winning recipe, `full`)."""

import dataclasses

from umnist.config import opt


@dataclasses.dataclass
class ClassifierConfig:
    arch: str = opt("tf_efficientnetv2_b1", "timm model name; the winner's EfficientNetV2-B1: digits at "
                                           "128 px are easy, so a mid-size net reaches > 99.9 %")
    img_size: int = opt(128, "side of the square network input; the winner's 128 keeps the strokes of the "
                             "smallest digits while staying cheap")
    epochs: int = opt(200, "passes over the train crops (the winner trained 200)")
    epoch_images: int | None = opt(None, "images per epoch (null = the whole train split); lets a short run "
                                         "validate, checkpoint and step its learning rate more often")
    batch: int = opt(64, "images per optimiser step; 64 fits any GPU at 128 px and a laptop's memory")
    lr_steps: tuple[float, ...] = opt((3e-4, 1e-4, 3e-5, 1e-5),
                                      "Adam learning rates, each held for an equal share of the epochs "
                                      "(the winner: 50 epochs each of 200)")
    aug_affine_p: float = opt(0.5, "probability of a light shift/scale/rotate (Affine): detector boxes "
                                   "are slightly off-centre and off-size")
    aug_shift: float = opt(0.06, "largest shift, as a share of the side")
    aug_scale: float = opt(0.1, "largest zoom in or out, as a share (0.1 = 0.9x..1.1x)")
    aug_rotate: float = opt(10.0, "largest rotation in degrees; small, so 6 and 9 stay apart")
    aug_perspective_p: float = opt(0.3, "probability of a light perspective warp (scale 0.02-0.05)")
    aug_invert_p: float = opt(0.5, "probability of inverting: digits are XORed onto the background, so they "
                                   "appear both black-on-white and white-on-black")
    aug_blur_p: float = opt(0.1, "probability of a 3 px blur: small digits are upscaled and JPEG-softened")
    aug_color_p: float = opt(0.3, "probability of each light colour change (HSV shift, brightness/contrast)")
    shuffle_buffer: int = opt(4096, "images held to shuffle the shard stream; larger mixes better, costs "
                                    "memory (4096 crops = 64 MB per worker at 128 px)")
    workers: int = opt(-1, "data-loading processes; -1 = one per CPU core (keeps a GPU fed), 0 = in-process")
    device: str = opt("auto", "auto (a GPU when present), cpu, cuda or cuda:N")
    amp: bool = opt(True, "bf16 autocast and channels_last on GPUs that support them (ignored on CPU)")
    seed: int = opt(0, "seed of the model init, shard order, shuffling and augmentations")
    max_minutes: float | None = opt(None, "wall-clock budget in minutes: stop cleanly when it runs out, "
                                          "keeping the best weights so far (null = no limit)")

    def check(self) -> list[str]:
        problems = []
        for name in ("img_size", "epochs", "batch", "shuffle_buffer"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be >= 1")
        if self.img_size < 16:
            problems.append(f"img_size={self.img_size} must be >= 16 (the network downsamples by 16 or more)")
        if self.epoch_images is not None and self.epoch_images < 1:
            problems.append(f"epoch_images={self.epoch_images} must be >= 1 or null")
        if not self.lr_steps or any(lr <= 0 for lr in self.lr_steps):
            problems.append(f"lr_steps={list(self.lr_steps)} must be one or more positive rates")
        for name in ("aug_affine_p", "aug_perspective_p", "aug_invert_p", "aug_blur_p", "aug_color_p",
                     "aug_shift", "aug_scale"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name}={getattr(self, name)} must be within 0..1")
        if not 0 <= self.aug_rotate <= 180:
            problems.append(f"aug_rotate={self.aug_rotate} must be within 0..180 degrees")
        if self.workers < -1:
            problems.append(f"workers={self.workers} must be -1 (one per core), 0 or more")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            problems.append(f"device={self.device!r} must be auto, cpu, cuda or cuda:N")
        if self.max_minutes is not None and self.max_minutes <= 0:
            problems.append(f"max_minutes={self.max_minutes} must be > 0 or null")
        return problems

    def lr_at(self, epoch: int) -> float:
        """The learning rate of a 0-based epoch: the rates step at every len(lr_steps)-th share of the run."""
        return self.lr_steps[min(epoch * len(self.lr_steps) // self.epochs, len(self.lr_steps) - 1)]
