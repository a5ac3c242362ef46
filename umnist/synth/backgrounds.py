"""Scene backgrounds: a warped random checkerboard XOR filled shapes, binary (0/255) uint8.

Both recipes draw the checkerboard with ONE nearest-neighbour warp of the tiny cell grid straight to the
scene size (the grid is never upscaled first), which keeps a 2560 px background at a few tens of ms.
"""

import cv2
import numpy as np

from umnist.synth.config import SynthConfig


def _warp_grid(grid: np.ndarray, scene_to_grid: np.ndarray, size: int, border: int) -> np.ndarray:
    """Sample `grid` (cells x cells, 0/255) at every scene pixel through the 3x3 map scene -> grid coords."""
    return cv2.warpPerspective(grid, scene_to_grid.astype(np.float64), (size, size),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderMode=border, borderValue=0)


def _random_grid(rng: np.random.Generator, cells: int) -> np.ndarray:
    return (rng.integers(0, 2, (cells, cells), dtype=np.uint8) * 255).astype(np.uint8)


def _paint_layer(rng: np.random.Generator, size: int, count: int, draw) -> np.ndarray:
    """A layer of `count` filled shapes, each painted white or black over the ones before it."""
    layer = np.zeros((size, size), np.uint8)
    for _ in range(count):
        draw(layer, int(rng.choice([0, 255])))
    return layer


def solution_background(rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    """The winner's recipe: random checkerboard, rotation and perspective, XOR circles XOR polygons."""
    size, cells = cfg.scene_size, cfg.grid_cells
    # scene -> grid: rotate about the centre, then a perspective warp of the four corners.
    angle = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    c, s, half = np.cos(angle), np.sin(angle), size / 2
    rotate = np.array([[c, -s, half - c * half + s * half], [s, c, half - s * half - c * half], [0, 0, 1]])
    corners = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    jitter = rng.uniform(*cfg.perspective_scale, size=(4, 2)) * rng.choice([-1, 1], size=(4, 2)) * size / 2
    perspective = cv2.getPerspectiveTransform(corners, (corners + jitter).astype(np.float32))
    to_grid = np.diag([cells / size, cells / size, 1.0]) @ perspective @ rotate
    board = _warp_grid(_random_grid(rng, cells), to_grid, size, cv2.BORDER_WRAP)

    def circle(layer, colour):
        radius = int(rng.uniform(*cfg.circle_radius_frac) * size)
        centre = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.circle(layer, centre, max(radius, 1), colour, -1)

    def polygon(layer, colour):
        points = rng.integers(0, size, (int(rng.integers(cfg.polygon_vertices[0], cfg.polygon_vertices[1] + 1)), 2))
        cv2.fillPoly(layer, [points.astype(np.int32)], colour)

    circles = _paint_layer(rng, size, int(rng.integers(cfg.circles[0], cfg.circles[1] + 1)), circle)
    polygons = _paint_layer(rng, size, int(rng.integers(cfg.polygons[0], cfg.polygons[1] + 1)), polygon)
    return board ^ circles ^ polygons


# The organisers' published recipe, stated for a 4000 px image; lengths scale with the scene side.
COMPETITION_SIDE = 4000
COMPETITION_CELLS = (12, 23)          # checkerboard cells per side
COMPETITION_ROTATION_DEG = 45         # affine rotation +-
COMPETITION_SCALE = (0.8, 1.2)        # affine scale
COMPETITION_SHEAR_DEG = 50            # affine shear +-
COMPETITION_SHAPES = (0, 4)           # circles, and separately triangles, per image
COMPETITION_RADIUS_PX = (50, 1000)    # circle radius at 4000 px


def competition_background(rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    """The published recipe: checkerboard at full size, random affine, centre crop of half, resized back
    (done here as one warp), then XOR 0-4 filled circles and 0-4 filled triangles."""
    size = cfg.scene_size
    cells = int(rng.integers(COMPETITION_CELLS[0], COMPETITION_CELLS[1] + 1))
    half = size / 2
    angle = np.deg2rad(rng.uniform(-COMPETITION_ROTATION_DEG, COMPETITION_ROTATION_DEG))
    shear = np.tan(np.deg2rad(rng.uniform(-COMPETITION_SHEAR_DEG, COMPETITION_SHEAR_DEG)))
    scale = rng.uniform(*COMPETITION_SCALE)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = scale * rot @ np.array([[1.0, shear], [0.0, 1.0]])
    # board -> warped board: about the centre. Output pixel p sits at p/2 + size/4 of the warped board.
    affine = np.eye(3)
    affine[:2, :2] = linear
    affine[:2, 2] = np.array([half, half]) - linear @ np.array([half, half])
    crop = np.array([[0.5, 0, size / 4], [0, 0.5, size / 4], [0, 0, 1]])
    to_grid = np.diag([cells / size, cells / size, 1.0]) @ np.linalg.inv(affine) @ crop
    board = _warp_grid(_random_grid(rng, cells), to_grid, size, cv2.BORDER_CONSTANT)

    unit = size / COMPETITION_SIDE
    for _ in range(int(rng.integers(COMPETITION_SHAPES[0], COMPETITION_SHAPES[1] + 1))):
        layer = np.zeros_like(board)
        radius = max(1, int(rng.uniform(*COMPETITION_RADIUS_PX) * unit))
        cv2.circle(layer, tuple(int(v) for v in rng.integers(0, size, 2)), radius, 255, -1)
        board ^= layer
    for _ in range(int(rng.integers(COMPETITION_SHAPES[0], COMPETITION_SHAPES[1] + 1))):
        layer = np.zeros_like(board)
        cv2.fillPoly(layer, [rng.integers(0, size, (3, 2)).astype(np.int32)], 255)
        board ^= layer
    return board


BACKGROUNDS = {"solution": solution_background, "competition": competition_background}
