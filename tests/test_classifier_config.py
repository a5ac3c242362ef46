import pytest

from umnist.classifier.config import ClassifierConfig
from umnist.config import build, resolve
from umnist.errors import UmnistError


@pytest.mark.parametrize("values, message", [
    ({"img_size": 8}, "img_size=8 must be >= 16"),
    ({"epochs": 0}, "epochs=0 must be >= 1"),
    ({"lr_steps": [1e-3, -1.0]}, "lr_steps=.* positive"),
    ({"aug_invert_p": 1.5}, "aug_invert_p=1.5 must be within 0..1"),
    ({"workers": -2}, "workers=-2"),
    ({"device": "tpu"}, "device='tpu'"),
    ({"max_minutes": 0}, "max_minutes=0 must be > 0"),
    ({"epoch_images": 0}, "epoch_images=0"),
])
def test_impossible_values_rejected(values, message):
    with pytest.raises(UmnistError, match=message):
        build(ClassifierConfig, values, "here")


def test_learning_rate_steps_every_quarter_of_the_run():
    cfg = resolve(ClassifierConfig, "classifier", "full")
    assert cfg.epochs == 200
    assert [cfg.lr_at(e) for e in (0, 49, 50, 99, 100, 149, 150, 199)] == [
        3e-4, 3e-4, 1e-4, 1e-4, 3e-5, 3e-5, 1e-5, 1e-5]
    assert [build(ClassifierConfig, {"epochs": 6}, "here").lr_at(e) for e in range(6)] == [
        3e-4, 3e-4, 1e-4, 3e-5, 3e-5, 1e-5]
