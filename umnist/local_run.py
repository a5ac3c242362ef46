"""`umnist run`: the graph of `umnist.pipeline`, every component, on this machine with KFP's local runner.

    umnist run --profile tiny --out runs/demo [--store s3://bucket/prefix]

It stands in for the competition data with held-out synthetic scenes: the profile's validation scenes drawn in
the organisers' `competition` style (`umnist.heldout`), from the MNIST instances the pipeline's synth keeps
for validation (never trained on). Then it runs the graph
exactly as compiled for a cluster, except that each component runs in a subprocess of this Python
(SubprocessRunner without a venv: `umnist` is installed here) instead of its image, and no Kubernetes Secret
is attached: the store's endpoint and keys come from this environment. kfp.local keeps its pipeline root on
local disk; with `--store` the inputs (MNIST, images as a shard set, labels, boxes) are read from the store by
the components, as on a cluster, and the score outputs are uploaded there. Runs from an installed package
(no checkout needed) and imports KFP only when it runs.
"""

import re
import shutil
import warnings
from pathlib import Path

from umnist import mnist as mnist_files
from umnist import shards, storage
from umnist import synth as synth_stage
from umnist.errors import UmnistError
from umnist.fileio import atomic_path
from umnist.heldout import heldout_files, heldout_overrides
from umnist.score import ladder_text


def heldout_scenes(out: Path, profile: str, mnist: Path, scenes: int | None) -> dict[str, Path]:
    """The profile's held-out set (`umnist.heldout`) with its labels and boxes: {images, labels, boxes}."""
    synth_stage.run(mnist, out, profile, progress=False, **heldout_overrides(scenes))
    return heldout_files(out)


def stage_inputs(inputs: dict[str, Path], mnist: Path, store: str) -> dict[str, str]:
    """Put the run's inputs in the object store, as a user would for a cluster run; return their URIs."""
    root = store.rstrip("/") + "/inputs"
    uris = {"mnist": storage.upload(mnist, f"{root}/mnist"), "images": f"{root}/images"}
    shards.write_shards(sorted(inputs["images"].iterdir()), uris["images"], root=inputs["images"], max_files=4)
    for name in ("labels", "boxes"):
        uris[name] = storage.upload(inputs[name], f"{root}/{name}.csv")
    return uris


def run(out: str | Path, profile: str = "tiny", mnist: str | Path | None = None, store: str | None = None,
        parts: int = 2, scenes: int | None = None) -> dict:
    """Run the whole pipeline locally into `out`; return the score's metrics (also in out/metrics.json,
    with out/report.html)."""
    import json

    from kfp import local

    from umnist.pipeline import graph

    out = Path(out).resolve()
    mnist_dir = mnist_files.mnist_dir(mnist).resolve()
    if store and not storage.is_remote(store):
        raise UmnistError(f"--store {store}: expected an s3:// or minio:// URI")
    out.mkdir(parents=True, exist_ok=True)
    inputs = heldout_scenes(out / "heldout", profile, mnist_dir, scenes)
    uris = stage_inputs(inputs, mnist_dir, store) if store else {**{k: str(v) for k, v in inputs.items()},
                                                                   "mnist": str(mnist_dir)}
    shutil.rmtree(out / "kfp", ignore_errors=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(out / "kfp"),
               workspace_root=str(out / "kfp-workspace"), raise_on_error=True)
    with warnings.catch_warnings():
        # our base images are not named "python...": the runner warns, though umnist is installed here
        warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
        try:
            # device="cpu": no GPU is required here (torch still takes one when the machine has it)
            graph.build(profile, parts, device="cpu", retries=False, s3_endpoint=None)(
                images=uris["images"], labels=uris["labels"], boxes=uris["boxes"], mnist=uris["mnist"])
        except RuntimeError as exc:  # kfp.local's way of saying a task failed; the task's log is above
            message = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())  # without kfp's colours
            raise UmnistError(f"{message} (its log is above; outputs in {out / 'kfp'})") from None
    found = sorted((out / "kfp").glob("*/score/scores/metrics.json"))
    if not found:
        raise UmnistError(f"{out / 'kfp'}: the pipeline finished without a score (see the log above)")
    for name in ("metrics.json", "report.html"):
        with atomic_path(out / name) as tmp:
            shutil.copyfile(found[-1].parent / name, tmp)
        if store:
            storage.upload(out / name, store.rstrip("/") + "/outputs/")
    return json.loads((out / "metrics.json").read_text())


def register(sub) -> None:
    p = sub.add_parser("run", help="the whole pipeline on this machine (KFP local runner), scored")
    p.add_argument("--out", default="runs/local", help="output directory (default: runs/local)")
    p.add_argument("--profile", default="tiny", help="profile name or YAML path (default: tiny)")
    p.add_argument("--mnist", help="MNIST idx directory (default: $UMNIST_MNIST_DIR)")
    p.add_argument("--store", help="s3:// or minio:// prefix: inputs and results go through the object store")
    p.add_argument("--parts", type=int, default=2, help="parallel infer steps (default: 2)")
    p.add_argument("--scenes", type=int, help="held-out scenes to score (default: the profile's scenes_val)")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    if args.parts < 1:
        raise UmnistError(f"--parts {args.parts}: must be at least 1")
    metrics = run(args.out, args.profile, args.mnist, args.store, args.parts, args.scenes)
    recall = (metrics.get("boxes") or {}).get("detector", {}).get("recall")
    print(f"score on {metrics['images']} held-out scenes: {ladder_text(metrics)}"
          + (f"; detection recall {recall:.2%}" if recall is not None else ""))
    print(f"report: {Path(args.out).resolve() / 'report.html'}")
    return 0
