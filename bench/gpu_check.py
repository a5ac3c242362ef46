"""Usage: bench/gpu_check.sh BUDGET [--profile gpu-short] [--out runs/gpu-check] [--mnist DIR]
                          [--heldout 500] [--heldout-size 4000]

One timed run of the whole method within BUDGET (seconds: 600 or 600s; minutes: 10m): synthesise the training
data, train the detector and the classifier side by side, synthesise a held-out competition-style set, run
`umnist predict` on it with its labels and boxes, and write every figure to OUT/gpu_check.json, rewritten after
each phase, so a failed or cut phase still leaves the figures of the others. Installs and downloads nothing.

Each phase must end by a fixed share of the budget (PHASE_ENDS, counted from the start, so time a phase leaves
unused goes to the next). Every stage runs as its own `python -m umnist` process with a timeout; the trainers
also get a `--max-minutes` that ends them cleanly, with their best weights, before their phase's end.

The two trainers run at the same time on the one GPU: the classifier (a small net on 128 px crops) uses a
fraction of an H100's compute and memory, and the detector's GPU waits for its data loaders anyway, so
together they lose little speed while each gets the whole training window instead of half of it (learning
curves flatten, so a longer run beats a faster one). The profile splits the CPU cores between their loaders.

The held-out set is `umnist.heldout`'s recipe (the one `umnist run` scores on): competition-style scenes from
another seed whose digits are the MNIST instances synth keeps out of training.

It runs the installed `umnist` (`make install`; bench/gpu_lease.sh puts its unpacked checkout on PYTHONPATH).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from umnist import flow, hardware, layout
from umnist.errors import UmnistError
from umnist.fileio import write_json
from umnist.heldout import heldout_files, heldout_overrides

# By which share of the budget (from the start) each phase must have ended; `--predict-share` moves the end of
# training (the predict phase keeps that share before PREDICT_END).
PHASE_ENDS = {"synth": 0.12, "heldout": 0.16, "train": 0.85, "predict": 0.97}
PREDICT_END = PHASE_ENDS["predict"]
# Time a trainer gets after its --max-minutes to finish: last validation, saving, process exit.
TRAIN_GRACE_SHARE, TRAIN_GRACE_MIN_S = 0.03, 15.0


def parse_budget(text: str) -> float:
    """Seconds from '600', '600s', '10m' or '1.5m'."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([sm]?)\s*", text)
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"budget {text!r}: expected seconds (600, 600s) or minutes (10m)")
    return float(match[1]) * (60 if match[2] == "m" else 1)


def phase_deadline(started: float, budget_s: float, phase: str) -> float:
    return started + PHASE_ENDS[phase] * budget_s


def trainer_minutes(now: float, deadline: float, budget_s: float) -> float:
    """--max-minutes for a trainer whose phase ends at `deadline`: the time left less the grace to finish."""
    grace = max(TRAIN_GRACE_SHARE * budget_s, TRAIN_GRACE_MIN_S)
    return round((deadline - now - grace) / 60, 3)


class GpuSampler:
    """Samples nvidia-smi every second in a thread: peak memory used and mean utilisation per phase."""

    QUERY = ["nvidia-smi", "--query-gpu=name,memory.used,memory.total,utilization.gpu",
             "--format=csv,noheader,nounits"]

    def __init__(self):
        self.available = shutil.which("nvidia-smi") is not None
        self.phase, self.figures, self.gpu = None, {}, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> tuple[str, float, float, float] | None:
        try:
            line = subprocess.run(self.QUERY, capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
            name, used, total, util = (part.strip() for part in line.split(","))
            return name, float(used), float(total), float(util)
        except (OSError, subprocess.SubprocessError, IndexError, ValueError):
            return None

    def start(self) -> "GpuSampler":
        if self.available:
            first = self.sample()
            if first:
                self.gpu = {"name": first[0], "memory_gb": round(first[2] / 1024, 1)}
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            found, phase = self.sample(), self.phase
            if found is None or phase is None:
                continue
            figures = self.figures.setdefault(phase, {"samples": 0, "memory_used_peak_gb": 0.0, "util_sum": 0.0})
            figures["samples"] += 1
            figures["memory_used_peak_gb"] = max(figures["memory_used_peak_gb"], round(found[1] / 1024, 2))
            figures["util_sum"] += found[3]

    def report(self) -> dict | None:
        if not self.available:
            return None
        return {phase: {"memory_used_peak_gb": f["memory_used_peak_gb"],
                        "utilization_mean_pct": round(f["util_sum"] / f["samples"], 1)}
                for phase, f in self.figures.items()}

    def stop(self) -> None:
        self._stop.set()


class Check:
    """The run: its phases, their processes and the JSON report."""

    def __init__(self, args):
        self.args, self.budget_s, self.started = args, args.budget, time.monotonic()
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "logs").mkdir(exist_ok=True)
        self.gpu = GpuSampler().start()
        self.report = {"budget_s": self.budget_s, "profile": args.profile, "out": str(self.out),
                       "finished": False, "machine": {"cpu_cores": hardware.cpu_cores(), "gpu": self.gpu.gpu},
                       "phases": {}}
        self.write()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def write(self) -> None:
        self.report["elapsed_s"] = round(self.elapsed(), 1)
        self.report["gpu_sampled"] = self.gpu.report()
        write_json(self.out / "gpu_check.json", self.report)

    def skip(self, phase: str, reason: str) -> None:
        self.report["phases"][phase] = {"status": "skipped", "reason": reason}
        self.write()

    def run(self, phase: str, commands: dict[str, list[str]], deadline: float) -> bool:
        """Run the commands side by side until all end or `deadline`; record the phase; True if all succeeded."""
        start = time.monotonic()
        self.gpu.phase = phase
        env = dict(os.environ)
        # Stages side by side share the cores' compute threads (their loader processes are single-threaded).
        # Without a split, two trainers on 2 cores each ran 2 OpenMP threads and both slowed ~2.5x (the 48 px
        # classifier: 21 images/s against ~60 with one thread each): oversubscribed OpenMP threads spin and
        # wait on each other. The price of the split: a stage that ends early does not lend its cores.
        env.setdefault("OMP_NUM_THREADS", str(max(1, hardware.cpu_cores() // len(commands))))
        processes = {}
        for name, argv in commands.items():
            with open(self.out / "logs" / f"{name}.log", "w") as log:
                processes[name] = subprocess.Popen([sys.executable, "-m", "umnist", *argv], stdout=log,
                                                   stderr=subprocess.STDOUT, env=env, cwd=self.out,
                                                   start_new_session=True)
        ended: dict[str, dict] = {}
        try:
            while len(ended) < len(processes) and time.monotonic() < deadline:
                for name, proc in processes.items():
                    if name not in ended and proc.poll() is not None:
                        ended[name] = {"returncode": proc.returncode, "seconds": round(time.monotonic() - start, 1)}
                time.sleep(0.2)
        finally:
            for name, proc in processes.items():
                if name not in ended:
                    _kill(proc)
                    ended[name] = {"returncode": None, "seconds": round(time.monotonic() - start, 1),
                                   "killed_at_deadline": True}
            self.gpu.phase = None
        for name, figures in ended.items():
            figures["log"] = f"logs/{name}.log"
            if figures["returncode"] != 0:
                figures["log_tail"] = _tail(self.out / figures["log"])
        ok = all(e["returncode"] == 0 for e in ended.values())
        timed_out = any(e.get("killed_at_deadline") for e in ended.values())
        self.report["phases"][phase] = {
            "status": "ok" if ok else "timeout" if timed_out else "failed",
            "seconds": round(time.monotonic() - start, 1), "limit_s": round(deadline - start, 1),
            "processes": ended}
        self.write()
        return ok


def _kill(proc: subprocess.Popen) -> None:
    """Stop a stage's process group (the stage and its loader workers): TERM, then KILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 8) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def _flags(overrides: dict) -> list[str]:
    """Config overrides as `umnist` flags: {"scene_size": 320} -> ["--scene-size", "320"]."""
    return [part for key, value in overrides.items()
            for part in (f"--{key.replace('_', '-')}", json.dumps(value) if isinstance(value, list) else str(value))]


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def mnist_overrides(mnist: str | None) -> tuple[Path, list[str]]:
    """The MNIST directory (absolute) and, when it holds only the test split, `--mnist-splits [test]`."""
    from umnist.mnist import mnist_dir

    root = mnist_dir(mnist).resolve()  # the stages run with the output folder as their working directory
    splits = [s for s, prefix in (("train", "train"), ("test", "t10k")) if any(root.glob(f"{prefix}-images-idx3*"))]
    return root, ([] if "train" in splits else ["--mnist-splits", json.dumps(splits)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("budget", type=parse_budget, help="total wall-clock budget: seconds (600, 600s) or 10m")
    parser.add_argument("--profile", default="gpu-short", help="profile name or YAML (default: gpu-short)")
    parser.add_argument("--out", default="runs/gpu-check", help="output folder (default: runs/gpu-check)")
    parser.add_argument("--mnist", help="MNIST idx directory (default: $UMNIST_MNIST_DIR)")
    parser.add_argument("--heldout", type=int, default=500, help="held-out scenes to predict (default: 500)")
    parser.add_argument("--predict-share", type=float, default=PREDICT_END - PHASE_ENDS["train"],
                        help="share of the budget kept for predict after training (default: 0.12, 500 images of "
                        "4000 px on a GPU; 300 images of 320 px need 0.04 on 2 CPU cores)")
    parser.add_argument("--heldout-size", type=int, default=4000, help="their side in px (default: 4000, the "
                        "competition's)")
    args = parser.parse_args(argv)
    if not 0 < args.predict_share < PREDICT_END - PHASE_ENDS["heldout"]:
        most = PREDICT_END - PHASE_ENDS["heldout"]
        parser.error(f"--predict-share {args.predict_share}: must be within 0..{most:.2f}")
    PHASE_ENDS["train"] = PREDICT_END - args.predict_share
    # A TERM (a scheduler's timeout) unwinds like an error: the running stages are stopped, the JSON written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    check = Check(args)
    try:
        phases(check, args)
    except UmnistError as exc:
        check.report["error"] = str(exc)
        print(f"gpu_check: error: {exc}", file=sys.stderr)
    finally:
        check.gpu.stop()
        check.report.update(finished=True, total_s=round(check.elapsed(), 1))
        check.write()
    print(json.dumps({k: check.report.get(k) for k in ("total_s", "accuracy", "detection_recall")}))
    print(f"figures: {check.out / 'gpu_check.json'}")
    statuses = [p["status"] for p in check.report["phases"].values()]
    return 0 if statuses and all(s == "ok" for s in statuses) and "error" not in check.report else 1


def phases(check: Check, args) -> None:
    out, profile, report = check.out, ["--profile", args.profile], check.report
    mnist, splits = mnist_overrides(args.mnist)
    # The steps of umnist.flow this check runs, and their folders; `predict` runs infer, postprocess and score.
    folders = {"synth": out / "data", "train-detector": out / "detector", "train-classifier": out / "classifier"}
    data, heldout = folders["synth"], out / "heldout"
    for path in (*folders.values(), heldout, out / "predict"):
        shutil.rmtree(path, ignore_errors=True)

    deadline = phase_deadline(check.started, check.budget_s, "synth")
    synth = [*flow.command("synth", folders, {"mnist": mnist}), *splits, *profile, "--no-progress"]
    if check.run("synth", {"synth": synth}, deadline):
        manifest = _read_json(data / "manifest.json")
        scenes = sum(s["scenes"] for s in manifest["splits"].values())
        report["synth"] = {"scenes": scenes, "crops": sum(s["crops"] for s in manifest["splits"].values()),
                           "scene_size": manifest["scene_size"], "mnist_splits": manifest["config"]["mnist_splits"],
                           "scenes_per_s": round(scenes / report["phases"]["synth"]["seconds"], 1)}
        check.write()

    deadline = phase_deadline(check.started, check.budget_s, "heldout")
    heldout_synth = flow.command("synth", {"synth": heldout}, {"mnist": mnist})
    check.run("heldout", {"heldout": [*heldout_synth, *splits, *profile, "--no-progress",
                                      *_flags(heldout_overrides(args.heldout, args.heldout_size))]}, deadline)

    deadline = phase_deadline(check.started, check.budget_s, "train")
    minutes = trainer_minutes(time.monotonic(), deadline, check.budget_s)
    if not (data / "manifest.json").is_file():
        check.skip("train", "no training data (synth did not finish)")
    elif minutes <= 0:
        check.skip("train", f"no time left for training ({minutes} min)")
    else:
        report["train_max_minutes"] = minutes
        check.run("train", {step: [*flow.command(step, folders, {}), *profile, "--max-minutes", str(minutes)]
                            for step in ("train-detector", "train-classifier")}, deadline)
        report["detector"] = _read_json(folders["train-detector"] / "summary.json")
        report["classifier"] = _read_json(folders["train-classifier"] / "summary.json")
        check.write()

    weights = {stage: layout.weights(stage, folders[f"train-{stage}"]) for stage in ("detector", "classifier")}
    report["weights"] = {name: str(path) if path.is_file() else None for name, path in weights.items()}
    held = heldout_files(heldout)
    missing = [str(p) for p in (*weights.values(), held["labels"]) if not p.is_file()]
    if missing:
        check.skip("predict", f"missing {', '.join(missing)}")
        return
    deadline = phase_deadline(check.started, check.budget_s, "predict")
    # `umnist predict` takes infer's inputs and score's run inputs, and writes the three steps' files in one folder.
    infer = flow.command("infer", {**folders, "infer": out / "predict"}, held)
    check.run("predict", {"predict": ["predict", *infer[1:], "--labels", str(held["labels"]),
                                      "--boxes", str(held["boxes"]), *profile, "--no-progress"]}, deadline)
    report["infer"] = _read_json(out / "predict" / "infer_stats.json")
    metrics = _read_json(out / "predict" / "metrics.json")
    if metrics is not None:
        boxes = metrics.get("boxes") or {}
        report.update(images=metrics["images"], accuracy=metrics["sum_accuracy"],
                      detection_recall=(boxes.get("detector") or {}).get("recall"),
                      detection_precision=(boxes.get("detector") or {}).get("precision"),
                      detection_by_size=metrics.get("detection_by_size"), error_causes=metrics.get("error_causes"))
    check.write()


if __name__ == "__main__":
    sys.exit(main())
