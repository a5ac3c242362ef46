"""`run`: fit the digit classifier on the crop set, validating after every epoch.

Outputs in `out_dir` (docs/formats.md): `best.pt` (highest validation accuracy), `last.pt` (+ optimizer and
resume state), `metrics.csv` (one row per epoch), `confusion.csv` (10x10 on val for the best weights),
`summary.json` (why it stopped, best epoch, speed) and `config.yaml`. A run stops when its epochs are done or
when `max_minutes` would be exceeded by the next step plus the end of the epoch (`TimeBudget`);
`resume=True` continues from `last.pt` with the run's own `config.yaml` (keyword overrides still apply, e.g.
more epochs or minutes).
"""

import csv
import io
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from umnist import config, hardware
from umnist.classifier.config import ClassifierConfig
from umnist.classifier.data import CropStream, read_index
from umnist.classifier.inference import autocast
from umnist.classifier.model import DigitNet, load_init_weights, read_classifier_weights, save_weights
from umnist.errors import UmnistError
from umnist.fileio import write_json, write_text
from umnist.labels import NUM_CLASSES

METRICS_FIELDS = ["epoch", "loss", "val_accuracy", "val_background_prob", "lr", "seconds", "images_per_s",
                  "images"]


def run(crops: str | os.PathLike, out: str | os.PathLike, profile: str | os.PathLike | dict = "tiny", *,
        init_weights: str | os.PathLike | None = None, resume: bool = False, **overrides) -> dict:
    """Train on `crops` (a synth `crops/` folder) into `out`; return its summary, `out/summary.json`."""
    started = time.monotonic()
    out = Path(out)
    # Config errors first, then input errors, and only then the first write (a failed start leaves nothing).
    profile = _run_profile(out, profile, resume)
    cfg = config.resolve(ClassifierConfig, "classifier", profile, **overrides)
    train_shards, val_shards = read_index(crops, "train"), read_index(crops, "val")
    model, optimizer, state = _open_run(out, cfg, crops, profile, init_weights, resume)
    device = hardware.torch_device(cfg.device)
    rows = state["rows"]
    model.to(device)
    fast = device.type == "cuda" and cfg.amp
    if fast:
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True

    workers = hardware.cpu_cores() if cfg.workers == -1 else cfg.workers
    loader_args = {"num_workers": workers, "pin_memory": device.type == "cuda",
                   "persistent_workers": workers > 0}
    stream = iter(DataLoader(CropStream(train_shards, cfg, train=True, first_pass=state["epoch"]),
                             batch_size=cfg.batch, **loader_args))
    val_loader = DataLoader(CropStream(val_shards, cfg, train=False), batch_size=cfg.batch * 2, **loader_args)
    val_count = sum(s.count for s in val_shards)
    steps = math.ceil((cfg.epoch_images or sum(s.count for s in train_shards)) / cfg.batch)
    budget = TimeBudget(started, cfg.max_minutes, val_count)
    stop_reason = "epochs"

    for epoch in range(state["epoch"], cfg.epochs):
        lr = cfg.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        epoch_start = time.monotonic()
        loss_sum, seen = _train_steps(model, optimizer, stream, steps, device, fast, budget,
                                      desc=f"epoch {epoch + 1}/{cfg.epochs}")
        if seen < steps * cfg.batch:
            stop_reason = "max_minutes"
        if not seen:
            break
        train_seconds = time.monotonic() - epoch_start
        accuracy, confusion, background_prob, val_seconds = evaluate(model, val_loader, device, fast)
        finish_start = time.monotonic() - val_seconds
        rows.append({"epoch": epoch + 1, "loss": round(loss_sum / seen, 5), "val_accuracy": round(accuracy, 5),
                     "val_background_prob": None if background_prob is None else round(background_prob, 4),
                     "lr": lr, "seconds": round(train_seconds + val_seconds, 2),
                     "images_per_s": round(seen / train_seconds, 1), "images": seen})
        state["epoch"] = epoch + 1
        state["seconds"] += train_seconds + val_seconds
        print(f"epoch {epoch + 1}/{cfg.epochs}: loss {rows[-1]['loss']:.4f}, val accuracy {accuracy:.4f}, "
              f"lr {lr:g}, {rows[-1]['images_per_s']} images/s", flush=True)
        if accuracy > state["best_accuracy"]:
            state.update(best_accuracy=accuracy, best_epoch=epoch + 1, confusion=confusion.tolist())
        save_weights(out / "last.pt", model, meta=_meta(epoch + 1, accuracy, cfg),
                     optimizer=optimizer.state_dict(), resume=dict(state))
        _publish_epoch(out, model, state, cfg)
        budget.finished_epoch(time.monotonic() - finish_start)
        if stop_reason != "epochs":
            break

    speeds = [float(r["images_per_s"]) for r in rows]
    summary = {"stop_reason": stop_reason, "epochs_done": state["epoch"], "epochs": cfg.epochs,
               "best_epoch": state["best_epoch"], "best_val_accuracy": state["best_accuracy"],
               "seconds": round(time.monotonic() - started, 1),
               "train_seconds_total": round(state["seconds"], 1),
               "images_per_s": round(float(np.median(speeds)), 1) if speeds else None,
               "device": str(device), "amp": fast, "gpu_memory_peak_gb": hardware.peak_gpu_memory_gb(device)}
    write_json(out / "summary.json", summary)
    return summary


def _run_profile(out: Path, profile, resume: bool):
    """The profile of the run: the run's own config.yaml on resume. Refuses to resume nothing, or to start
    over a run without `resume`."""
    if resume:
        if not (out / "last.pt").is_file():
            raise UmnistError(f"{out / 'last.pt'}: nothing to resume")
        return out / "config.yaml"
    if (out / "last.pt").is_file():
        raise UmnistError(f"{out}: holds a run already (last.pt); pass --resume or choose another --out")
    return profile


def _open_run(out: Path, cfg: ClassifierConfig, crops_dir, profile, init_weights, resume: bool):
    """The model, optimizer and `state` of the run, restored from last.pt on resume; saves config.yaml."""
    torch.manual_seed(cfg.seed)
    model = DigitNet(cfg.arch, cfg.img_size)
    if init_weights and not resume:
        print(load_init_weights(model, init_weights))
    config.save(cfg, "classifier", out, profile, _crops=str(crops_dir),
                _init_weights=str(init_weights) if init_weights else None)
    optimizer = torch.optim.Adam(model.net.parameters(), lr=cfg.lr_at(0))
    # `state` travels inside last.pt, the one commit point of an epoch: the metrics rows and the best epoch's
    # confusion matrix are rebuilt from it, so a kill between any two writes loses nothing of a finished epoch.
    state = {"epoch": 0, "best_accuracy": -1.0, "best_epoch": 0, "seconds": 0.0, "rows": [], "confusion": None}
    if resume:
        last = read_classifier_weights(out / "last.pt")
        model.net.load_state_dict(last["state_dict"])
        optimizer.load_state_dict(last["optimizer"])
        state.update(last["resume"])
        if "rows" not in last["resume"]:  # a last.pt from umnist <= 0.1 kept its rows in metrics.csv only
            state["rows"] = [r for r in _read_metrics(out / "metrics.csv") if int(r["epoch"]) <= state["epoch"]]
        _publish_epoch(out, model, state, cfg)
    return model, optimizer, state


def _train_steps(model: DigitNet, optimizer, stream, steps: int, device: torch.device, fast: bool,
                 budget: "TimeBudget", desc: str) -> tuple[float, int]:
    """Up to `steps` optimiser steps on batches of `stream`, stopping early when `budget` has no room for
    one more step and the end of the epoch; returns the summed loss and the number of images seen."""
    model.train()
    loss_sum, seen = torch.zeros((), device=device), 0
    for _ in tqdm(range(steps), desc=desc, leave=False, disable=None):
        if budget.out_of_time():
            break
        step_start = time.monotonic()
        images, labels = next(stream)
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if fast:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, fast):
            loss = digit_or_background_loss(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(labels)
        seen += len(labels)
        budget.stepped(time.monotonic() - step_start, len(labels))
    return loss_sum.item(), seen


class TimeBudget:
    """`max_minutes` as a decision before each step: is there room for one more step and for the end of the
    epoch (validation and the saves)? Both are measured: the slowest recent step, and the last end of epoch
    (before the first, guessed from the training speed: inference runs about 3x faster than a training step
    per image, plus 2 s for the saves). Everything from the call of run() counts, start-up included."""

    def __init__(self, started: float, max_minutes: float | None, val_count: int, clock=time.monotonic):
        self.clock = clock
        self.deadline = started + max_minutes * 60 if max_minutes else None
        self.val_count = val_count
        self.step_seconds: list[float] = []
        self.images_per_s: float | None = None
        self.finish_seconds: float | None = None

    def stepped(self, seconds: float, images: int) -> None:
        self.step_seconds = (self.step_seconds + [seconds])[-20:]
        self.images_per_s = images / max(seconds, 1e-6)

    def finished_epoch(self, seconds: float) -> None:
        self.finish_seconds = seconds

    def out_of_time(self) -> bool:
        if self.deadline is None or not self.step_seconds:
            return False  # the first step measures the speed; without it nothing can be estimated
        finish = self.finish_seconds if self.finish_seconds is not None else (
            self.val_count / (3 * self.images_per_s) + 2)
        return self.clock() + max(self.step_seconds) + 1.2 * finish > self.deadline


def digit_or_background_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the digit for digit crops, and against the uniform distribution over the ten
    digits for background crops (label `BACKGROUND_LABEL`): on background the classifier learns to be unsure,
    which is what postprocess's probability floor reads, while its outputs stay the ten digits."""
    log_probs = logits.log_softmax(dim=1)
    is_digit = labels < NUM_CLASSES
    digit_term = -log_probs.gather(1, labels.clamp(max=NUM_CLASSES - 1)[:, None])[:, 0]
    return torch.where(is_digit, digit_term, -log_probs.mean(dim=1)).mean()


@torch.inference_mode()
def evaluate(model: DigitNet, loader: DataLoader, device: torch.device, fast: bool
             ) -> tuple[float, np.ndarray, float | None, float]:
    """Over one pass: digit accuracy, the 10x10 confusion matrix (rows = true digit), the mean top
    probability on background crops (None without any; 0.1 = fully unsure) and the seconds it took."""
    start = time.monotonic()
    model.eval()
    confusion = torch.zeros(NUM_CLASSES ** 2, dtype=torch.int64, device=device)
    background_prob, background = torch.zeros((), device=device), 0
    for images, labels in loader:
        images = images.to(device, non_blocking=True)
        labels = labels.to(device)
        if fast:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, fast):
            probs = model(images).float().softmax(dim=1)
        is_digit = labels < NUM_CLASSES
        confusion += torch.bincount(labels[is_digit] * NUM_CLASSES + probs[is_digit].argmax(dim=1),
                                    minlength=NUM_CLASSES ** 2)
        background_prob += probs[~is_digit].max(dim=1).values.sum()
        background += int((~is_digit).sum())
    confusion = confusion.view(NUM_CLASSES, NUM_CLASSES).cpu().numpy()
    total = confusion.sum()
    if not total:
        raise UmnistError("the val split holds no digit crops")
    mean_background = background_prob.item() / background if background else None
    return float(np.trace(confusion) / total), confusion, mean_background, time.monotonic() - start


def _meta(epoch: int, accuracy: float, cfg: ClassifierConfig) -> dict:
    return {"epoch": epoch, "val_accuracy": accuracy, "config": config.to_dict(cfg)}


def _publish_epoch(out: Path, model: DigitNet, state: dict, cfg: ClassifierConfig) -> None:
    """Write what last.pt's `state` implies: best.pt when the last epoch is the best one (the model holds its
    weights), confusion.csv and metrics.csv. Run after every last.pt save and again on resume, so the files
    always catch up with the checkpoint, however a kill fell between the writes."""
    best = out / "best.pt"
    if state["best_epoch"] == state["epoch"] and (
            not best.is_file() or read_classifier_weights(best)["meta"].get("epoch") != state["epoch"]):
        save_weights(best, model, meta=_meta(state["epoch"], state["best_accuracy"], cfg))
    if state["confusion"] is not None:
        _write_confusion(out / "confusion.csv", np.asarray(state["confusion"]))
    _write_metrics(out / "metrics.csv", state["rows"])


def _write_metrics(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def _read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _write_confusion(path: Path, confusion: np.ndarray) -> None:
    lines = ["true," + ",".join(str(d) for d in range(NUM_CLASSES))]
    lines += [f"{d}," + ",".join(str(int(v)) for v in row) for d, row in enumerate(confusion)]
    write_text(path, "\n".join(lines) + "\n")
