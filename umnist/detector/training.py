"""train-detector: YOLOv5 from scratch on the synth stage's scenes, through yolov5's own training loop.

    from umnist import detector
    detector.run("data", "runs/detector", "tiny")                       # data = a synth output folder
    detector.run("data", "runs/detector", resume=True, max_minutes=30)  # continue a killed/stopped run

yolov5's `train.train()` runs unchanged; umnist watches it through its callbacks (`_Monitor`) and ends it by
raising `_Stop` from a callback right after an epoch's checkpoint is written (or mid-epoch when the time budget
is spent). That skips yolov5's own finish, so `_finish` strips the optimizer from the final weights itself.
Output layout: docs/formats.md ("train-detector").
"""

import csv
import io
import json
import os
import shutil
import sys
from copy import deepcopy
from datetime import datetime
from pathlib import Path
from time import monotonic

from umnist import config, hardware, yolo_compat
from umnist.detector.checkpoint import PROFILE_KEY, RECORDED_SECTIONS, read_yolo_checkpoint, recorded_profile
from umnist.detector.config import DetectorConfig
from umnist.errors import UmnistError
from umnist.fileio import atomic_path, write_json, write_text, write_yaml
from umnist.labels import NUM_CLASSES

METRICS_COLUMNS = ("epoch", "box_loss", "obj_loss", "cls_loss", "precision", "recall", "mAP50", "mAP50_95",
                   "seconds", "images_per_s")
STOP_REASONS = ("epochs_done", "obj_loss_reached", "time_budget")


class _Stop(Exception):
    """Raised from a yolov5 callback to end training; `reason` is one of STOP_REASONS."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _prepare_data(detection: Path, work: Path) -> Path:
    """Write yolov5's dataset file with absolute image lists under `work`; return its path.

    The synth data.yaml says `path: .`, which yolov5 would resolve against its own package folder; image lists
    in our output also keep yolov5's label caches (`*.cache`) out of the input data folder.
    """
    lists = {}
    for split in ("train", "val"):
        images = sorted((detection / "images" / split).glob("*.jpg"))
        if not images:
            raise UmnistError(f"{detection / 'images' / split}: no .jpg scenes (expected the synth stage's output)")
        lists[split] = write_text(work / f"{split}.txt", "".join(f"{p.resolve()}\n" for p in images))
    return write_yaml(work / "data.yaml", {"path": str(work.resolve()), "train": lists["train"].name,
                                           "val": lists["val"].name, "nc": NUM_CLASSES,
                                           "names": [str(d) for d in range(NUM_CLASSES)]})


def _yolov5_options(train_module, cfg: DetectorConfig, batch: int, out: Path, data_yaml: Path, model_yaml: str,
                    weights: str, resume: bool):
    """yolov5's option namespace: its own defaults (read with an empty command line) plus our settings."""
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        opt = train_module.parse_opt(known=True)
    finally:
        sys.argv = argv
    opt.__dict__.update(
        data=str(data_yaml), cfg=model_yaml, weights=weights, resume=resume, hyp=cfg.hyp(), epochs=cfg.epochs,
        batch_size=batch, nominal_batch=cfg.nominal_batch, imgsz=cfg.img_size, optimizer=cfg.optimizer,
        workers=cfg.workers, seed=cfg.seed,
        save_dir=str(out), exist_ok=True, device="",
        noplots=True,  # plots cost minutes at 2560 and nothing reads them
        noval=False,  # noval=True crashes in yolov5 7.0.14; validation also gives the per-epoch metrics
        patience=0,  # yolov5's fitness-based early stop is off: ours is the objectness loss (docs/recipe.md)
    )
    return opt


class _Monitor:
    """yolov5 callbacks: per-epoch metrics.csv, the objectness-loss stop and the wall-clock budget."""

    def __init__(self, out: Path, cfg: DetectorConfig, start_epoch: int, started: float):
        self.cfg, self.metrics_path, self.started = cfg, out / "metrics.csv", started
        self.rows = [r for r in _read_metrics(self.metrics_path) if int(r["epoch"]) < start_epoch]
        self.budget_s = cfg.max_minutes * 60 if cfg.max_minutes else None
        self.epoch_started = self.train_seconds = self.last_epoch_seconds = 0.0
        self.images = 0
        # This session's speed over every batch, the last (possibly cut) epoch included: images and the seconds
        # from each epoch's start to its last batch's end (data loading counts: it is part of the real speed).
        self.session_images, self.session_seconds, self.mark = 0, 0.0, 0.0
        self.model = None  # the training model, to save something if the budget ends the very first epoch

    def register(self, callbacks) -> None:
        for hook in ("on_train_epoch_start", "on_train_batch_end", "on_train_epoch_end", "on_fit_epoch_end",
                     "on_model_save"):
            callbacks.register_action(hook, name="umnist", callback=getattr(self, hook))

    def _out_of_time(self, extra_s: float = 0.0) -> bool:
        return self.budget_s is not None and monotonic() - self.started + extra_s > self.budget_s

    def on_train_epoch_start(self):
        if self._out_of_time(self.last_epoch_seconds):  # the next epoch would not finish in the budget
            raise _Stop("time_budget")
        self.epoch_started, self.images = monotonic(), 0
        self.mark = self.epoch_started

    def on_train_batch_end(self, model, ni, imgs, targets, paths, mloss):
        self.images += imgs.shape[0]
        now = monotonic()
        self.session_images, self.session_seconds, self.mark = (self.session_images + imgs.shape[0],
                                                                self.session_seconds + now - self.mark, now)
        self.model = model
        if self._out_of_time():
            raise _Stop("time_budget")

    def on_train_epoch_end(self, epoch):
        self.train_seconds = monotonic() - self.epoch_started

    def on_fit_epoch_end(self, log_vals, epoch, best_fitness, fi):
        values = [float(f"{v:.6g}") for v in log_vals[:7]]  # train box/obj/cls loss, P, R, mAP50, mAP50-95
        seconds = monotonic() - self.epoch_started
        images_per_s = self.images / max(self.train_seconds, 1e-9)
        self.rows.append(dict(zip(METRICS_COLUMNS, [epoch, *values, round(seconds, 3), round(images_per_s, 3)],
                                  strict=True)))
        text = io.StringIO()
        writer = csv.DictWriter(text, METRICS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.metrics_path, text.getvalue())

    def on_model_save(self, last, epoch, final_epoch, best_fitness, fi):
        self.last_epoch_seconds = monotonic() - self.epoch_started
        if self.rows[-1]["obj_loss"] <= self.cfg.obj_loss_stop and self.cfg.obj_loss_stop > 0:
            raise _Stop("obj_loss_reached")
        if epoch + 1 >= self.cfg.epochs:
            raise _Stop("epochs_done")


def _read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open() as f:
        return [{k: float(v) if k != "epoch" else int(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _save_final(path: Path, ckpt: dict, record: dict) -> None:
    """Save `ckpt` as a finished checkpoint (EMA weights in fp16, no optimizer, the settings it is meant to run
    with: `record`), atomically."""
    import torch

    ckpt = {**ckpt, "model": (ckpt.get("ema") or ckpt["model"]).half(), "epoch": -1, PROFILE_KEY: record}
    ckpt.update(optimizer=None, best_fitness=None, ema=None, updates=None)
    for p in ckpt["model"].parameters():
        p.requires_grad = False
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def _finish(out: Path, reason: str, monitor: _Monitor, opt) -> None:
    """Make best.pt (and last.pt unless the run can still be resumed) final; save something if nothing was."""
    weights = out / "weights"
    last, best = weights / "last.pt", weights / "best.pt"
    record = _inference_settings(out)
    if not last.is_file() and monitor.model is not None:  # the budget ran out inside the first epoch
        partial = {"model": deepcopy(monitor.model), "opt": vars(opt), "date": datetime.now().isoformat()}
        _save_final(last, partial, record)
    if not last.is_file():
        raise UmnistError(f"time budget max_minutes={monitor.cfg.max_minutes} ended before the first batch")
    if not best.is_file():
        with atomic_path(best) as tmp:
            shutil.copyfile(last, tmp)
    if reason == "time_budget":  # a budget-stopped run stays resumable: its last.pt keeps the optimizer
        _make_final(record, best)
    else:
        _make_final(record, last, best)


def _make_final(record: dict, *paths: Path) -> None:
    """Strip the optimizer from each checkpoint that still holds one and record the settings it is meant to
    run with (each save atomic). A finished run's last.pt goes first: a final last.pt without summary.json
    tells `--resume` to finish the run's files."""
    import torch

    with yolo_compat.trusted_checkpoints(*paths):
        for path in paths:
            ckpt = torch.load(path, map_location="cpu")
            if ckpt["optimizer"] is not None or recorded_profile(ckpt) != record:
                _save_final(path, ckpt, record)


def _inference_settings(out: Path) -> dict:
    """The sections of the run's config.yaml that inference reads, as a profile: what the weights record."""
    saved = config.load_profile(out / "config.yaml")
    return {"_profile": saved.get("_profile"), **{s: saved[s] for s in RECORDED_SECTIONS if s in saved}}


def run(data: str | os.PathLike, out: str | os.PathLike, profile: str | os.PathLike | dict = "tiny", *,
        weights: str | os.PathLike | None = None, resume: bool = False, **overrides) -> dict:
    """Train the detector on a synth output folder (or its detection/ folder) into `out`; return its summary,
    `out/summary.json`.

    `weights`: a YOLOv5 checkpoint to start from (its matching layers are copied). `resume`: continue the run
    in `out_dir` from weights/last.pt with its saved config.yaml (`overrides`, e.g. max_minutes, still apply)
    up to the same number of epochs.
    """
    started = monotonic()
    data_dir, out = Path(data), Path(out)
    last = out / "weights" / "last.pt"
    start_epoch = _start_epoch(out, last, resume)
    if start_epoch is None:
        return _finish_killed_run(out, started)
    if resume:
        profile = out / "config.yaml"
    cfg = config.resolve(DetectorConfig, "detector", profile, **overrides)
    if resume and start_epoch >= cfg.epochs:  # killed after its last epoch's checkpoint, before the finish
        return _finish_killed_run(out, started)
    if weights is not None and not resume:
        read_yolo_checkpoint(weights, num_classes=None)
    detection = _detection_folder(data_dir)

    train_module = yolo_compat.yolov5_train()
    from yolov5.utils.callbacks import Callbacks
    from yolov5.utils.torch_utils import select_device

    device = select_device("")  # yolov5's choice: the first GPU, else the CPU
    batch = cfg.batch_for(hardware.gpu_memory_bytes(device))
    out.mkdir(parents=True, exist_ok=True)
    config.save(cfg, "detector", out, profile)
    for section in ("infer", "postprocess"):  # how the weights are meant to run: recorded in them at the end
        config.save(config.resolve(config.section_class(section), section, profile), section, out, profile)
    data_yaml = _prepare_data(detection, out / "yolo")
    model_yaml = str(Path(train_module.__file__).parent / "models" / f"{cfg.model}.yaml")
    # Absolute weight paths: yolov5 would first look a relative "a/b.pt" up on the Hugging Face hub.
    start_weights = str(last.resolve()) if resume else str(Path(weights).resolve()) if weights else ""
    # On resume the model is rebuilt from the checkpoint's own YAML (with its AutoAnchor anchors), not ours.
    opt = _yolov5_options(train_module, cfg, batch, out, data_yaml, "" if resume else model_yaml, start_weights, resume)
    monitor = _Monitor(out, cfg, start_epoch, started)
    callbacks = Callbacks()
    monitor.register(callbacks)
    reason = "epochs_done"
    trusted = yolo_compat.trusted_checkpoints(start_weights, last, out / "weights" / "best.pt")
    with trusted, yolo_compat.process_state_kept(), yolo_compat.seeding(train_module, cfg.deterministic), \
            yolo_compat.atomic_checkpoint_saves(out / "weights"):
        try:
            train_module.train(opt.hyp.copy(), opt, device, callbacks)
        except _Stop as stop:
            reason = stop.reason
    _finish(out, reason, monitor, opt)
    return _write_summary(out, reason, monitor.rows, cfg, started, {
        "images_per_s": round(monitor.session_images / monitor.session_seconds, 3) if monitor.session_seconds
        else None,
        "batch": batch, "device": str(device), "amp": device.type == "cuda",
        "gpu_memory_peak_gb": hardware.peak_gpu_memory_gb(device)})


def _start_epoch(out: Path, last: Path, resume: bool) -> int | None:
    """The 0-based epoch the run starts at: 0 for a new run, the one after last.pt's on resume; None when a
    resumed run only needs finishing (killed after its final weights, before its summary)."""
    if not resume:
        if last.is_file():
            raise UmnistError(f"{out}: holds a training run already; pass --resume to continue it or another --out")
        return 0
    if not last.is_file():
        raise UmnistError(f"{last}: nothing to resume (no last checkpoint in {out})")
    ckpt = read_yolo_checkpoint(last)
    if ckpt.get("optimizer") is None:
        if (out / "summary.json").is_file():
            raise UmnistError(f"{last}: final weights, nothing to resume ({_summary_reason(out)})")
        return None
    return ckpt["epoch"] + 1


def _detection_folder(data_dir: Path) -> Path:
    """The detection/ folder of a synth output folder, or `data_dir` itself when it is one (what the pipeline
    passes on)."""
    detection = data_dir / "detection" if (data_dir / "detection").is_dir() else data_dir
    if not (detection / "images").is_dir():
        raise UmnistError(f"{data_dir}: no detection/images folder (expected the synth stage's output)")
    return detection


def _write_summary(out: Path, reason: str, rows: list[dict], cfg: DetectorConfig, started: float,
                   speed: dict) -> dict:
    summary = {"stop_reason": reason, "epochs_completed": len(rows), "epochs": cfg.epochs,
               "minutes_this_session": round((monotonic() - started) / 60, 3),
               "last_obj_loss": rows[-1]["obj_loss"] if rows else None,
               "best_mAP50": max((r["mAP50"] for r in rows), default=None),
               "deterministic": cfg.deterministic, **speed}
    write_json(out / "summary.json", summary)
    return summary


def _finish_killed_run(out: Path, started: float) -> dict:
    """A run killed after its last epoch's checkpoint, before its summary: make last.pt and best.pt final and
    write the summary (the speed figures of the killed session are lost; the stop reason follows from the
    epochs done)."""
    cfg = config.resolve(DetectorConfig, "detector", out / "config.yaml")
    rows = _read_metrics(out / "metrics.csv")
    last, best = out / "weights" / "last.pt", out / "weights" / "best.pt"
    if not best.is_file():
        with atomic_path(best) as tmp:
            shutil.copyfile(last, tmp)
    _make_final(_inference_settings(out), last, best)
    reason = "epochs_done" if len(rows) >= cfg.epochs else "obj_loss_reached"
    return _write_summary(out, reason, rows, cfg, started, {"images_per_s": None, "batch": None, "device": None,
                                                            "amp": None, "gpu_memory_peak_gb": None})


def _summary_reason(out: Path) -> str:
    path = out / "summary.json"
    return f"stop_reason {json.loads(path.read_text())['stop_reason']}" if path.is_file() else "no summary.json"
