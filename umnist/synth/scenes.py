"""One detection scene: the digit plan (which MNIST instances), placement without overlap, and rendering.

Planning is sequential and cheap (the class balance and the MNIST rotation are global state); rendering is
independent per scene and runs in worker processes, each scene with its own seeded random stream, so the
output does not depend on the number of workers.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from umnist.errors import UmnistError
from umnist.synth.backgrounds import BACKGROUNDS, COMPETITION_SIDE
from umnist.synth.config import SynthConfig

PLACEMENT_ROUNDS = 200       # rounds of candidate positions before giving up (never reached in practice)
CANDIDATES_PER_ROUND = 16    # positions tried at once per round, vectorised
V_LAW_FACTORS = np.arange(1, 76)
# The competition's V-shaped law: p(f) falls linearly from f=1 to f=38, then rises again to f=75.
V_LAW_P = (np.abs(V_LAW_FACTORS - 38) + 1) / (np.abs(V_LAW_FACTORS - 38) + 1).sum()


@dataclass(frozen=True)
class ScenePlan:
    scene_id: str
    entropy: tuple[int, ...]     # seeds this scene's random stream
    mnist_indices: tuple[int, ...]  # the MNIST instances to draw, in order; empty for an empty scene
    digits: tuple[int, ...]         # their classes


class DigitPlanner:
    """Hands out MNIST instances: always the least-used class next, each class's instances in turn."""

    def __init__(self, labels: np.ndarray, pool: np.ndarray, rng: np.random.Generator):
        self.rng = rng
        self.queues = [pool[labels[pool] == c] for c in range(10)]
        self.position = [0] * 10
        self.orders = [rng.permutation(q) for q in self.queues]
        # A class with no instance in the pool can never be drawn.
        self.counts = np.array([0 if len(q) else np.inf for q in self.queues], dtype=np.float64)

    def next(self, largest: int = 9) -> tuple[int, int]:
        """The next MNIST instance and its class, a class no larger than `largest`."""
        allowed = self.counts[:largest + 1]
        if not np.isfinite(allowed).any():
            raise UmnistError(f"no MNIST digit of 0..{largest} in the pool: max_sum cannot be met")
        least = np.flatnonzero(allowed == allowed.min())
        c = int(self.rng.choice(least))
        if self.position[c] == len(self.orders[c]):
            self.orders[c], self.position[c] = self.rng.permutation(self.queues[c]), 0
        index = int(self.orders[c][self.position[c]])
        self.position[c] += 1
        self.counts[c] += 1
        return index, c


def plan_split(split: str, scenes: int, empty: int, planner: DigitPlanner, cfg: SynthConfig,
               rng: np.random.Generator) -> list[ScenePlan]:
    empty_ids = set(rng.choice(scenes, size=empty, replace=False).tolist()) if empty else set()
    split_code = {"train": 0, "val": 1, "test": 2}[split]
    plans = []
    for i in range(scenes):
        count = 0 if i in empty_ids else int(rng.integers(cfg.digits_min, cfg.digits_max + 1))
        drawn = []
        for _ in range(count):
            budget = 9 if cfg.max_sum is None else min(9, cfg.max_sum - sum(c for _, c in drawn))
            drawn.append(planner.next(budget))
        plans.append(ScenePlan(f"{split}_{i:06d}", (cfg.seed, split_code, i),
                               tuple(d[0] for d in drawn), tuple(d[1] for d in drawn)))
    return plans


def _side_sampler(rng: np.random.Generator, cfg: SynthConfig):
    size = cfg.scene_size
    low = max(cfg.digit_min_px, int(np.ceil(cfg.digit_min_frac * size)))
    high = max(low, int(cfg.digit_max_frac * size))
    if cfg.mode == "solution":
        return lambda: int(rng.integers(low, high + 1))

    def competition_side() -> int:
        factor = int(rng.choice(V_LAW_FACTORS, p=V_LAW_P))
        pixels = 14 if factor == 1 and rng.random() < 0.5 else 28 * factor
        return int(np.clip(round(pixels * size / COMPETITION_SIDE), cfg.digit_min_px, size))

    return competition_side


def place_boxes(rng: np.random.Generator, count: int, cfg: SynthConfig) -> np.ndarray:
    """`count` square cells (x1, y1, x2, y2), no two sharing a pixel; sizes and positions retried together."""
    size = cfg.scene_size
    sample_side = _side_sampler(rng, cfg)
    boxes = np.zeros((0, 4), np.int64)
    for _ in range(count):
        for _round in range(PLACEMENT_ROUNDS):
            side = sample_side()
            xy = rng.integers(0, size - side + 1, (CANDIDATES_PER_ROUND, 2))
            cand = np.concatenate([xy, xy + side], axis=1)
            overlap = ((cand[:, None, 0] < boxes[None, :, 2]) & (boxes[None, :, 0] < cand[:, None, 2])
                       & (cand[:, None, 1] < boxes[None, :, 3]) & (boxes[None, :, 1] < cand[:, None, 3]))
            free = np.flatnonzero(~overlap.any(axis=1))
            if len(free):
                boxes = np.vstack([boxes, cand[free[0]]])
                break
        else:
            raise RuntimeError(f"could not place digit {len(boxes) + 1} of {count} in a {size} px scene")
    return boxes


def digit_mask(digit: np.ndarray, side: int) -> np.ndarray:
    """The 28x28 MNIST digit at side x side, binarised with Otsu (0/255).

    Above 20 px the write-up resizes with nearest neighbour: Otsu on the 28x28 then a nearest resize gives the
    same picture at a fraction of the cost. Below, cubic resize first, then Otsu.
    """
    if side > 20:
        _, small = cv2.threshold(digit, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        return cv2.resize(small, (side, side), interpolation=cv2.INTER_NEAREST)
    resized = cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC)
    _, mask = cv2.threshold(resized, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    if not mask.any():
        mask = np.where(resized > 0, 255, 0).astype(np.uint8)
    return mask


def render_scene(plan: ScenePlan, cfg: SynthConfig, mnist_images: np.ndarray):
    """The scene (S x S uint8, 0/255) and the tight boxes (n, 4) of its digits' pixels, as x1, y1, x2, y2."""
    rng = np.random.default_rng(plan.entropy)
    scene = BACKGROUNDS[cfg.mode](rng, cfg)
    cells = place_boxes(rng, len(plan.mnist_indices), cfg)
    tight = np.zeros((len(cells), 4), np.int64)
    for k, (index, (x1, y1, x2, y2)) in enumerate(zip(plan.mnist_indices, cells, strict=True)):
        mask = digit_mask(mnist_images[index], int(x2 - x1))
        scene[y1:y2, x1:x2] ^= mask
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        tight[k] = (x1 + cols[0], y1 + rows[0], x1 + cols[-1] + 1, y1 + rows[-1] + 1)
    return scene, tight
