"""The `infer` section: batching, decoding, resume chunks, parts, bad images, device and detector input size."""

from dataclasses import dataclass
from typing import ClassVar, Literal

from umnist.config import opt


@dataclass
class InferConfig:
    RENAMED: ClassVar[dict[str, str]] = {"shard": "part", "shards": "parts", "part_images": "chunk_images"}  # 0.2
    batch_images: int = opt(4, "images per detector forward: 4 x 2560^2 fits any datacenter GPU; CPU gains nothing")
    prefetch: int = opt(8, "images decoded ahead by background threads, so decoding overlaps the model work")
    decode_threads: int = opt(2, "threads decoding JPEGs (OpenCV releases the GIL while decoding)")
    classify_batch: int = opt(256, "crops per classifier forward (x2 with the inverted copies)")
    chunk_images: int = opt(500, "images per chunk file: the unit of resume, and the memory held at a time")
    part: int = opt(0, "which part of the sorted image list this run does (0-based), for parallel runs")
    parts: int = opt(1, "how many parts the image list is split into (image i goes to part i % parts)")
    bad_images: Literal["skip", "fail"] = opt(
        "skip", "an unreadable image: 'skip' records it (error column, empty row, predicted sum 0) and goes on, "
        "so a 28,000-image run never dies on one file; 'fail' stops with its name")
    device: str = opt("auto", "torch device: 'auto' = the GPU when there is one, else the CPU")
    img_size: int | None = opt(
        None, "detector input side in px; null = the size the detector was trained at (its checkpoint records "
        "it). Another size is used with a warning: below the training size the small digits are missed")

    def check(self) -> list[str]:
        problems = [f"{name}={getattr(self, name)} must be at least 1" for name in
                    ("batch_images", "prefetch", "decode_threads", "classify_batch", "chunk_images", "parts")
                    if getattr(self, name) < 1]
        if self.img_size is not None and (self.img_size < 64 or self.img_size % 32):
            problems.append(f"img_size={self.img_size} must be a multiple of 32, at least 64 (or null)")
        if not 0 <= self.part < max(self.parts, 1):
            problems.append(f"part={self.part} must be within 0..{self.parts - 1}")
        return problems
