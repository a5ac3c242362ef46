"""The network and its weights files.

`DigitNet` wraps a timm model: it takes uint8 image batches (N, 3, S, S) and normalises them itself, so the
data loaders move bytes (4x less than floats) and `predict` cannot get the normalisation wrong.

Weights files (`best.pt`, `last.pt`) hold only tensors and plain types, so `torch.load(weights_only=True)`
reads them and loading a classifier never runs pickled code:
    {"format": "umnist-classifier/1", "state_dict": {name: tensor}, "meta": {arch, img_size, ...}}
`last.pt` adds "optimizer" (Adam's state dict) and "resume" (epoch, best accuracy, seconds used) to continue
a run. The state dict keys are timm's own, so the file also loads into a plain timm model.
"""

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from umnist.errors import UmnistError
from umnist.hardware import torch_device
from umnist.labels import NUM_CLASSES

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub: pretrained weights come from files

FORMAT = "umnist-classifier/1"
# ImageNet statistics: the network may start from ImageNet weights, which expect inputs normalised this way.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class DigitNet(nn.Module):
    """A timm classifier over uint8 images (N, 3, S, S), S = `img_size`; returns logits (N, 10)."""

    def __init__(self, arch: str, img_size: int):
        super().__init__()
        import timm

        try:
            self.net = timm.create_model(arch, pretrained=False, num_classes=NUM_CLASSES)
        except RuntimeError as exc:
            raise UmnistError(f"arch={arch!r}: {exc}") from None
        self.arch, self.img_size = arch, img_size
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images.float() - self.mean) / self.std)

    def meta(self) -> dict:
        return {"arch": self.arch, "img_size": self.img_size, "num_classes": NUM_CLASSES,
                "mean": list(MEAN), "std": list(STD)}


def read_weights_file(path: str | os.PathLike) -> dict:
    """A mapping of tensors and plain values from a torch (.pt/.pth/.bin) or safetensors file; never unpickles
    code. Every failure is one UmnistError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UmnistError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as exc:
            raise UmnistError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise UmnistError(f"{path}: refused, it holds pickled objects beyond tensors and plain types "
                              "(loading it would run arbitrary code)") from None
        raise UmnistError(f"{path}: not a torch weights file ({_first_line(exc)})") from None
    except Exception as exc:
        raise UmnistError(f"{path}: not a readable torch weights file, truncated or of another kind "
                          f"({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise UmnistError(f"{path}: holds a {type(data).__name__}, expected a state dict of tensors")
    return data


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _state_dict_of(data: dict, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: ours, a checkpoint with `state_dict`/`model`, or a bare state dict."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(data.get(key), dict):
            data = data[key]
            break
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UmnistError(f"{path}: holds no tensors, not a state dict")
    return tensors


def load_init_weights(model: DigitNet, path: str | os.PathLike) -> str:
    """Start `model` from a user's weights file (ImageNet or any run of the same arch).

    Every tensor must match by name and shape except the classification head, which is kept fresh when its
    shape differs (ImageNet's 1000 classes vs our 10). Returns a one-line summary of what was loaded.
    """
    path = Path(path)
    source = _state_dict_of(read_weights_file(path), path)
    own = model.net.state_dict()
    head_module = model.net.get_classifier()
    head = {f"{name}.{p}" for name, m in model.net.named_modules() if m is head_module
            for p, _ in m.named_parameters()}
    missing = [k for k in own if k not in source and k not in head]
    wrong = [k for k in own if k in source and k not in head and source[k].shape != own[k].shape]
    if missing or wrong:
        example = missing[0] if missing else (f"{wrong[0]} {tuple(source[wrong[0]].shape)} "
                                              f"vs {tuple(own[wrong[0]].shape)}")
        raise UmnistError(f"{path}: not weights for {model.arch}: {len(missing)} tensors missing and "
                          f"{len(wrong)} of another shape (e.g. {example})")
    loaded = {k: v for k, v in source.items() if k in own and v.shape == own[k].shape}
    model.net.load_state_dict(loaded, strict=False)
    kept_head = sorted(head - set(loaded))
    note = f", fresh {NUM_CLASSES}-class head" if kept_head else ""
    return f"init weights {path}: {len(loaded)} of {len(own)} tensors loaded{note}"


def save_weights(path: str | os.PathLike, model: DigitNet, **extra) -> None:
    """Write a weights file atomically: the state dict, `meta` (merged with the model's own), and `extra`
    top-level entries (optimizer, resume), all tensors and plain types."""
    from umnist.fileio import atomic_path

    meta = {**model.meta(), **extra.pop("meta", {})}
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "state_dict": state, "meta": meta, **extra}, tmp)


def read_classifier_weights(path: str | os.PathLike) -> dict:
    """A weights file written by `save_weights`, checked for its layout."""
    path = Path(path)
    data = read_weights_file(path)
    if data.get("format") != FORMAT or not isinstance(data.get("meta"), dict):
        raise UmnistError(f"{path}: not a umnist classifier weights file (no '{FORMAT}' format tag); "
                          "use --init-weights for other weights")
    return data


def load_classifier(path: str | os.PathLike, device: str | torch.device = "auto") -> DigitNet:
    """The trained classifier from `best.pt`/`last.pt`, in eval mode on `device` (a GPU when present)."""
    data = read_classifier_weights(path)
    meta = data["meta"]
    model = DigitNet(meta["arch"], int(meta["img_size"]))
    try:
        model.net.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise UmnistError(f"{path}: weights do not fit {meta['arch']} ({_first_line(exc)})") from None
    device = torch_device(device) if isinstance(device, str) else device
    return model.to(device).eval()
