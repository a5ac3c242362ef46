import numpy as np
import pytest
import torch

from umnist.classifier.data import load_shard, read_index, to_rgb
from umnist.classifier.inference import predict
from umnist.classifier.model import DigitNet, load_classifier


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DigitNet("test_efficientnet", 32).eval()


def _crops(rng):
    """Square crops of assorted sizes, gray and colour."""
    sizes = [7, 32, 64, 128, 200]
    return [rng.integers(0, 256, (s, s) if i % 2 else (s, s, 3), dtype=np.uint8) for i, s in enumerate(sizes)]


def test_output_is_the_mean_of_the_crop_and_its_inversion(model):
    crops = _crops(np.random.default_rng(0))
    probs = predict(model, crops)
    assert probs.shape == (len(crops), 10) and probs.dtype == np.float32
    images = torch.from_numpy(np.stack([to_rgb(c, 32) for c in crops]).transpose(0, 3, 1, 2))
    with torch.no_grad():
        plain, inverted = model(images).softmax(1), model(255 - images).softmax(1)
    np.testing.assert_allclose(probs, ((plain + inverted) / 2).numpy(), atol=1e-5)
    assert not np.allclose(plain.numpy(), inverted.numpy(), atol=1e-3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 2, 256])
def test_batching_does_not_change_the_result(model, batch_size):
    crops = np.random.default_rng(1).integers(0, 256, (5, 40, 40), dtype=np.uint8)
    np.testing.assert_allclose(predict(model, crops, batch_size=batch_size), predict(model, crops), atol=1e-5)


def test_empty_input(model):
    assert predict(model, []).shape == (0, 10)


def test_trained_classifier_reads_val_crops_and_their_inversions(tiny_classifier, tiny_crops):
    out, summary = tiny_classifier
    model = load_classifier(out / "best.pt")
    images, labels = load_shard(read_index(tiny_crops, "val")[0].path)
    accuracy = (predict(model, images).argmax(1) == labels).mean()
    inverted = (predict(model, 255 - images).argmax(1) == labels).mean()
    assert accuracy > summary["best_val_accuracy"] - 0.05
    assert inverted > summary["best_val_accuracy"] - 0.05
