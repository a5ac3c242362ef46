"""The compiled pipeline YAML: six components, the graph's edges, resources, caching, secrets, no credentials,
and the rules a real KFP backend (2.14-2.16: the Go driver and launcher) needs that the local runner cannot
check: display names equal to task keys, no large input as an artifact, /dev/shm, GPU requests and checks,
the store endpoint by KFP release."""

import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO
from umnist import config, flow
from umnist.pipeline import graph

COMPONENTS = {step.name for step in flow.STEPS}
GPU_STEPS = {"train-detector", "train-classifier", "infer"}
STORE_STEPS = COMPONENTS - {"postprocess"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("yaml") / "umnist.yaml"
    graph.main(["--out", str(path), "--parts", "3"])
    docs = list(yaml.safe_load_all(path.read_text()))
    return {"spec": docs[0], "platform": docs[1], "text": path.read_text()}


def compile_to(tmp_path, *argv) -> tuple[dict, dict]:
    path = tmp_path / "umnist.yaml"
    graph.main(["--out", str(path), *argv])
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


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
        producer = value["taskOutputArtifact"]["producerTask"]  # KeyError: an importer or a constant
        component = spec["components"][tasks[producer]["componentRef"]["name"]]
        if "dag" in component:  # a group's output: the task inside it that makes it
            key = value["taskOutputArtifact"]["outputArtifactKey"]
            selector = component["dag"]["outputs"]["artifacts"][key]["artifactSelectors"][0]
            producer = selector["producerSubtask"]
        found.add(producer)
    return found


def executor(spec: dict, task: str) -> dict:
    return spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]


def env(spec: dict, task: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in executor(spec, task).get("env", [])}


def test_six_components_and_no_importer(compiled):
    """Inputs enter as URI parameters: an importer's artifact is copied whole into every consuming pod."""
    executors = compiled["spec"]["deploymentSpec"]["executors"]
    assert {name.removeprefix("exec-") for name, e in executors.items() if "container" in e} == COMPONENTS
    assert [name for name, e in executors.items() if "importer" in e] == []


@pytest.mark.parametrize("step", flow.STEPS, ids=lambda step: step.name)
def test_edges_are_the_flow(compiled, step):
    """The graph's edges are umnist.flow's, the run's one description; the run inputs enter as parameters."""
    assert producers(compiled["spec"], step.name) == step.producers()
    parameters = set(all_tasks(compiled["spec"])[step.name].get("inputs", {}).get("parameters", {}))
    assert {flag for flag, source in step.inputs.items() if source.step is None} <= parameters


def test_every_display_name_is_the_task_key(compiled):
    """The DAG driver (loops, conditions) and the importer launcher record a step under its display name;
    consumers look producers up by key: `cannot find producer task` (kubeflow/pipelines#13239)."""
    tasks = all_tasks(compiled["spec"])
    assert {"for-loop-2", "condition-3"} <= set(tasks)
    for key, task in tasks.items():
        assert task["taskInfo"]["name"] == key


def test_images_and_labels_reach_steps_as_uris_not_artifacts(compiled):
    """The launcher downloads every input artifact before user code runs (~17 GB of images per infer pod)."""
    spec, tasks = compiled["spec"], all_tasks(compiled["spec"])
    for name in ("infer", "score"):
        component = spec["components"][tasks[name]["componentRef"]["name"]]
        assert component["inputDefinitions"]["parameters"]["images"]["parameterType"] == "STRING"
        assert "images" not in component["inputDefinitions"].get("artifacts", {})
    assert set(tasks["infer"]["inputs"]["artifacts"]) == {"detector", "classifier"}
    assert set(tasks["score"]["inputs"]["artifacts"]) == {"predictions"}
    assert tasks["infer"]["inputs"]["parameters"]["images"] == {"componentInputParameter": "pipelinechannel--images"}


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
    assert set(dag["tasks"]) == {"score"}


def test_mnist_is_a_required_run_parameter(compiled):
    """The images hold no MNIST: a cluster run without it would fail in synth, not at submission."""
    parameters = compiled["spec"]["root"]["inputDefinitions"]["parameters"]
    for name in ("images", "mnist"):
        assert "defaultValue" not in parameters[name] and not parameters[name].get("isOptional"), name
    assert parameters["labels"]["isOptional"]


def test_the_run_configuration_is_one_parameter(compiled, tmp_path):
    """`config`: the compiled profile resolved to YAML text (the image's configs/ play no part), the one way a
    run's settings reach every component: no per-field parameters, no -1 = "the profile's" sentinels."""
    parameters = compiled["spec"]["root"]["inputDefinitions"]["parameters"]
    assert yaml.safe_load(parameters["config"]["defaultValue"]) == {"_profile": "tiny", **config.resolve_all("tiny")}
    assert not {"profile", "seed"} & set(parameters)
    tasks = all_tasks(compiled["spec"])
    for name in COMPONENTS - {"score"}:
        source = tasks[name]["inputs"]["parameters"]["config"]["componentInputParameter"]
        assert source in ("config", "pipelinechannel--config"), name  # the latter inside the loop
    for component in compiled["spec"]["components"].values():
        for parameter in component.get("inputDefinitions", {}).get("parameters", {}).values():
            assert parameter.get("defaultValue") not in (-1, -1.0, {}), component
    spec, _ = compile_to(tmp_path, "--profile", "demo")
    default = spec["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
    assert yaml.safe_load(default) == {"_profile": "demo", **config.resolve_all("demo")}


def test_an_unknown_profile_is_refused_at_compile_time(capsys):
    with pytest.raises(SystemExit):
        graph.main(["--profile", "nope"])
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_gpu_for_training_and_infer_by_default(compiled):
    spec = compiled["spec"]
    for name in COMPONENTS:
        resources = executor(spec, name)["resources"]
        assert resources["resourceCpuRequest"] and resources["resourceMemoryRequest"], name
        if name in GPU_STEPS:
            assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
            assert resources["accelerator"]["resourceCount"] == "1"
            assert env(spec, name)["UMNIST_REQUIRE_GPU"] == "1", name  # no silent CPU fallback
        else:
            assert "accelerator" not in resources and "UMNIST_REQUIRE_GPU" not in env(spec, name), name


def test_cpu_device_requests_no_gpu_and_fits_a_kind_node(tmp_path):
    spec, _ = compile_to(tmp_path, "--device", "cpu")
    for name in COMPONENTS:
        resources = executor(spec, name)["resources"]
        assert "accelerator" not in resources and "UMNIST_REQUIRE_GPU" not in env(spec, name), name
        assert float(resources["resourceCpuRequest"]) <= 2 and resources["memoryRequest"] <= 3, name


def test_data_loading_steps_get_a_memory_backed_shm_and_their_cpu_count(compiled):
    """Pods get 64 MiB of /dev/shm: multi-worker PyTorch loaders die with a bus error; and a pod sees all of
    its node's cores, so the loaders size by the request (UMNIST_CPUS), not by the node."""
    spec = compiled["spec"]
    executors = compiled["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("train-detector", "train-classifier"):
        (mount,) = executors[f"exec-{name}"]["emptyDirMounts"]
        assert mount["mountPath"] == "/dev/shm" and mount["medium"] == "Memory" and mount["sizeLimit"], name
    for name in COMPONENTS:
        cpus = executor(spec, name)["resources"]["resourceCpuRequest"]
        assert env(spec, name)["UMNIST_CPUS"] == env(spec, name)["OMP_NUM_THREADS"] == cpus, name


@pytest.mark.slow
def test_store_endpoint_follows_the_kfp_release(compiled, tmp_path):
    """2.14 MinIO and 2.15 SeaweedFS answer at minio-service; 2.16+ has only seaweedfs."""
    assert env(compiled["spec"], "synth")["UMNIST_S3_ENDPOINT"] == "http://seaweedfs.kubeflow:9000"
    for release, host in (("2.14.4", "minio-service"), ("2.15.0", "minio-service"), ("2.16.1", "seaweedfs")):
        spec, _ = compile_to(tmp_path, "--kfp-version", release)
        assert {env(spec, name).get("UMNIST_S3_ENDPOINT") for name in STORE_STEPS} == {
            f"http://{host}.kubeflow:9000"}, release
    spec, _ = compile_to(tmp_path, "--s3-endpoint", "https://s3.example.com")
    assert env(spec, "infer")["UMNIST_S3_ENDPOINT"] == "https://s3.example.com"


def test_unknown_kfp_release_is_refused(capsys):
    with pytest.raises(SystemExit):
        graph.main(["--kfp-version", "2.9.0"])
    assert "KFP 2.9.0" in capsys.readouterr().err


def test_gpu_pool_toleration_and_node_selector(tmp_path):
    _, executors = compile_to(tmp_path, "--gpu-toleration", "nvidia.com/gpu",
                              "--gpu-node-selector", "pool=h100")
    for name in COMPONENTS:
        config = executors.get(f"exec-{name}", {})
        if name in GPU_STEPS:
            assert config["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                              "effect": "NoSchedule"}]
            assert config["nodeSelector"]["labels"] == {"pool": "h100"}
        else:
            assert "tolerations" not in config and "nodeSelector" not in config, name


def test_caching_and_retries(compiled, tmp_path):
    """Steps that read data by URI are never cached: data replaced under the same URI must be read again."""
    tasks = all_tasks(compiled["spec"])
    enabled = {name for name in COMPONENTS if tasks[name]["cachingOptions"].get("enableCache", False)}
    assert enabled == {"synth", "postprocess"}
    for name in COMPONENTS:
        assert tasks[name]["retryPolicy"]["maxRetryCount"] == 3, name
    spec, _ = compile_to(tmp_path, "--no-cache")
    assert not any(all_tasks(spec)[name]["cachingOptions"].get("enableCache") for name in COMPONENTS)


def test_store_keys_come_from_the_secret(compiled):
    executors = compiled["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert {name for name, config in executors.items() if "secretAsEnv" in config} == {
        f"exec-{name}" for name in STORE_STEPS}
    for name in STORE_STEPS:
        (secret,) = executors[f"exec-{name}"]["secretAsEnv"]
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
    graph.compile_pipeline(str(path))
    text = path.read_text()
    for value in (*keys.values(), "minio123"):
        assert value not in text
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)
    spec = next(yaml.safe_load_all(text))
    names = {name for task in COMPONENTS for name in env(spec, task)}
    assert names == {"UMNIST_S3_ENDPOINT", "UMNIST_CPUS", "OMP_NUM_THREADS", "UMNIST_REQUIRE_GPU"}


def test_components_run_in_our_images_without_installing_packages(compiled):
    for name in COMPONENTS:
        container = executor(compiled["spec"], name)
        image = "umnist-cuda:dev" if name in GPU_STEPS else "umnist-cpu:dev"
        assert container["image"] == image
        assert "pip install" not in " ".join(container["command"])


def test_compile_rejects_no_parts(capsys):
    with pytest.raises(SystemExit):
        graph.main(["--parts", "0"])
    assert "--parts" in capsys.readouterr().err


def test_the_installed_package_compiles_what_pipeline_py_does(tmp_path):
    """The graph and its components are part of the package: `python -m umnist.pipeline`, run away from the
    checkout (its root not on sys.path), writes the YAML that `pipeline.py` (make compile) writes."""
    subprocess.run([sys.executable, str(REPO / "pipeline.py"), "--out", str(tmp_path / "root.yaml")], check=True,
                   cwd=REPO, capture_output=True)
    subprocess.run([sys.executable, "-m", "umnist.pipeline", "--out", str(tmp_path / "package.yaml")], check=True,
                   cwd=tmp_path, capture_output=True)
    assert (tmp_path / "package.yaml").read_text() == (tmp_path / "root.yaml").read_text()
