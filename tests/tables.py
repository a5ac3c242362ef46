"""Hand-made detection tables in the infer format (docs/formats.md), for post-processing and scoring tests."""

import numpy as np
import pandas as pd


def detection(image_id, box, digit, prob=0.9, det_class=None, conf=0.8, size=4000) -> dict:
    """One detection row: `box` is (x1, y1, x2, y2) in original pixels; det_class defaults to `digit`."""
    probs = np.full(10, (1 - prob) / 9)
    probs[digit] = prob
    x1, y1, x2, y2 = box
    return {"image_id": image_id, "empty": False, "x1": float(x1), "y1": float(y1), "x2": float(x2),
            "y2": float(y2), "det_conf": conf, "det_class": digit if det_class is None else det_class,
            "cls_digit": digit, "cls_prob": prob, **{f"p{k}": float(p) for k, p in enumerate(probs)},
            "width": size, "height": size}


def empty(image_id, size=4000) -> dict:
    """The row infer writes for an image without detections."""
    return {"image_id": image_id, "empty": True, "x1": np.nan, "y1": np.nan, "x2": np.nan, "y2": np.nan,
            "det_conf": np.nan, "det_class": -1, "cls_digit": -1, "cls_prob": np.nan,
            **{f"p{k}": np.nan for k in range(10)}, "width": size, "height": size}


def table(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))
