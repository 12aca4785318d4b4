"""The Kubernetes manifests in k8s/: valid for a pinned Kubernetes version, offline, and consistent.

kubernetes-validate ships the API's JSON schemas; the strict ones refuse unknown fields, so a
misspelt key fails here rather than in a cluster. Beyond the schema: what the schema cannot
know (probes on our endpoints, secrets that exist, the configuration loading, thread counts).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tabserve.settings import load_settings
from tests.servers import REPO

K8S = REPO / "k8s"
KUBERNETES_VERSION = "1.33.0"  # the oldest version we support; strict schemas (no unknown fields)
SECRET_TEMPLATE = "secret.template.yaml"
KUSTOMIZATION = "kustomization.yaml"
MANIFESTS = sorted(path.name for path in K8S.glob("*.yaml") if path.name != KUSTOMIZATION)


def load(name: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all((K8S / name).read_text()) if document]


def applied_files() -> list[str]:
    return list(load(KUSTOMIZATION)[0]["resources"])


def every_resource() -> list[dict[str, Any]]:
    return [resource for name in [*applied_files(), SECRET_TEMPLATE] for resource in load(name)]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [resource for resource in every_resource() if resource["kind"] == kind]


def job_pod(cron_job: dict[str, Any]) -> dict[str, Any]:
    return dict(cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def pod_specs() -> list[dict[str, Any]]:
    deployments = [resource["spec"]["template"]["spec"] for resource in by_kind("Deployment")]
    return deployments + [job_pod(job) for job in by_kind("CronJob")]


def validate(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_every_file_is_applied_or_is_the_secret_template() -> None:
    on_disk = {path.name for path in K8S.glob("*.y*ml")}
    assert on_disk == {*applied_files(), KUSTOMIZATION, SECRET_TEMPLATE}


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_validates_against_the_pinned_kubernetes_schema(name: str) -> None:
    resources = load(name)
    assert resources, f"{name} holds no resource"
    for resource in resources:
        validate(resource)  # raises on a schema error, an unknown field or an unknown kind


def test_the_validation_refuses_a_broken_manifest() -> None:
    """Guards the guard: a misspelt field, a wrong type and an unknown kind all fail."""
    deployment = by_kind("Deployment")[0]
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    unknown_kind = {**copy.deepcopy(deployment), "kind": "Deploymint"}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProbes"):
        validate(misspelt)
    with pytest.raises(kubernetes_validate.ValidationError, match="two"):
        validate(wrong_type)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate(unknown_kind)


def test_the_deployment_serves_with_probes_resources_and_one_thread_per_core() -> None:
    (deployment,) = by_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "serve"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert {"requests", "limits"} <= set(container["resources"])
    env = {item["name"]: item for item in container["env"]}
    # One worker per pod: native threads = the CPU limit (whole cores) / 1.
    assert env["OMP_NUM_THREADS"]["value"] == str(int(container["resources"]["limits"]["cpu"]))
    for secret in ("TABSERVE_DATABASE_URL", "TABSERVE_ADMIN_TOKEN"):
        assert "secretKeyRef" in env[secret]["valueFrom"], secret  # never a literal value
    (service,) = by_kind("Service")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (autoscaler,) = by_kind("HorizontalPodAutoscaler")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert autoscaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_the_cron_jobs_run_the_nightly_scoring_the_drift_job_and_the_retraining_loop() -> None:
    commands = {
        job["metadata"]["name"]: " ".join(job_pod(job)["containers"][0]["args"]) for job in by_kind("CronJob")
    }
    assert "python -m tabserve score" in commands["tabserve-score-nightly"]
    assert "python -m tabserve monitor" in commands["tabserve-drift"]
    assert "python -m tabserve retrain --trigger schedule" in commands["tabserve-retrain"]


def test_every_referenced_secret_key_configmap_and_claim_exists() -> None:
    (secret,) = by_kind("Secret")
    keys = set(secret["stringData"])
    config_maps = {resource["metadata"]["name"] for resource in by_kind("ConfigMap")}
    claims = {resource["metadata"]["name"] for resource in by_kind("PersistentVolumeClaim")}
    for spec in pod_specs():
        for volume in spec["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
            if "secret" in volume:
                assert volume["secret"]["secretName"] == secret["metadata"]["name"]
                assert {item["key"] for item in volume["secret"]["items"]} <= keys
        for item in spec["containers"][0]["env"]:
            reference = item.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                assert reference["name"] == secret["metadata"]["name"] and reference["key"] in keys


def test_the_configmap_configuration_loads(tmp_path: Path) -> None:
    (config_map,) = by_kind("ConfigMap")
    path = tmp_path / "configuration.yaml"
    path.write_text(config_map["data"]["configuration.yaml"])
    settings = load_settings(path, environ={})
    assert str(settings.monitoring.spool_dir).startswith("/var/lib/tabserve")
    # API keys on, read from the Secret the Deployment mounts (rotated without a restart).
    (deployment,) = by_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert settings.serving.api_keys_required
    assert str(settings.serving.api_keys_file).startswith(mounts["api-keys"] + "/")


def test_only_the_drift_job_runs_the_monitoring_image() -> None:
    """The serving image has no Evidently (`make image`: README, The image)."""
    workloads = [*by_kind("Deployment"), *by_kind("CronJob")]
    images = {
        resource["metadata"]["name"]: {
            container["image"]
            for container in (
                job_pod(resource) if resource["kind"] == "CronJob" else resource["spec"]["template"]["spec"]
            )["containers"]
        }
        for resource in workloads
    }
    drift = images.pop("tabserve-drift")
    assert drift == {"tabserve-monitoring:latest"}
    assert all(found == {"tabserve:latest"} for found in images.values()), images
