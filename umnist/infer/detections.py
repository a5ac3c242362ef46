"""infer's work: detect the digits of every image, cut square crops, re-classify them with invert TTA, and
stream the results through chunk files into one table (`umnist.infer`'s docstring has the whole story)."""

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from umnist import config, storage
from umnist.crops import cut_squares
from umnist.detector.config import DetectorConfig
from umnist.errors import UmnistError
from umnist.fileio import IMAGE_SUFFIXES, atomic_path, write_json
from umnist.infer.config import InferConfig
from umnist.labels import NUM_CLASSES
from umnist.tables import BOX_COLUMNS, DETECTIONS_FILE, DETECTIONS_SCHEMA, NO_DIGIT, PROB_COLUMNS, skipped_images

# read_gray reports an unreadable image in one line naming it; OpenCV's own decoder warnings would only add noise.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def list_images(images_dir: Path) -> list[Path]:
    """The images of a directory, sorted by id (file stem); a clear error when there are none."""
    if not images_dir.is_dir():
        raise UmnistError(f"{images_dir}: not a directory of images")
    paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise UmnistError(f"{images_dir}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        duplicate = next(s for s in stems if stems.count(s) > 1)
        raise UmnistError(f"{images_dir}: two images share the id '{duplicate}'")
    return paths


def read_gray(path: Path) -> np.ndarray:
    """The image as 8-bit grayscale (colour, RGBA and 16-bit files are converted); UmnistError if unreadable."""
    data = path.read_bytes()
    if not data:
        raise UmnistError(f"{path}: empty file")
    # libjpeg decodes a truncated JPEG without an error (the missing rows come out grey): a complete one has
    # its end-of-image marker after the last start-of-scan (an EXIF thumbnail's own markers come before both).
    if data[:2] == b"\xff\xd8" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        raise UmnistError(f"{path}: truncated JPEG (no end-of-image marker after the last scan)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        raise UmnistError(f"{path}: not a readable image (corrupt, truncated or not an image)")
    if min(image.shape) < 8:
        raise UmnistError(f"{path}: image of {image.shape[1]}x{image.shape[0]} px is too small")
    return image


def decoded(paths: list[Path], cfg: InferConfig, seconds: list[float]) -> Iterator[tuple[Path, np.ndarray | None, str]]:
    """(path, image or None, error) in order, decoding up to `prefetch` images ahead in threads.
    The decoding time is added to `seconds[0]`."""
    def load(path):
        start = time.perf_counter()
        try:
            return path, read_gray(path), ""
        except UmnistError as exc:
            return path, None, str(exc)
        finally:
            seconds[0] += time.perf_counter() - start

    with ThreadPoolExecutor(cfg.decode_threads) as pool:
        pending = []
        for path in paths:
            pending.append(pool.submit(load, path))
            if len(pending) > cfg.prefetch:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def _rows(image_id: str, shape, boxes, probs, error: str = "") -> dict[str, list]:
    """Table rows (column -> values) for one image; `boxes` is (n, 6): x1 y1 x2 y2 conf class."""
    height, width = shape if shape is not None else (0, 0)
    n = len(boxes)
    if n == 0:
        nan = [float("nan")]
        row = {"image_id": [image_id], "empty": [True], **{c: nan for c in BOX_COLUMNS},
               "det_conf": nan, "det_class": [NO_DIGIT], "cls_digit": [NO_DIGIT], "cls_prob": nan,
               **{c: nan for c in PROB_COLUMNS}}
    else:
        digits = probs.argmax(axis=1)
        row = {"image_id": [image_id] * n, "empty": [False] * n,
               **{c: boxes[:, i].tolist() for i, c in enumerate((*BOX_COLUMNS, "det_conf"))},
               "det_class": boxes[:, 5].astype(int).tolist(), "cls_digit": digits.tolist(),
               "cls_prob": probs[np.arange(n), digits].tolist(),
               **{c: probs[:, d].tolist() for d, c in enumerate(PROB_COLUMNS)}}
    count = len(row["image_id"])
    return {**row, "width": [width] * count, "height": [height] * count, "error": [error] * count}


def _merge(tables: list[dict[str, list]]) -> pa.Table:
    merged = {name: [v for t in tables for v in t[name]] for name in DETECTIONS_SCHEMA.names}
    return pa.table(merged, schema=DETECTIONS_SCHEMA)


class Models:
    """The detector and the classifier, loaded once; `seconds` adds up the time spent in each."""

    def __init__(self, detector_weights, classifier_weights, profile, cfg: InferConfig):
        from umnist.classifier.model import load_classifier
        from umnist.detector import Detector

        self.detector = Detector.from_profile(detector_weights, profile, cfg.device, cfg.img_size)
        self.classifier = load_classifier(classifier_weights, device=cfg.device)
        self.seconds = {"detect": 0.0, "crop_classify": 0.0}

    def __call__(self, images: list[np.ndarray], classify_batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image: boxes (n, 6) as x1 y1 x2 y2 conf class in original pixels, and TTA probabilities (n, 10)."""
        from umnist.classifier.inference import predict

        start = time.perf_counter()
        detections = [np.column_stack([d.boxes, d.conf, d.cls]) for d in self.detector.detect(images)]
        middle = time.perf_counter()
        crop_side = self.classifier.img_size
        crops = [cut_squares(image, boxes[:, :4], crop_side) for image, boxes in zip(images, detections, strict=True)]
        flat = np.concatenate(crops)
        probs = predict(self.classifier, flat, batch_size=classify_batch) if len(flat) else np.zeros((0, NUM_CLASSES))
        self.seconds["detect"] += middle - start
        self.seconds["crop_classify"] += time.perf_counter() - middle
        split = np.cumsum([len(c) for c in crops])[:-1]
        return list(zip(detections, np.split(probs, split), strict=True))


def model_profile(detector_weights: str | os.PathLike) -> str | dict:
    """The profile to run a detector with when none is given: the settings its weights record (umnist's
    trainer writes its profile's detector, infer and postprocess sections into the final weights), else
    `config.DEFAULT_PROFILE`, with a note (a yolov5 checkpoint trained elsewhere records none). A missing file
    gets the default quietly: loading the models reports it, after the images and the config are checked, so
    that a run with several wrong inputs names them in the order a user gives them."""
    from umnist.detector.checkpoint import read_yolo_checkpoint, recorded_profile

    if not Path(detector_weights).is_file():
        return config.DEFAULT_PROFILE
    recorded = recorded_profile(read_yolo_checkpoint(detector_weights))
    if recorded is None:
        print(f"umnist: {detector_weights} records no settings to run with; using profile {config.DEFAULT_PROFILE} "
              "(give --profile to choose)", file=sys.stderr)
        return config.DEFAULT_PROFILE
    return {**recorded, "_profile": f"{recorded.get('_profile')}, as recorded in {detector_weights}"}


def run(images: str | os.PathLike, detector: str | os.PathLike, classifier: str | os.PathLike,
        out: str | os.PathLike, profile: str | os.PathLike | dict | None = None, *, resume: bool = False,
        progress: bool = True, **overrides) -> dict:
    """Detect and classify every image of `images` (a directory or object-store prefix) with the `detector` and
    `classifier` weights into `out/detections.parquet`; with `resume`, images already in finished chunk files
    are not redone. `profile` None: the settings the detector's weights record (`model_profile`). Returns its
    summary: `images` and `detections` (counts of the table), `skipped_images` (id -> why it could not be read)
    and `speed` (this call's `infer_stats.json`; None when nothing was left to infer)."""
    if profile is None:
        profile = model_profile(detector)
    cfg = config.resolve(InferConfig, "infer", profile, **overrides)
    detector_weights, classifier_weights, out = detector, classifier, Path(out)
    with tempfile.TemporaryDirectory(prefix="umnist-infer-") as work:
        images_dir = storage.fetch(images, work, require_marker=False)
        paths = list_images(images_dir)[cfg.part::cfg.parts]
        chunk_dir = out / ".chunks"
        if chunk_dir.exists() and not resume:
            for stale in chunk_dir.glob("*.parquet"):
                stale.unlink()
        done = {p.stem for p in chunk_dir.glob("*.parquet")}
        chunks = [paths[i:i + cfg.chunk_images] for i in range(0, len(paths), cfg.chunk_images)]
        todo = [(k, chunk) for k, chunk in enumerate(chunks) if _chunk_name(k) not in done]
        # The weights are checked before anything is written, so a wrong file leaves no output behind; they are
        # loaded even when every chunk is done, so that config.yaml records the sizes the models run at.
        models = Models(detector_weights, classifier_weights, profile, cfg)
        result = out / DETECTIONS_FILE
        if resume and result.is_file():  # killed after its result, while removing its chunks: nothing to redo
            shutil.rmtree(chunk_dir, ignore_errors=True)
            return _summary(result, None)
        # A fresh run removes an older result first, so a result beside chunk files is always this run's.
        result.unlink(missing_ok=True)
        out_existed = out.exists()
        chunk_dir.mkdir(parents=True, exist_ok=True)
        started, decode_seconds = time.perf_counter(), [0.0]
        bar = tqdm(total=len(paths), initial=len(paths) - sum(len(c) for _, c in todo), desc="infer",
                   unit="img", disable=not progress)
        try:
            for k, chunk in todo:
                _infer_chunk(models, chunk, cfg, decode_seconds, bar, chunk_dir / f"{_chunk_name(k)}.parquet")
        except UmnistError:
            if not any(chunk_dir.iterdir()):  # no finished chunk to resume from: leave no trace
                chunk_dir.rmdir()
                if not out_existed and not any(out.iterdir()):
                    out.rmdir()
            raise
        finally:
            bar.close()
        speed = None
        if todo:
            elapsed = time.perf_counter() - started
            done_now = sum(len(c) for _, c in todo)
            speed = {"images": done_now, "seconds": round(elapsed, 3), "images_per_s": round(done_now / elapsed, 3),
                     **{f"{k}_seconds": round(v, 3) for k, v in models.seconds.items()},
                     "decode_seconds_in_threads": round(decode_seconds[0], 3)}
            write_json(out / "infer_stats.json", speed)
        # config.yaml first, detections.parquet next (the run's commit point), the chunk files last: a kill
        # between any two of these leaves a run that --resume completes without redoing any image.
        config.save(cfg, "infer", out, profile, detector_weights=str(detector_weights),
                    classifier_weights=str(classifier_weights), images=str(images),
                    detector_img_size=models.detector.img_size,
                    detector_trained_img_size=models.detector.trained_size,
                    classifier_img_size=models.classifier.img_size)
        detector_cfg = config.resolve(DetectorConfig, "detector", profile, img_size=models.detector.img_size)
        config.save(detector_cfg, "detector", out, profile)
        # The floor meant for these models, which `umnist postprocess` on this folder uses unless told otherwise.
        config.save(config.resolve(config.section_class("postprocess"), "postprocess", profile), "postprocess", out,
                    profile)
        with atomic_path(result) as tmp:
            with pq.ParquetWriter(tmp, DETECTIONS_SCHEMA) as writer:
                for k in range(len(chunks)):
                    writer.write_table(pq.read_table(chunk_dir / f"{_chunk_name(k)}.parquet",
                                                     schema=DETECTIONS_SCHEMA))
        shutil.rmtree(chunk_dir)
    return _summary(result, speed)


def _summary(result: Path, speed: dict | None) -> dict:
    table = pq.read_table(result, columns=["image_id", "empty", "error"]).to_pandas()
    return {"images": int(table["image_id"].nunique()), "detections": int((~table["empty"]).sum()),
            "skipped_images": skipped_images(table), "speed": speed}


def _chunk_name(k: int) -> str:
    return f"chunk-{k:05d}"


def _infer_chunk(models: Models, chunk: list[Path], cfg: InferConfig, decode_seconds: list[float], bar,
                 target: Path) -> None:
    """Detect and classify one chunk's images into the chunk file `target` (written only when complete)."""
    tables = []
    batch: list[tuple[Path, np.ndarray]] = []
    for path, image, error in decoded(chunk, cfg, decode_seconds):
        if image is None:
            if cfg.bad_images == "fail":
                raise UmnistError(f"{error} (bad_images=fail; bad_images=skip records it and goes on)")
            tqdm.write(f"umnist infer: skipped {error}", file=sys.stderr)
            tables.append(_rows(path.stem, None, np.zeros((0, 6)), None, error))
            bar.update()
            continue
        batch.append((path, image))
        if len(batch) == cfg.batch_images:
            tables += _infer_batch(models, batch, cfg)
            bar.update(len(batch))
            batch = []
    if batch:
        tables += _infer_batch(models, batch, cfg)
        bar.update(len(batch))
    with atomic_path(target) as tmp:
        pq.write_table(_merge(tables), tmp)


def _infer_batch(models: Models, batch: list[tuple[Path, np.ndarray]], cfg: InferConfig) -> list[dict]:
    results = models([image for _, image in batch], cfg.classify_batch)
    return [_rows(path.stem, image.shape, boxes, probs)
            for (path, image), (boxes, probs) in zip(batch, results, strict=True)]
