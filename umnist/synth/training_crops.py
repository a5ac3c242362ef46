"""The classifier's crops of one scene: its digits, cut the way a detector's boxes fall, and squares of
background labelled `BACKGROUND_LABEL`.

Each scene draws these from its own random stream (seeded by the scene's entropy and a fixed tag), so the
scene's pixels do not depend on the crop settings and the crops do not depend on the number of workers.
"""

import numpy as np

from umnist.crops import cut_squares
from umnist.labels import BACKGROUND_LABEL
from umnist.synth.config import SynthConfig
from umnist.synth.scenes import ScenePlan

CROP_STREAM_TAG = 1         # appended to a scene's entropy: the crops' random stream, apart from the scene's
BACKGROUND_TRIES = 20       # candidate squares per background crop before that crop is skipped
BACKGROUND_MAX_SHARE = 0.1  # most of a background square's area, and of any digit's, that may overlap
EDGE_STEP = 64              # grey levels between neighbours that make an edge of the background's shapes


def jitter_boxes(rng: np.random.Generator, boxes: np.ndarray, jitter: float, size: int) -> np.ndarray:
    """`boxes` shifted by up to `jitter` of their side on each axis and scaled by 1 +- `jitter`, kept inside
    the scene: the loose, off-centre boxes a detector draws around a digit."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not jitter or not len(boxes):
        return boxes
    side = boxes[:, 2] - boxes[:, 0]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + rng.uniform(-jitter, jitter, (len(boxes), 2)) * side[:, None]
    half = side * rng.uniform(1 - jitter, 1 + jitter, len(boxes)) / 2
    out = np.concatenate([centre - half[:, None], centre + half[:, None]], axis=1)
    return out.clip(0, size)


def edge_points(scene: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(x, y) of the pixels where the scene steps by more than `EDGE_STEP` to its right or lower neighbour,
    outside every digit box: the edges, slivers and corners of the background's shapes, where a detector's
    false boxes fall (thin slivers pass for a "1", arcs for a "0")."""
    grey = scene.astype(np.int16)
    edge = np.zeros(scene.shape, bool)
    edge[:, :-1] |= np.abs(np.diff(grey, axis=1)) > EDGE_STEP
    edge[:-1, :] |= np.abs(np.diff(grey, axis=0)) > EDGE_STEP
    for x1, y1, x2, y2 in np.asarray(boxes, np.int64).reshape(-1, 4):
        edge[max(y1, 0):y2, max(x1, 0):x2] = False
    ys, xs = np.nonzero(edge)
    return np.stack([xs, ys], axis=1)


def background_squares(rng: np.random.Generator, boxes: np.ndarray, count: int, min_side: int,
                       size: int, edges: np.ndarray | None = None, edge_share: float = 0.0) -> np.ndarray:
    """Up to `count` squares (x1, y1, x2, y2) that hold no digit: sides log-uniform between `min_side` and
    half the scene (the range of the detector's false boxes), overlapping at most `BACKGROUND_MAX_SHARE` of
    their own area and of any digit's. A share `edge_share` of them is centred on one of `edges` (the hard
    negatives, `edge_points`), the others anywhere (mostly plain areas)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    digit_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    high = max(min_side, size // 2)
    on_edges = edges is not None and len(edges) > 0
    found = []
    for _ in range(count):
        anchored = on_edges and rng.random() < edge_share
        for _try in range(BACKGROUND_TRIES):
            side = int(round(np.exp(rng.uniform(np.log(min_side), np.log(high)))))
            if anchored:
                cx, cy = edges[rng.integers(len(edges))]
                x, y = np.clip([cx - side // 2, cy - side // 2], 0, size - side)
            else:
                x, y = rng.integers(0, size - side + 1, 2)
            ix = np.clip(np.minimum(x + side, boxes[:, 2]) - np.maximum(x, boxes[:, 0]), 0, None)
            iy = np.clip(np.minimum(y + side, boxes[:, 3]) - np.maximum(y, boxes[:, 1]), 0, None)
            overlap = ix * iy
            if np.all(overlap <= BACKGROUND_MAX_SHARE * np.minimum(side * side, digit_area)):
                found.append((x, y, x + side, y + side))
                break
    return np.asarray(found, np.int64).reshape(-1, 4)


def scene_crops(scene: np.ndarray, boxes: np.ndarray, classes: list[int], plan: ScenePlan,
                cfg: SynthConfig) -> tuple[np.ndarray, list[int]]:
    """The crops (N, crop_size, crop_size) of one scene and their labels: a crop per digit (jittered by
    `crop_jitter`), then `crops_background` background crops per digit (at least one chance per scene, so
    empty scenes give some), rounded at random."""
    rng = np.random.default_rng((*plan.entropy, CROP_STREAM_TAG))
    size = cfg.scene_size
    digit_boxes = jitter_boxes(rng, boxes, cfg.crop_jitter, size)
    expected = cfg.crops_background * max(len(classes), 1)
    count = int(expected + rng.random()) if cfg.crops_background else 0
    # Half the smallest digit: a young detector also boxes fragments smaller than any digit.
    smallest = max(cfg.digit_min_px // 2, 4)
    edges = edge_points(scene, boxes) if count and cfg.background_edge_share else None
    background = background_squares(rng, boxes, count, smallest, size, edges, cfg.background_edge_share)
    crops = cut_squares(scene, np.concatenate([digit_boxes, background.astype(np.float64)]), cfg.crop_size)
    return crops, list(classes) + [BACKGROUND_LABEL] * len(background)
