"""Classify digit crops with invert TTA: the mean of the softmax of each crop and of its inversion."""

from collections.abc import Sequence

import numpy as np
import torch

from umnist.classifier.data import to_rgb
from umnist.classifier.model import DigitNet


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on GPUs that have it; a no-op elsewhere (CPU runs stay float32)."""
    use = enabled and device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use)


@torch.inference_mode()
def predict(model: DigitNet, crops: Sequence[np.ndarray] | np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities (N, 10) float32 for N square crops of any size, gray (H, W) or colour (H, W, 3) uint8.

    Each crop is resized to the model's input side; the result is the mean of the softmax over the crop and
    over 255 - crop (the winner's TTA: digits appear in both polarities). The model is used as given (load it
    once with `load_classifier`); batches go to the device its weights are on.
    """
    device = next(model.parameters()).device
    model.eval()
    out = np.zeros((len(crops), 10), dtype=np.float32)
    for start in range(0, len(crops), batch_size):
        chunk = [to_rgb(np.asarray(c), model.img_size) for c in crops[start:start + batch_size]]
        images = torch.from_numpy(np.stack(chunk).transpose(0, 3, 1, 2)).to(device)
        both = torch.cat([images, 255 - images])
        if device.type == "cuda":
            both = both.contiguous(memory_format=torch.channels_last)
        with autocast(device):
            probs = model(both).float().softmax(dim=1)
        n = len(chunk)
        out[start:start + n] = ((probs[:n] + probs[n:]) / 2).cpu().numpy()
    return out
