"""Digit boxes in full-size images with a trained YOLOv5 checkpoint (the infer stage's first step).

    detector = Detector.from_profile("runs/detector/weights/best.pt", "full")   # loads the model once
    for found in detector.detect(["a.jpeg", gray_array, rgb_array]):          # one batch
        found.boxes, found.conf, found.cls      # pixels of the ORIGINAL image

Each image is letterboxed to img_size x img_size as yolov5 does (aspect kept, grey padding), so images of any
size and shape share a batch; boxes are mapped back to the original pixels. img_size defaults to the size the
checkpoint was trained at (yolov5 records it): a detector run smaller than that misses the small digits, so
another size is used only when asked for, with a warning on stderr. NMS is class-agnostic: digits never
overlap, so two overlapping boxes are one digit whatever classes they were given. Boxes are scored by their
objectness alone (`conf_objectness`): the class is the re-classifier's job.
"""

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from umnist import config
from umnist.detector.checkpoint import checkpoint_model, read_yolo_checkpoint, trained_img_size
from umnist.detector.config import DetectorConfig
from umnist.errors import UmnistError
from umnist.hardware import torch_device

Image = np.ndarray | str | os.PathLike


@dataclass
class Detections:
    """The boxes found in one image, best first."""

    boxes: np.ndarray  # (N, 4) float32: x1, y1, x2, y2 in pixels of the original image
    conf: np.ndarray  # (N,) float32 detection confidence
    cls: np.ndarray  # (N,) int64 digit class given by the detector

    def __len__(self) -> int:
        return len(self.conf)


def _as_rgb(image: Image) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from a path (any format OpenCV reads) or a grey/RGB uint8 array."""
    import cv2

    if isinstance(image, str | os.PathLike):
        array = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if array is None:
            raise UmnistError(f"{image}: not a readable image")
        return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    array = np.asarray(image)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3))):
        raise UmnistError(f"image array of shape {array.shape} and dtype {array.dtype}: need uint8 (H, W) grey "
                          "or (H, W, 3) RGB")
    if array.ndim == 3 and array.shape[2] == 3:
        return array
    return np.repeat(array.reshape(array.shape[0], array.shape[1], 1), 3, axis=2)


class Detector:
    """A YOLOv5 checkpoint ready to run: on the GPU in half precision when there is one, else on the CPU."""

    def __init__(self, weights: str | os.PathLike, img_size: int | None = None, conf: float = 0.1,
                 iou: float = 0.1, max_det: int = 5, device: str = "auto", conf_objectness: bool = True,
                 scales: Sequence[float] = (1.0,), enlarged_max_px: int = 64):
        self.weights, self.device = Path(weights), torch_device(device)
        ckpt = read_yolo_checkpoint(self.weights)
        self.model = checkpoint_model(ckpt).to(self.device)
        self.half = self.device.type == "cuda"
        if self.half:
            self.model.half()
        self.stride = int(self.model.stride.max())
        trained = trained_img_size(ckpt)
        # yolov5 trains at the recorded size rounded up to a multiple of the stride (check_img_size)
        self.trained_size = None if trained is None else math.ceil(trained / self.stride) * self.stride
        self.img_size = self._input_size(img_size)
        self.conf, self.iou, self.max_det, self.conf_objectness = conf, iou, max_det, conf_objectness
        self.sizes = sorted({math.ceil(self.img_size * scale / self.stride) * self.stride for scale in scales})
        self.enlarged_max_px = enlarged_max_px

    def _input_size(self, requested: int | None) -> int:
        """The side to run at: the training size, or `requested` with a warning when it differs."""
        if requested is None:
            if self.trained_size is None:
                raise UmnistError(f"{self.weights}: the checkpoint records no training image size (no opt.imgsz): "
                                  "give the detector's input size (img_size, --img-size)")
            return self.trained_size
        if requested % self.stride:
            raise UmnistError(f"img_size={requested} must be a multiple of the model's stride {self.stride}")
        if requested != self.trained_size:
            trained = "an unrecorded size" if self.trained_size is None else f"{self.trained_size} px"
            print(f"umnist: warning: detector {self.weights} was trained at {trained}; running it at {requested} "
                  "px as asked (img_size)", file=sys.stderr)
        return requested

    @classmethod
    def from_profile(cls, weights: str | os.PathLike, profile: str | os.PathLike = "tiny", device: str = "auto",
                     img_size: int | None = None, **overrides) -> "Detector":
        """A detector with the thresholds of a profile's `detector` section (plus overrides), run at `img_size`
        (None: the size it was trained at; the section's own img_size is a training setting, not used here)."""
        cfg = config.resolve(DetectorConfig, "detector", profile, **overrides)
        return cls(weights, img_size, cfg.conf, cfg.iou, cfg.max_det, device, cfg.conf_objectness, cfg.scales,
                   cfg.enlarged_max_px)

    def detect(self, images: Sequence[Image], batch_size: int | None = None) -> list[Detections]:
        """Detections for each image, in order; `batch_size` images (default: all) share a forward pass."""
        batch_size = batch_size or max(len(images), 1)
        found = []
        for start in range(0, len(images), batch_size):
            found += self._detect_batch([_as_rgb(im) for im in images[start:start + batch_size]])
        return found

    def _detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        import torch
        from yolov5.utils.general import non_max_suppression

        per_size = [self._predict(images, size) for size in self.sizes]
        found = []
        for i in range(len(images)):
            # One image per NMS call: yolov5's NMS has a time limit per call that, when hit, silently drops the
            # rest of the batch's images (possible with many candidate boxes at a low threshold on a CPU).
            candidates = torch.cat([prediction[i:i + 1] for prediction in per_size], dim=1)
            det = non_max_suppression(candidates, self.conf, self.iou, agnostic=True, max_det=self.max_det)[0]
            det = det.cpu().numpy()
            height, width = images[i].shape[:2]
            det[:, [0, 2]] = det[:, [0, 2]].clip(0, width)
            det[:, [1, 3]] = det[:, [1, 3]].clip(0, height)
            found.append(Detections(det[:, :4].astype(np.float32), det[:, 4].astype(np.float32),
                                    det[:, 5].astype(np.int64)))
        return found

    def _predict(self, images: list[np.ndarray], size: int):
        """Raw predictions (B, N, 5 + classes) at input side `size`, their boxes (centre x, y, w, h) mapped
        back to each original image's pixels, so the predictions of several sizes can share one NMS."""
        import torch
        from yolov5.utils.augmentations import letterbox

        boxed = [letterbox(im, size, stride=self.stride, auto=False) for im in images]
        batch = np.stack([b[0] for b in boxed]).transpose(0, 3, 1, 2)  # (B, 3, S, S) RGB
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        x = (x.half() if self.half else x.float()) / 255
        with torch.inference_mode():
            prediction = self.model(x)[0].float()
        if self.conf_objectness:
            prediction = scored_by_objectness(prediction)
        for i, (_, (gain, _), (pad_x, pad_y)) in enumerate(boxed):
            prediction[i, :, 0] = (prediction[i, :, 0] - pad_x) / gain
            prediction[i, :, 1] = (prediction[i, :, 1] - pad_y) / gain
            prediction[i, :, 2:4] /= gain
        if size > self.img_size:  # an enlarged pass: only its small boxes count
            prediction[..., 4] *= prediction[..., 2:4].amax(dim=-1) <= self.enlarged_max_px
        return prediction


def scored_by_objectness(prediction):
    """yolov5 raw predictions (..., 5 + classes) whose NMS score is the objectness alone: yolov5's NMS scores a
    box objectness x its best class probability, so the best class is scaled to 1 (the argmax is kept)."""
    scored = prediction.clone()
    classes = scored[..., 5:]
    classes /= classes.amax(dim=-1, keepdim=True).clamp(min=1e-9)
    return scored

