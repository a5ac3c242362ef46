import warnings

import numpy as np
import pytest

from umnist.classifier.config import ClassifierConfig

ALL_ON = {"aug_affine_p": 1.0, "aug_perspective_p": 1.0, "aug_invert_p": 1.0, "aug_blur_p": 1.0,
          "aug_color_p": 1.0}


@pytest.mark.parametrize("values", [{}, ALL_ON])
def test_pipeline_builds_and_runs_without_any_warning(values, mnist_dir):
    """albumentations 2.x warns on deprecated classes and arguments: any warning here is a failure."""
    from umnist.mnist import load_mnist

    digits, _ = load_mnist(mnist_dir, ("test",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from umnist.classifier.augment import train_transform

        augment = train_transform(ClassifierConfig(**values), seed=0)
        for digit in digits[:20]:
            image = np.repeat(np.kron(digit, np.ones((4, 4), np.uint8))[:, :, None], 3, axis=2)  # 112 px
            out = augment(image=image)["image"]
            assert out.shape == image.shape and out.dtype == np.uint8


def test_only_invert_gives_the_exact_inversion():
    from umnist.classifier.augment import train_transform

    cfg = ClassifierConfig(aug_affine_p=0, aug_perspective_p=0, aug_invert_p=1, aug_blur_p=0, aug_color_p=0)
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(train_transform(cfg, seed=0)(image=image)["image"], 255 - image)


def test_light_augmentation_keeps_the_digit_in_place(mnist_dir):
    """The digit keeps its ink and stays near where it was: the augmentations are light, as in the write-up."""
    from umnist.classifier.augment import train_transform
    from umnist.mnist import load_mnist

    digits, _ = load_mnist(mnist_dir, ("test",))
    augment = train_transform(ClassifierConfig(**{**ALL_ON, "aug_invert_p": 0.0, "aug_color_p": 0.0}), seed=1)
    for digit in digits[:20]:
        image = np.repeat(np.kron(digit, np.ones((4, 4), np.uint8))[:, :, None], 3, axis=2)
        ink, moved = image[:, :, 0] > 127, augment(image=image)["image"][:, :, 0] > 127
        assert 0.6 < moved.sum() / ink.sum() < 1.6
        shift = np.subtract(np.argwhere(moved).mean(axis=0), np.argwhere(ink).mean(axis=0))
        assert np.abs(shift).max() < 0.15 * len(image)
