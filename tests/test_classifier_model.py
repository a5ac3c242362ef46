import os

import pytest
import torch

from umnist.classifier.model import DigitNet, load_classifier, load_init_weights, read_weights_file, save_weights
from umnist.errors import UmnistError

ARCH = "test_efficientnet"


def _bad_files(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"a": torch.zeros(3)}, good)
    cases = {
        "text": ("text.pt", b"hello, not weights\n", "not a readable torch weights file"),
        "truncated": ("trunc.pt", good.read_bytes()[: good.stat().st_size // 2], "truncated"),
        "empty": ("empty.pt", b"", "not a readable torch weights file"),
    }
    paths = {}
    for key, (name, data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        paths[key] = (tmp_path / name, message)
    torch.save({"hook": os.system}, tmp_path / "code.pt")
    paths["pickled code"] = (tmp_path / "code.pt", "refused, it holds pickled objects")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    paths["a list"] = (tmp_path / "list.pt", "holds a list, expected a state dict")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
    paths["bad safetensors"] = (tmp_path / "bad.safetensors", "not a readable safetensors file")
    paths["missing"] = (tmp_path / "nope.pt", "weights file not found")
    return paths


@pytest.mark.parametrize("case", ["text", "truncated", "empty", "pickled code", "a list", "bad safetensors",
                                  "missing"])
def test_bad_weights_files_refused_in_one_line(tmp_path, case):
    path, message = _bad_files(tmp_path)[case]
    for load in (read_weights_file, lambda p: load_init_weights(DigitNet(ARCH, 32), p), load_classifier):
        with pytest.raises(UmnistError, match=message) as info:
            load(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_init_weights_from_an_imagenet_style_file_replace_the_head(tmp_path, suffix):
    import timm

    torch.manual_seed(1)
    imagenet = timm.create_model(ARCH, num_classes=1000).state_dict()
    path = tmp_path / f"imagenet{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(imagenet, path)
    else:
        torch.save(imagenet, path)
    model = DigitNet(ARCH, 32)
    fresh_head = model.net.classifier.weight.clone()
    note = load_init_weights(model, path)
    assert "fresh 10-class head" in note
    own = model.net.state_dict()
    assert all(torch.equal(own[k], v) for k, v in imagenet.items() if not k.startswith("classifier."))
    assert torch.equal(model.net.classifier.weight, fresh_head)


def test_init_weights_of_another_arch_refused(tmp_path):
    import timm

    torch.save(timm.create_model("test_resnet", num_classes=10).state_dict(), tmp_path / "other.pt")
    with pytest.raises(UmnistError, match=f"not weights for {ARCH}: .* tensors missing"):
        load_init_weights(DigitNet(ARCH, 32), tmp_path / "other.pt")


def test_weights_file_round_trip_is_plain_data(tmp_path):
    model = DigitNet(ARCH, 48)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(2, 3, 48, 48, dtype=torch.uint8)).sum().backward()
    optimizer.step()
    save_weights(tmp_path / "last.pt", model, meta={"epoch": 3}, optimizer=optimizer.state_dict(),
                 resume={"epoch": 3, "best_accuracy": 0.5})
    data = torch.load(tmp_path / "last.pt", weights_only=True)
    assert data["meta"]["arch"] == ARCH and data["meta"]["img_size"] == 48 and data["meta"]["epoch"] == 3
    assert data["optimizer"]["state"] and data["resume"]["best_accuracy"] == 0.5
    loaded = load_classifier(tmp_path / "last.pt", "cpu")
    assert loaded.img_size == 48 and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values(),
                                                 strict=True))


def test_plain_state_dict_is_not_a_classifier_file(tmp_path):
    torch.save(DigitNet(ARCH, 32).net.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(UmnistError, match="not a umnist classifier weights file.*--init-weights"):
        load_classifier(tmp_path / "plain.pt")
