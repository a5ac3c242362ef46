"""Training augmentations (albumentations 2.x API), all light: the competition digits are not distorted.

Written against albumentations 2.0.8: `Affine` replaces the deprecated `ShiftScaleRotate` (which warns on
every call), borders use `border_mode`/`fill` (the 1.x names `value`, `mode`, `cval` are silently ignored),
and `strict=True` makes any unknown argument an error instead of a silent no-op.
"""

import os

import cv2

# Importing albumentations would otherwise check for a newer version over the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402

from umnist.classifier.config import ClassifierConfig  # noqa: E402


def train_transform(cfg: ClassifierConfig, seed: int | None = None) -> A.Compose:
    """The augmentation pipeline for RGB uint8 crops of `cfg.img_size` pixels (shape kept)."""
    # Borders replicate the crop's edge: a constant fill would frame the digit in black, a cue that
    # inversion would turn white and the real crops never show.
    border = {"border_mode": cv2.BORDER_REPLICATE}
    return A.Compose([
        A.Affine(translate_percent=(-cfg.aug_shift, cfg.aug_shift),
                 scale=(1 - cfg.aug_scale, 1 + cfg.aug_scale), rotate=(-cfg.aug_rotate, cfg.aug_rotate),
                 p=cfg.aug_affine_p, **border),
        A.Perspective(scale=(0.02, 0.05), p=cfg.aug_perspective_p, **border),
        A.InvertImg(p=cfg.aug_invert_p),
        A.Blur(blur_limit=(3, 3), p=cfg.aug_blur_p),
        A.HueSaturationValue(hue_shift_limit=10, sat_shift_limit=15, val_shift_limit=10, p=cfg.aug_color_p),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=cfg.aug_color_p),
    ], strict=True, seed=seed)
