"""The umnist pipeline: one KFP v2 graph from synthetic data to the scored competition images.

    synth ─┬─ train-detector ──┐
           └─ train-classifier ┴─ infer (ParallelFor over parts of the images) ─ postprocess ─ score (if labels)

    python pipeline.py --out umnist-pipeline.yaml [--parts 8] [--classifier-gpu] [--infer-gpu]   (make compile)

The competition images and labels come in by importer from object-store URIs (or local paths in local runs).
The components reach the store with umnist.storage; the keys come from the Secret `mlpipeline-minio-artifact`
(kfp-kubernetes), the endpoint from `s3_endpoint` below: nothing secret is in the compiled YAML.
"""

import argparse

from kfp import compiler, dsl, kubernetes

from components import infer, postprocess, score, synth, train_classifier, train_detector

NAME = "umnist"
SECRET = "mlpipeline-minio-artifact"
SECRET_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}
CLUSTER_ENDPOINT = "http://minio-service.kubeflow:9000"
GPU = "nvidia.com/gpu"
RETRY = {"num_retries": 3, "backoff_duration": "30s", "backoff_factor": 2.0}


def _store_access(task, s3_endpoint: str | None):
    """The object-store endpoint and keys for a step that reads inputs outside KFP's artifacts."""
    if s3_endpoint:
        task.set_env_variable("UMNIST_S3_ENDPOINT", s3_endpoint)
        kubernetes.use_secret_as_env(task, secret_name=SECRET, secret_key_to_env=SECRET_KEYS)
    return task


def _gpu(task, cpu: str, memory: str):
    return (task.set_accelerator_type(GPU).set_accelerator_limit(1)
            .set_cpu_request(cpu).set_memory_request(memory))


def build(parts: int = 4, classifier_gpu: bool = False, infer_gpu: bool = False,
          cache_training: bool = False, retries: bool = True, s3_endpoint: str | None = CLUSTER_ENDPOINT):
    """The pipeline function. `parts`: parallel infer steps; `*_gpu`: request a GPU for those steps too
    (train-detector always has one); `cache_training`: let KFP reuse a trained model for identical inputs
    (off: a rerun retrains); `retries`: retry the network-touching steps (local runs turn them off: a
    failure there is a bug, not the network); `s3_endpoint`: None in local runs, which use the caller's
    environment and have no Kubernetes Secret."""

    retry = RETRY if retries else {"num_retries": 0}

    @dsl.pipeline(name=NAME, description="UltraMNIST 1st-place solution: synth, YOLOv5 + EfficientNetV2, score")
    def umnist_pipeline(images: str, labels: str = "", boxes: str = "", profile: str = "tiny", mnist: str = "",
                        seed: int = -1, detector_weights: str = "", classifier_weights: str = "",
                        classifier_init_weights: str = ""):
        """images: URI (or local path) of the images to predict, a directory or shard set; labels: their
        `id,digit_sum` CSV, scored when given; boxes: optional `id,digit,x1,y1,x2,y2` ground truth;
        seed: -1 = the profile's; *_weights: trained weights that skip that training step."""
        data = _store_access(synth(profile=profile, mnist=mnist, seed=seed), s3_endpoint)
        data.set_caching_options(True).set_retry(**retry)

        detector = train_detector(detection=data.outputs["detection"], profile=profile, weights=detector_weights)
        _gpu(_store_access(detector, s3_endpoint), cpu="8", memory="32G")
        classifier = train_classifier(crops=data.outputs["crops"], profile=profile, weights=classifier_weights,
                                      init_weights=classifier_init_weights)
        _store_access(classifier, s3_endpoint).set_cpu_request("4").set_memory_request("16G")
        if classifier_gpu:
            _gpu(classifier, cpu="8", memory="32G")
        for task in (detector, classifier):
            task.set_caching_options(cache_training).set_retry(**retry)

        scenes = dsl.importer(artifact_uri=images, artifact_class=dsl.Dataset, reimport=False)
        scenes.set_display_name("competition-images")
        with dsl.ParallelFor(list(range(parts)), name="image-parts") as part:
            predicted = infer(images=scenes.output, detector=detector.outputs["model"],
                              classifier=classifier.outputs["model"], part=part, parts=parts, profile=profile)
            _store_access(predicted, s3_endpoint).set_retry(**retry).set_cpu_request("4").set_memory_request("8G")
            if infer_gpu:
                _gpu(predicted, cpu="4", memory="16G")

        filtered = postprocess(detections=dsl.Collected(predicted.outputs["detections"]), profile=profile)

        with dsl.If(labels != "", name="labels-given"):
            truth = dsl.importer(artifact_uri=labels, artifact_class=dsl.Dataset, reimport=False)
            truth.set_display_name("labels")
            scored = score(predictions=filtered.outputs["predictions"], labels=truth.output, images=scenes.output,
                           boxes=boxes)
            _store_access(scored, s3_endpoint).set_retry(**retry)

    return umnist_pipeline


def compile_pipeline(path: str, **options) -> str:
    compiler.Compiler().compile(build(**options), package_path=path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="compile the umnist pipeline to a KFP v2 YAML")
    parser.add_argument("--out", default="umnist-pipeline.yaml", help="the YAML to write")
    parser.add_argument("--parts", type=int, default=4, help="parallel infer steps over the images")
    parser.add_argument("--classifier-gpu", action="store_true", help="run train-classifier on a GPU")
    parser.add_argument("--infer-gpu", action="store_true", help="run the infer steps on GPUs")
    parser.add_argument("--cache-training", action="store_true", help="let KFP cache the training steps")
    parser.add_argument("--s3-endpoint", default=CLUSTER_ENDPOINT, help="object store the steps read inputs from")
    args = parser.parse_args(argv)
    if args.parts < 1:
        parser.error("--parts must be at least 1")
    print(compile_pipeline(args.out, parts=args.parts, classifier_gpu=args.classifier_gpu,
                           infer_gpu=args.infer_gpu, cache_training=args.cache_training,
                           s3_endpoint=args.s3_endpoint))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
