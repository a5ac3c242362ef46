"""manifests/: every YAML parses, every Kubernetes resource passes strict offline schema validation."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = sorted((REPO / "manifests").glob("*.yaml"))
KUBERNETES_VERSION = "1.33.0"  # the oldest cluster version we support; kind's default is newer


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def test_there_are_manifests():
    assert {p.name for p in MANIFESTS} >= {
        "kind-cluster.yaml", "kfp-launcher-configmap.yaml", "s3-credentials-secret.template.yaml"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_resources_are_valid_in_strict_mode(path):
    for doc in documents(path):
        if doc["apiVersion"].startswith("kind.x-k8s.io/"):
            continue  # kind's own config, not a cluster resource: checked below
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_a_typo():
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                                      "dataa": {"a": "b"}}, KUBERNETES_VERSION, strict=True)


def test_kind_cluster_config():
    (cluster,) = documents(REPO / "manifests" / "kind-cluster.yaml")
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4" and cluster["kind"] == "Cluster"
    assert {node["role"] for node in cluster["nodes"]} == {"control-plane", "worker"}
    assert set(cluster) <= {"kind", "apiVersion", "name", "nodes", "networking", "featureGates"}


def test_launcher_config_leaves_the_store_to_the_kfp_release():
    """No `providers`: the launcher then uses its release's own store (2.14 minio-service, 2.16+ seaweedfs)
    with the Secret mlpipeline-minio-artifact; a hard-coded endpoint fails on the releases it does not name."""
    (config,) = documents(REPO / "manifests" / "kfp-launcher-configmap.yaml")
    (secret,) = documents(REPO / "manifests" / "s3-credentials-secret.template.yaml")
    assert config["data"] == {"defaultPipelineRoot": "minio://mlpipeline/v2/artifacts"}
    assert secret["metadata"]["name"] == "mlpipeline-minio-artifact"
    assert secret["stringData"] == {"accesskey": "REPLACE_WITH_ACCESS_KEY",
                                    "secretkey": "REPLACE_WITH_SECRET_KEY"}
    assert config["metadata"]["namespace"] == secret["metadata"]["namespace"] == "kubeflow"
