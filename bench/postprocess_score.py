"""Seconds for post-processing and scoring at the competition's size (28,000 images, 3-5 boxes each).

    python bench/postprocess_score.py [--images 28000]

The detections are random (boxes, digits, probabilities), so only the timings mean something.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from umnist import postprocess, score


def random_detections(images: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.integers(3, 6, images)
    ids = np.repeat([f"{i:06d}" for i in range(images)], counts)
    n = len(ids)
    x1, y1 = rng.uniform(0, 3500, n), rng.uniform(0, 3500, n)
    side = rng.uniform(14, 500, n)
    digits = rng.integers(0, 10, n)
    probs = rng.dirichlet(np.ones(10), n).astype(np.float32)
    return pd.DataFrame({
        "image_id": ids, "empty": False, "x1": x1, "y1": y1, "x2": x1 + side, "y2": y1 + side,
        "det_conf": rng.uniform(0.1, 1, n), "det_class": digits, "cls_digit": digits,
        "cls_prob": rng.uniform(0.3, 1, n).astype(np.float32),
        **{f"p{k}": probs[:, k] for k in range(10)}, "width": 4000, "height": 4000,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=28_000)
    args = parser.parse_args()
    detections = random_detections(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        detections.to_parquet(tmp / "detections.parquet")
        start = time.perf_counter()
        postprocess.run(tmp / "detections.parquet", tmp / "pred")
        postprocessed = time.perf_counter()
        sums = pd.read_csv(tmp / "pred" / "submission.csv", dtype={"id": str})
        sums["digit_sum"] = np.random.default_rng(1).integers(0, 28, len(sums))
        sums.to_csv(tmp / "train.csv", index=False)
        scoring = time.perf_counter()
        score.run(tmp / "pred", tmp / "train.csv", tmp / "score")
        scored = time.perf_counter()
    print(f"{args.images} images, {len(detections)} detections: postprocess {postprocessed - start:.2f} s, "
          f"score (report without images) {scored - scoring:.2f} s")


if __name__ == "__main__":
    main()
