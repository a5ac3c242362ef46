"""Square crops around boxes: the same cut at training (synth) and at inference (infer).

The write-up: "Some [boxes] have skewed aspect ratio, pick the larger side and crop a square. Classifier is
trained with square images. Changing the aspect ratio reduces its accuracy."
"""

import cv2
import numpy as np


def square_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Integer squares (x1, y1, x2, y2) centred on `boxes`, side = the box's longer side, clipped to the image."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    x1 = np.floor(cx - side / 2)
    y1 = np.floor(cy - side / 2)
    squares = np.stack([x1, y1, x1 + np.ceil(side), y1 + np.ceil(side)], axis=1)
    squares[:, [0, 2]] = squares[:, [0, 2]].clip(0, width)
    squares[:, [1, 3]] = squares[:, [1, 3]].clip(0, height)
    squares[:, 2:] = np.maximum(squares[:, 2:], squares[:, :2] + 1).clip(max=[width, height])
    squares[:, :2] = np.minimum(squares[:, :2], squares[:, 2:] - 1)
    return squares.astype(np.int64)


def resize_square(patch: np.ndarray, size: int) -> np.ndarray:
    """Resize a crop to size x size: area averaging when shrinking (no aliasing of thin strokes), else cubic."""
    shrink = patch.shape[0] > size or patch.shape[1] > size
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def cut_squares(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Crops (N, size, size[, C]) of `image`, one square per box (see `square_boxes`)."""
    height, width = image.shape[:2]
    squares = square_boxes(boxes, width, height)
    out = np.empty((len(squares), size, size, *image.shape[2:]), dtype=image.dtype)
    for i, (x1, y1, x2, y2) in enumerate(squares):
        out[i] = resize_square(image[y1:y2, x1:x2], size)
    return out
