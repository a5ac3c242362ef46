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


def largest_empty_rectangle(occupied: np.ndarray) -> tuple[int, int, int, int]:
    """The largest all-free rectangle of a boolean grid, as (row1, col1, row2, col2) with exclusive ends.

    Row by row, each column's run of free cells above it is a bar of a histogram; the largest rectangle
    under the histogram (a stack of rising bars) over all rows is the answer. O(rows x cols).
    """
    rows, cols = occupied.shape
    heights = np.zeros(cols, np.int64)
    best, best_rect = 0, (0, 0, 0, 0)
    for r in range(rows):
        heights = np.where(occupied[r], 0, heights + 1)
        stack: list[int] = []
        for c in range(cols + 1):
            h = int(heights[c]) if c < cols else 0
            while stack and heights[stack[-1]] >= h:
                top = stack.pop()
                left = stack[-1] + 1 if stack else 0
                area = int(heights[top]) * (c - left)
                if area > best:
                    best, best_rect = area, (r + 1 - int(heights[top]), left, r + 1, c)
            stack.append(c)
    return best_rect


def solution_cells(rng: np.random.Generator, count: int, cfg: SynthConfig) -> np.ndarray:
    """`count` digit squares drawn the winner's way: a location cell from a largest-empty-rectangle search on a
    coarse grid (cell side uniform in `cell_frac` of the scene, cut to the free rectangle), then the digit's
    side uniform between the smallest digit and the cell's side, at a random place inside the cell."""
    size, grid = cfg.scene_size, cfg.location_grid
    unit = size / grid
    smallest = max(cfg.digit_min_px, int(np.ceil(cfg.digit_min_frac * size)))
    min_units = max(1, int(np.ceil(smallest / unit)), int(round(cfg.cell_frac[0] * grid)))
    max_units = max(min_units, int(cfg.cell_frac[1] * grid))
    occupied = np.zeros((grid, grid), bool)
    squares = np.zeros((count, 4), np.int64)
    for k in range(count):
        r1, c1, r2, c2 = largest_empty_rectangle(occupied)
        side = min(int(rng.integers(min_units, max_units + 1)), r2 - r1, c2 - c1)
        if side * unit < smallest:
            raise RuntimeError(f"no free cell for digit {k + 1} of {count} in a {size} px scene")
        row, col = int(rng.integers(r1, r2 - side + 1)), int(rng.integers(c1, c2 - side + 1))
        occupied[row:row + side, col:col + side] = True
        x0, y0 = int(np.ceil(col * unit)), int(np.ceil(row * unit))
        cell_px = int((col + side) * unit) - x0
        digit = int(rng.integers(smallest, cell_px + 1))
        x, y = x0 + int(rng.integers(0, cell_px - digit + 1)), y0 + int(rng.integers(0, cell_px - digit + 1))
        squares[k] = (x, y, x + digit, y + digit)
    return squares


def competition_side(rng: np.random.Generator, cfg: SynthConfig) -> int:
    """A digit side drawn with the organisers' V-shaped law of integer factors, scaled to the scene."""
    factor = int(rng.choice(V_LAW_FACTORS, p=V_LAW_P))
    pixels = 14 if factor == 1 and rng.random() < 0.5 else 28 * factor
    return int(np.clip(round(pixels * cfg.scene_size / COMPETITION_SIDE), cfg.digit_min_px, cfg.scene_size))


def place_boxes(rng: np.random.Generator, count: int, cfg: SynthConfig) -> np.ndarray:
    """`count` digit squares (x1, y1, x2, y2), no two sharing a pixel.

    'solution' mode: `solution_cells`. 'competition' mode: the organisers' way, a side from the V-shaped law
    and a uniform position, both drawn again until the square overlaps no earlier one.
    """
    if cfg.mode == "solution":
        return solution_cells(rng, count, cfg)
    size = cfg.scene_size
    boxes = np.zeros((0, 4), np.int64)
    for _ in range(count):
        for _round in range(PLACEMENT_ROUNDS):
            side = competition_side(rng, cfg)
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
    """The scene (S x S uint8, 0/255) and its digits' boxes (n, 4) as x1, y1, x2, y2.

    A box is the digit's whole square bitmap (the 28x28 MNIST frame resized), as the winner labels it, not the
    tight box of its ink: the ink box of a thin "1" can be 1-2 px wide, and yolov5 drops targets of 2 px or less.
    """
    rng = np.random.default_rng(plan.entropy)
    scene = BACKGROUNDS[cfg.mode](rng, cfg)
    squares = place_boxes(rng, len(plan.mnist_indices), cfg)
    for index, (x1, y1, x2, y2) in zip(plan.mnist_indices, squares, strict=True):
        scene[y1:y2, x1:x2] ^= digit_mask(mnist_images[index], int(x2 - x1))
    return scene, squares
