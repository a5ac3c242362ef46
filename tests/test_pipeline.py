"""The compiled pipeline YAML: six components, the graph's edges, resources, caching, secrets, no credentials."""

import re

import pytest
import yaml

import pipeline

COMPONENTS = {"synth", "train-detector", "train-classifier", "infer", "postprocess", "score"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("yaml") / "umnist.yaml"
    pipeline.main(["--out", str(path), "--parts", "3"])
    docs = list(yaml.safe_load_all(path.read_text()))
    return {"spec": docs[0], "platform": docs[1], "text": path.read_text()}


def all_tasks(spec: dict) -> dict[str, dict]:
    """Every task of the graph, nested DAGs (ParallelFor, If) included, by task name."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def group_of(spec: dict) -> dict[str, str]:
    """Task name -> the name of the group task (loop, condition) whose DAG holds it; root tasks absent."""
    groups = {}
    for name, task in spec["root"]["dag"]["tasks"].items():
        for inner in spec["components"][task["componentRef"]["name"]].get("dag", {}).get("tasks", {}):
            groups[inner] = name
    return groups


def producers(spec: dict, name: str) -> set[str]:
    """The components whose artifacts feed task `name`, followed through groups' inputs and outputs."""
    tasks, groups = all_tasks(spec), group_of(spec)
    found = set()
    for value in tasks[name].get("inputs", {}).get("artifacts", {}).values():
        if "componentInputArtifact" in value:  # an input of the enclosing group
            value = tasks[groups[name]]["inputs"]["artifacts"][value["componentInputArtifact"]]
        producer = value["taskOutputArtifact"]["producerTask"]
        component = spec["components"][tasks[producer]["componentRef"]["name"]]
        if "dag" in component:  # a group's output: the task inside it that makes it
            key = value["taskOutputArtifact"]["outputArtifactKey"]
            selector = component["dag"]["outputs"]["artifacts"][key]["artifactSelectors"][0]
            producer = selector["producerSubtask"]
        found.add(producer)
    return found


def executor(spec: dict, task: str) -> dict:
    return spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]


def test_six_components_and_two_importers(compiled):
    executors = compiled["spec"]["deploymentSpec"]["executors"]
    containers = {name.removeprefix("exec-") for name, e in executors.items() if "container" in e}
    importers = {name for name, e in executors.items() if "importer" in e}
    assert containers == COMPONENTS
    assert len(importers) == 2  # the images to predict and their labels


def test_edges(compiled):
    spec = compiled["spec"]
    assert producers(spec, "synth") == set()
    assert producers(spec, "train-detector") == {"synth"}
    assert producers(spec, "train-classifier") == {"synth"}
    assert producers(spec, "infer") == {"train-detector", "train-classifier", "importer"}
    assert producers(spec, "postprocess") == {"infer"}
    assert producers(spec, "score") == {"postprocess", "importer", "importer-2"}


def test_infer_fans_out_over_parts_and_is_collected(compiled):
    spec = compiled["spec"]
    loops = [name for name, t in spec["root"]["dag"]["tasks"].items() if "parameterIterator" in t]
    assert len(loops) == 1
    loop = spec["root"]["dag"]["tasks"][loops[0]]
    assert loop["parameterIterator"]["items"]["raw"] == "[0, 1, 2]"
    loop_dag = spec["components"][loop["componentRef"]["name"]]["dag"]
    assert set(loop_dag["tasks"]) == {"infer"}
    collected = spec["root"]["dag"]["tasks"]["postprocess"]["inputs"]["artifacts"]["detections"]
    assert collected["taskOutputArtifact"]["producerTask"] == loops[0]
    assert producers(spec, "postprocess") == {"infer"}


def test_score_only_when_labels_are_given(compiled):
    conditions = [t for t in compiled["spec"]["root"]["dag"]["tasks"].values() if "triggerPolicy" in t]
    assert len(conditions) == 1
    assert "pipelinechannel--labels" in conditions[0]["triggerPolicy"]["condition"]
    dag = compiled["spec"]["components"][conditions[0]["componentRef"]["name"]]["dag"]
    assert set(dag["tasks"]) == {"importer-2", "score"}


def test_gpu_on_train_detector_only_by_default(compiled):
    spec = compiled["spec"]
    resources = executor(spec, "train-detector")["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"
    assert resources["resourceCpuRequest"] and resources["resourceMemoryRequest"]
    for name in COMPONENTS - {"train-detector"}:
        assert "accelerator" not in executor(spec, name).get("resources", {}), name


def test_gpu_options(tmp_path):
    path = tmp_path / "gpu.yaml"
    pipeline.compile_pipeline(str(path), classifier_gpu=True, infer_gpu=True)
    spec = next(yaml.safe_load_all(path.read_text()))
    for name in ("train-detector", "train-classifier", "infer"):
        assert executor(spec, name)["resources"]["accelerator"]["resourceCount"] == "1"


def test_caching_and_retries(compiled):
    tasks = all_tasks(compiled["spec"])
    assert tasks["synth"]["cachingOptions"] == {"enableCache": True}
    for name in ("train-detector", "train-classifier"):
        assert tasks[name]["cachingOptions"].get("enableCache", False) is False
    for name in ("synth", "train-detector", "train-classifier", "infer", "score"):
        assert tasks[name]["retryPolicy"]["maxRetryCount"] == 3, name


def test_store_keys_come_from_the_secret(compiled):
    executors = compiled["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == {f"exec-{name}" for name in COMPONENTS - {"postprocess"}}
    for config in executors.values():
        (secret,) = config["secretAsEnv"]
        assert secret["secretName"] == "mlpipeline-minio-artifact"
        assert {m["secretKey"]: m["envVar"] for m in secret["keyToEnv"]} == {
            "accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}


def test_no_credentials_in_the_yaml(tmp_path, monkeypatch):
    """Compiled in an environment holding keys, the YAML names the Secret but holds no key."""
    keys = {"AWS_ACCESS_KEY_ID": "AKIAUMNISTFAKE000001", "AWS_SECRET_ACCESS_KEY": "fake/secret+umnist-9f3b2c7d",
            "AWS_SESSION_TOKEN": "fake-session-token-umnist"}
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "umnist.yaml"
    pipeline.compile_pipeline(str(path))
    text = path.read_text()
    for value in (*keys.values(), "minio123"):
        assert value not in text
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)
    spec = next(yaml.safe_load_all(text))
    envs = [e for name in COMPONENTS for e in executor(spec, name).get("env", [])]
    assert {e["name"] for e in envs} == {"UMNIST_S3_ENDPOINT"}


def test_components_run_in_our_images_without_installing_packages(compiled):
    for name in COMPONENTS:
        container = executor(compiled["spec"], name)
        image = "umnist-cuda:dev" if name in ("train-detector", "train-classifier", "infer") else "umnist-cpu:dev"
        assert container["image"] == image
        assert "pip install" not in " ".join(container["command"])


def test_compile_rejects_no_parts(capsys):
    with pytest.raises(SystemExit):
        pipeline.main(["--parts", "0"])
    assert "--parts" in capsys.readouterr().err
