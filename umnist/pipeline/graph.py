"""The umnist pipeline: one KFP v2 graph from synthetic data to the scored competition images.

    synth ─┬─ train-detector ──┐
           └─ train-classifier ┴─ infer (ParallelFor over parts of the images) ─ postprocess ─ score (if labels)

    python -m umnist.pipeline --out umnist-pipeline.yaml [--parts 8] [--device cpu] [--kfp-version 2.14]
    python pipeline.py ...  (the same from a checkout: make compile)

The steps and their edges are umnist.flow's, the run's one description (tests/test_pipeline.py checks them).

What a real KFP backend (2.14-2.16: Argo, the Go driver and launcher) does differently from the local runner,
and how this graph copes (README "Cluster" has the sources):
- the DAG driver and the importer launcher record a step under its display name, and a consumer looks its
  producer up by task key: no task here has a display name other than its key (tested);
- the launcher copies every input artifact into the pod: the competition images and labels are therefore
  run parameters (URIs) that each step reads itself with umnist.storage, infer only its part;
- the store's keys come from the Secret `mlpipeline-minio-artifact` (kfp-kubernetes), its endpoint from the
  KFP release (`STORES`): nothing secret is in the compiled YAML.

The run's whole configuration is one run parameter, `config`: a profile resolved to YAML text
(umnist.config.profile_text; `umnist config --profile P` prints it), by default the one compiled with
`--profile`. Every component reads its sections from it, so a profile edited here, or the text edited when
a run is submitted, needs no image rebuild; and the run's parameters record the configuration it ran with.
"""

import argparse

from kfp import compiler, dsl, kubernetes

from umnist.config import profile_text
from umnist.errors import UmnistError
from umnist.pipeline.components import infer, postprocess, score, synth, train_classifier, train_detector

NAME = "umnist"
SECRET = "mlpipeline-minio-artifact"
SECRET_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}
# The in-cluster store of a standalone KFP install by release: the launcher's own default endpoint at each
# tag (backend/src/v2/objectstore/config.go). MinIO in 2.14; SeaweedFS behind the `minio-service` alias in
# 2.15; from 2.16 only `seaweedfs` exists.
STORES = {"2.14": "http://minio-service.kubeflow:9000", "2.15": "http://minio-service.kubeflow:9000",
          "2.16": "http://seaweedfs.kubeflow:9000"}
KFP_VERSION = "2.16"  # the newest release checked against; `make kind-up` installs it
GPU = "nvidia.com/gpu"
RETRY = {"num_retries": 3, "backoff_duration": "30s", "backoff_factor": 2.0}
# Requests per step and device: (CPUs, memory, memory-backed /dev/shm or None). `gpu`: sized for the `full`
# profile on a GPU node (yolov5 loads 2560 px mosaics with 8 workers; the classifier one worker per CPU).
# `cpu`: small enough for a kind node on a laptop (about 8 GB free), with the `tiny` profile.
RESOURCES = {
    "gpu": {"synth": ("8", "16G", None), "train-detector": ("8", "32G", "8Gi"),
            "train-classifier": ("8", "32G", "8Gi"), "infer": ("4", "16G", None), "postprocess": ("1", "4G", None),
            "score": ("1", "4G", None)},
    "cpu": {"synth": ("1", "1G", None), "train-detector": ("2", "3G", "1Gi"), "train-classifier": ("2", "2G", "1Gi"),
            "infer": ("1", "2G", None), "postprocess": ("1", "1G", None), "score": ("1", "1G", None)},
}
GPU_STEPS = ("train-detector", "train-classifier", "infer")  # the steps the recipe runs on a GPU
# The steps that read run parameters (URIs) or mirror checkpoints with umnist.storage; postprocess reads only
# KFP artifacts.
STORE_STEPS = ("synth", "train-detector", "train-classifier", "infer", "score")


def build(profile: str = "tiny", parts: int = 4, device: str = "gpu", cache: bool = True, cache_training: bool = False,
          retries: bool = True, s3_endpoint: str | None = STORES[KFP_VERSION], gpu_toleration: str = "",
          gpu_node_selector: dict[str, str] | None = None):
    """The pipeline function. `profile`: the profile (name or YAML path) whose resolved text is the default of
    the run parameter `config`; `parts`: parallel infer steps; `device`: "gpu" requests one GPU for each of
    GPU_STEPS (and fails a step that gets none), "cpu" requests none and little (a kind trial);
    `cache`: False turns KFP's cache off everywhere; `cache_training`: let KFP reuse a trained model for
    identical inputs (off: a rerun retrains); `retries`: retry the steps (local runs turn them off: a failure
    there is a bug, not the network); `s3_endpoint`: None in local runs, which use the caller's environment
    and have no Kubernetes Secret; `gpu_toleration` / `gpu_node_selector`: a taint key the GPU steps tolerate
    and node labels they require (tainted GPU pools)."""
    if device not in RESOURCES:
        raise ValueError(f"device {device!r}: expected one of {', '.join(RESOURCES)}")
    retry = RETRY if retries else {"num_retries": 0}
    resolved = profile_text(profile, one_line=True)  # checked here, at compile time

    def place(task, name: str, cached: bool):
        """Requests, GPU, /dev/shm, store access, caching and retries of step `name`."""
        cpu, memory, shm = RESOURCES[device][name]
        task.set_cpu_request(cpu).set_memory_request(memory).set_caching_options(cache and cached)
        task.set_retry(**retry)
        # The loaders size their worker pools (umnist.hardware.cpu_cores) and torch its threads by the
        # request, not by the node's cores, which a pod sees all of.
        task.set_env_variable("UMNIST_CPUS", cpu)
        task.set_env_variable("OMP_NUM_THREADS", cpu)
        if shm:  # the 64 MiB default /dev/shm kills multi-worker PyTorch loaders with a bus error
            kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory",
                                       size_limit=shm)
        if device == "gpu" and name in GPU_STEPS:
            task.set_accelerator_type(GPU).set_accelerator_limit(1)
            task.set_env_variable("UMNIST_REQUIRE_GPU", "1")  # umnist.hardware.check_gpu: no silent CPU run
            if gpu_toleration:
                kubernetes.add_toleration(task, key=gpu_toleration, operator="Exists", effect="NoSchedule")
            for key, value in (gpu_node_selector or {}).items():
                kubernetes.add_node_selector(task, label_key=key, label_value=value)
        if s3_endpoint and name in STORE_STEPS:
            task.set_env_variable("UMNIST_S3_ENDPOINT", s3_endpoint)
            kubernetes.use_secret_as_env(task, secret_name=SECRET, secret_key_to_env=SECRET_KEYS)
        return task

    @dsl.pipeline(name=NAME, description="UltraMNIST 1st-place solution: synth, YOLOv5 + EfficientNetV2, score")
    def umnist_pipeline(images: str, mnist: str, labels: str = "", boxes: str = "", config: str = resolved,
                        detector_weights: str = "", classifier_weights: str = "", classifier_init_weights: str = ""):
        """images: URI (or local path) of the images to predict, a directory or shard set; mnist: the MNIST idx
        files (required: the images hold none); labels: their `id,digit_sum` CSV, scored when given;
        boxes: optional `id,digit,x1,y1,x2,y2` ground truth; config: the resolved profile (YAML text);
        *_weights: trained weights that skip that training step."""
        # Cached: synth is deterministic given its parameters (a replaced MNIST under the same URI needs
        # `--no-cache`, README "Caching").
        data = place(synth(config=config, mnist=mnist), "synth", cached=True)
        detector = place(train_detector(detection=data.outputs["detection"], config=config,
                                        weights=detector_weights), "train-detector", cached=cache_training)
        classifier = place(train_classifier(crops=data.outputs["crops"], config=config, weights=classifier_weights,
                                            init_weights=classifier_init_weights),
                           "train-classifier", cached=cache_training)
        # No loop name: the DAG driver would record the loop under it and postprocess's lookup of
        # `for-loop-*` would fail (kubeflow/pipelines#13239).
        with dsl.ParallelFor(list(range(parts))) as part:
            # Not cached: the images are read by URI, and data replaced under the same URI must be predicted.
            predicted = place(infer(images=images, detector=detector.outputs["model"],
                                    classifier=classifier.outputs["model"], part=part, parts=parts,
                                    config=config), "infer", cached=False)
        # Cached: its only input is infer's artifacts, new whenever infer ran again.
        filtered = place(postprocess(detections=dsl.Collected(predicted.outputs["detections"]), config=config),
                         "postprocess", cached=True)
        with dsl.If(labels != ""):
            place(score(predictions=filtered.outputs["predictions"], labels=labels, images=images, boxes=boxes,
                        detector_stop=detector.outputs["Output"], classifier_stop=classifier.outputs["Output"]),
                  "score", cached=False)  # reads labels and boxes by URI, like infer

    return umnist_pipeline


def compile_pipeline(path: str, **options) -> str:
    compiler.Compiler().compile(build(**options), package_path=path)
    return path


def store_for(kfp_version: str) -> str:
    """The in-cluster store endpoint for a KFP release ("2.16.1" or "2.16")."""
    release = ".".join(kfp_version.split(".")[:2])
    if release not in STORES:
        raise ValueError(f"KFP {kfp_version}: expected a release of {', '.join(STORES)} (or pass --s3-endpoint)")
    return STORES[release]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="compile the umnist pipeline to a KFP v2 YAML")
    parser.add_argument("--out", default="umnist-pipeline.yaml", help="the YAML to write")
    parser.add_argument("--profile", default="tiny",
                        help="profile (name in configs/ or YAML path) resolved into the run parameter config's default")
    parser.add_argument("--parts", type=int, default=4, help="parallel infer steps over the images")
    parser.add_argument("--device", choices=sorted(RESOURCES), default="gpu",
                        help="gpu: a GPU for training and infer (default); cpu: no GPU, small requests (kind)")
    parser.add_argument("--kfp-version", default=KFP_VERSION, help=f"KFP release of the cluster ({', '.join(STORES)})")
    parser.add_argument("--s3-endpoint", help="object store the steps read inputs from (default: the KFP release's)")
    parser.add_argument("--no-cache", action="store_true", help="turn KFP's cache off for every step")
    parser.add_argument("--cache-training", action="store_true", help="let KFP cache the training steps")
    parser.add_argument("--gpu-toleration", default="", help="taint key the GPU steps tolerate (e.g. nvidia.com/gpu)")
    parser.add_argument("--gpu-node-selector", action="append", default=[], metavar="KEY=VALUE",
                        help="node label the GPU steps require (repeatable)")
    args = parser.parse_args(argv)
    if args.parts < 1:
        parser.error("--parts must be at least 1")
    if any("=" not in pair for pair in args.gpu_node_selector):
        parser.error("--gpu-node-selector takes KEY=VALUE")
    try:
        endpoint = args.s3_endpoint or store_for(args.kfp_version)
        pipeline = build(args.profile, args.parts, args.device, cache=not args.no_cache,
                         cache_training=args.cache_training, s3_endpoint=endpoint, gpu_toleration=args.gpu_toleration,
                         gpu_node_selector=dict(pair.split("=", 1) for pair in args.gpu_node_selector))
    except (ValueError, UmnistError) as exc:
        parser.error(str(exc))
    compiler.Compiler().compile(pipeline, package_path=args.out)
    print(args.out)
    return 0
