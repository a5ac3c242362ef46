"""Settings of the synth stage. Defaults are the `full` profile: the winning solution's data (docs/recipe.md)."""

from dataclasses import dataclass
from typing import Literal

from umnist.config import opt


@dataclass
class SynthConfig:
    mode: Literal["solution", "competition"] = opt(
        "solution", "background and digit-scale recipe: 'solution' = the winner's generator (10x10 checkerboard, "
        "rotation + perspective, uniform digit sides); 'competition' = the organisers' published recipe "
        "(12-23 cell checkerboard with affine warp, circles and triangles, V-shaped integer scale law)")
    scene_size: int = opt(2560, "scene side in px: the detector's input size in the winning solution")
    scenes_train: int = opt(34_000, "training scenes, empty ones included (the write-up's 34,000)")
    empty_train: int = opt(4_000, "training scenes with no digit, to reduce background confusion (write-up)")
    scenes_val: int = opt(2_000, "validation scenes (write-up: 2,000)")
    empty_val: int = opt(0, "validation scenes with no digit (write-up: none)")
    digits_min: int = opt(3, "fewest digits in a non-empty scene (the competition has 3-5)")
    digits_max: int = opt(5, "most digits in a non-empty scene")
    max_sum: int | None = opt(
        None, "largest digit sum of a scene; None = no limit (the winner's generator: classes stay exactly "
        "balanced); 27 = the competition's sums, for held-out sets scored like the competition's train.csv")
    digit_min_frac: float = opt(10 / 4000, "smallest digit side as a share of the scene side (10 px of 4000); "
                                "'competition' mode draws sides from its own law (14 to 2100 px of 4000)")
    cell_frac: tuple[float, float] = opt(
        (0.03, 0.5), "'solution' mode: side of a digit's location cell as a share of the scene side (min, max); "
        "the winner's generator draws cells of 3-50 %, and the digit side uniform up to the cell's (so up to "
        "~2000 px of 4000: the competition's digits reach 2100)")
    location_grid: int = opt(64, "'solution' mode: cells per side of the coarse grid the free-rectangle search "
                             "runs on (the winner's ran on ~50); finer places more digits, costs more")
    digit_min_px: int = opt(6, "floor on the digit side in px: the write-up's smallest digit is 6x6")
    grid_cells: int = opt(10, "checkerboard cells per side in 'solution' mode (random 10x10 board)")
    rotate_deg: float = opt(20.0, "checkerboard rotation range +- degrees in 'solution' mode")
    perspective_scale: tuple[float, float] = opt((0.3, 0.4), "perspective corner jitter (share of the side)")
    circles: tuple[int, int] = opt((3, 5), "filled circles per scene in 'solution' mode (min, max)")
    circle_radius_frac: tuple[float, float] = opt((0.1, 0.3), "circle radius as a share of the side")
    polygons: tuple[int, int] = opt((3, 5), "filled polygons per scene in 'solution' mode (min, max)")
    polygon_vertices: tuple[int, int] = opt((3, 5), "vertices per polygon (min, max)")
    jpeg_quality: int = opt(95, "JPEG quality of the scenes: near-lossless, like the competition's JPEGs")
    crop_size: int = opt(128, "classifier crop side: the write-up classifies 128x128 crops at > 99.9 %")
    crop_jitter: float = opt(
        0.0, "cut each digit crop off-centre and off-size by up to this share of its side (uniform shift on "
        "each axis and side scale 1 +- jitter), with the scene around it, as a detector's boxes fall; 0 = the "
        "exact square, as the winner cut them")
    crops_background: float = opt(
        0.0, "background crops per digit crop, labelled 10 (no digit): squares that hold no digit, cut like "
        "the digit crops. The classifier learns to spread its probability over all ten digits on them, so "
        "postprocess's probability floor drops the background the detector mistakes for a digit (the write-up "
        "relies on the classifier's low confidence there); 0 = digits only, as the winner trained")
    background_edge_share: float = opt(
        0.5, "share of the background crops centred on an edge of the background's shapes (thin slivers, "
        "corners, arcs: where a detector's false boxes fall and a plain square teaches nothing); the others "
        "fall anywhere. Only with crops_background > 0")
    crops_mnist: bool = opt(True, "add raw MNIST digits resized to crop_size to the crop set (write-up: 70k)")
    mnist_crops_per_class: int | None = opt(
        None, "cap on raw-MNIST crops per class; None = as many as the rarest class has (balanced)")
    crop_shard_size: int = opt(4096, "crops per .npz shard: 64 MiB of pixels, small enough to stream")
    mnist_splits: tuple[str, ...] = opt(("train", "test"), "MNIST splits to draw digits from (all 70,000)")
    mnist_val_fraction: float = opt(
        0.1, "share of MNIST instances held out for val scenes and val crops, so the classifier's validation "
        "digits are never seen in training (the original validated on its own training digits)")
    seed: int = opt(0, "seed of the scenes: same seed and config give byte-identical output")
    split_seed: int = opt(0, "seed of the MNIST train/val split alone: keep it when changing `seed` for a "
                          "held-out set, so its digits stay among those no training run has seen")

    def check(self) -> list[str]:
        problems = []
        for name in ("scene_size", "scenes_train", "empty_train", "scenes_val", "empty_val", "crop_size",
                     "crop_shard_size", "digit_min_px", "grid_cells", "jpeg_quality"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} must not be negative")
        if problems:
            return problems
        if self.empty_train > self.scenes_train:
            problems.append(f"empty_train={self.empty_train} exceeds scenes_train={self.scenes_train}")
        if self.empty_val > self.scenes_val:
            problems.append(f"empty_val={self.empty_val} exceeds scenes_val={self.scenes_val}")
        if not 1 <= self.digits_min <= self.digits_max:
            problems.append(f"digits {self.digits_min}..{self.digits_max}: need 1 <= digits_min <= digits_max")
        if self.max_sum is not None and self.max_sum < 0:
            problems.append(f"max_sum={self.max_sum} must not be negative")
        if self.scene_size < 32:
            problems.append(f"scene_size={self.scene_size} is too small (at least 32 px)")
        smallest = max(self.digit_min_px, self.digit_min_frac * self.scene_size)
        if not 0 < self.digit_min_frac <= 1:
            problems.append(f"digit_min_frac={self.digit_min_frac} must be within (0, 1]")
        elif not 0 < self.cell_frac[0] <= self.cell_frac[1] <= 1:
            problems.append(f"cell_frac={list(self.cell_frac)} must be (min, max) with 0 < min <= max <= 1")
        elif self.location_grid < 4:
            problems.append(f"location_grid={self.location_grid} must be at least 4")
        elif self.mode == "solution" and smallest > self.cell_frac[1] * self.scene_size:
            problems.append(f"digit_min_px={self.digit_min_px} is larger than the largest digit side "
                            f"{self.cell_frac[1] * self.scene_size:.1f} px of a {self.scene_size} px scene")
        elif self.digits_max * smallest ** 2 > 0.5 * self.scene_size ** 2:
            problems.append(f"{self.digits_max} digits of at least {smallest:.0f} px cannot be "
                            f"placed without overlap in a {self.scene_size} px scene")
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"jpeg_quality={self.jpeg_quality} must be within 1..100")
        if not 0 <= self.mnist_val_fraction < 1:
            problems.append(f"mnist_val_fraction={self.mnist_val_fraction} must be within [0, 1)")
        for name in ("circles", "polygons", "polygon_vertices", "perspective_scale", "circle_radius_frac"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                problems.append(f"{name}={list(getattr(self, name))} must be (min, max) with 0 <= min <= max")
        if self.polygon_vertices[0] < 3:
            problems.append(f"polygon_vertices={list(self.polygon_vertices)}: a polygon needs 3 vertices")
        if not 0 <= self.crop_jitter < 0.5:
            problems.append(f"crop_jitter={self.crop_jitter} must be within [0, 0.5)")
        if self.crops_background < 0:
            problems.append(f"crops_background={self.crops_background} must not be negative")
        if not 0 <= self.background_edge_share <= 1:
            problems.append(f"background_edge_share={self.background_edge_share} must be within [0, 1]")
        if self.crop_size and self.crop_shard_size < 1:
            problems.append("crop_shard_size must be at least 1")
        if set(self.mnist_splits) - {"train", "test"} or not self.mnist_splits:
            problems.append(f"mnist_splits={list(self.mnist_splits)}: use 'train' and/or 'test'")
        return problems
