"""The deployment recipes in deploy/: valid against the Kubernetes schemas, linted, and
consistent with the image, the configuration table and their own guides."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
CLOUDRUN = ROOT / "deploy" / "cloudrun"
# The oldest Kubernetes minor still in upstream support when this was written, and the
# newest the schemas know.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CHECKOV_VENV = Path(
    os.environ.get("CODITECT_CHECKOV_VENV") or Path.home() / ".cache" / "coditect-checkov"
)


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """Every Kubernetes object of deploy/kubernetes by (kind, name)."""
    found = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":  # kustomize's, not a Kubernetes object
            continue
        for doc in documents(path):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def dockerfile_value(pattern: str) -> str:
    found = re.search(pattern, (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert found, pattern
    return found[1]


def documented_variables() -> set[str]:
    """The variables of README's configuration table."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))


def env_names(container: dict[str, Any]) -> set[str]:
    return {item["name"] for item in container.get("env", [])}


def secret_refs(container: dict[str, Any]) -> set[str]:
    return {
        item["valueFrom"]["secretKeyRef"]["name"]
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "path", sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
)
def test_kubernetes_manifests_are_valid(path: str, version: str) -> None:
    for doc in documents(KUBERNETES / path):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{path} {doc['kind']}/{doc['metadata']['name']}: {e.message}")


def test_the_validation_rejects_what_kubernetes_would() -> None:
    deployment = manifests()[("Deployment", "coditect-cloud")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {**container, "readinessProbe": {"httpGet": {"path": "/readyz", "prot": 8080}}}
    bad = {
        **deployment,
        "spec": {
            **deployment["spec"],
            "template": {
                **deployment["spec"]["template"],
                "spec": {**deployment["spec"]["template"]["spec"], "containers": [broken]},
            },
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_applies_everything_but_the_migration_job() -> None:
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")}
    assert set(listed) == on_disk - {"kustomization.yaml", "migrate-job.yaml"}


def test_the_deployment_runs_the_image_safely_with_both_probes() -> None:
    objects = manifests()
    deployment = objects[("Deployment", "coditect-cloud")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    uid = int(dockerfile_value(r"^ARG UID=(\d+)$"))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert set(container["resources"]) == {"requests", "limits"}
    port = container["ports"][0]["containerPort"]
    assert str(port) == dockerfile_value(r"^EXPOSE (\d+)$")
    assert {"name": "PORT", "value": str(port)} in container["env"]
    # The server never holds the admin URL: only the migration Job does.
    assert "DATABASE_ADMIN_URL" not in env_names(container)
    # The key files it is told about are where the Secret is mounted.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for variable in ("JWT_PRIVATE_KEY_FILE", "LICENSE_SIGNING_KEY_FILE"):
        (value,) = [e["value"] for e in container["env"] if e["name"] == variable]
        folder, file = value.rsplit("/", 1)
        (volume,) = [name for name, path in mounts.items() if path == folder]
        assert file in {item["path"] for item in volumes[volume]["secret"]["items"]}
    # Every name of the Service, autoscaler and budget points at these pods.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = objects[("Service", "coditect-cloud")]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    pdb = objects[("PodDisruptionBudget", "coditect-cloud")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = objects[("HorizontalPodAutoscaler", "coditect-cloud")]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "coditect-cloud",
    }
    assert hpa["spec"]["minReplicas"] >= pdb["spec"]["minAvailable"] + 1


def test_the_migration_job_runs_migrate_with_the_admin_url() -> None:
    objects = manifests()
    job = objects[("Job", "coditect-cloud-migrate")]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    deployment = objects[("Deployment", "coditect-cloud")]
    (api,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    assert container["image"] == api["image"]
    assert {"DATABASE_URL", "DATABASE_ADMIN_URL"} <= env_names(container)
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_every_variable_the_recipes_set_is_documented() -> None:
    documented = documented_variables()
    containers = [
        c
        for doc in manifests().values()
        if doc["kind"] in {"Deployment", "Job"}
        for c in doc["spec"]["template"]["spec"]["containers"]
    ]
    containers += cloudrun_containers()
    names = set().union(*(env_names(c) for c in containers))
    names |= set(manifests()[("ConfigMap", "coditect-cloud")]["data"])
    assert names - documented == set()


def test_the_secrets_the_kubernetes_recipe_uses_are_the_ones_its_guide_creates() -> None:
    guide = (KUBERNETES / "README.md").read_text()
    created = set(re.findall(r"create secret generic (\S+)", guide))
    used = set()
    for doc in manifests().values():
        if doc["kind"] in {"Deployment", "Job"}:
            spec = doc["spec"]["template"]["spec"]
            used |= set().union(*(secret_refs(c) for c in spec["containers"]))
            used |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    assert used == created


def cloudrun_containers() -> list[dict[str, Any]]:
    service = yaml.safe_load((CLOUDRUN / "service.yaml").read_text())
    job = yaml.safe_load((CLOUDRUN / "migrate-job.yaml").read_text())
    return [
        *service["spec"]["template"]["spec"]["containers"],
        *job["spec"]["template"]["spec"]["template"]["spec"]["containers"],
    ]


@pytest.mark.parametrize("path", ["service.yaml", "migrate-job.yaml"])
def test_cloud_run_containers_are_valid_kubernetes_containers(path: str) -> None:
    """Cloud Run's container and volume fields are Kubernetes' own: validated as a Pod."""
    doc = yaml.safe_load((CLOUDRUN / path).read_text())
    spec = doc["spec"]["template"]["spec"]
    if doc["kind"] == "Job":
        spec = spec["template"]["spec"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "cloud-run"},
        "spec": {"containers": spec["containers"], "volumes": spec.get("volumes", [])},
    }
    try:
        kubernetes_validate.validate(pod, KUBERNETES_VERSIONS[-1], strict=True)
    except kubernetes_validate.ValidationError as e:
        pytest.fail(f"{path}: {e.message}")


def test_the_cloud_run_service_and_job_match_the_guide() -> None:
    guide = (CLOUDRUN / "README.md").read_text()
    service = yaml.safe_load((CLOUDRUN / "service.yaml").read_text())
    job = yaml.safe_load((CLOUDRUN / "migrate-job.yaml").read_text())
    revision = service["spec"]["template"]
    (api,) = revision["spec"]["containers"]
    task = job["spec"]["template"]["spec"]["template"]["spec"]
    (migrate,) = task["containers"]
    # The same image; the job's command is migrate, the service's the image's default.
    assert api["image"] == migrate["image"]
    assert "args" not in api
    assert "command" not in api
    assert migrate["args"] == ["migrate"]
    assert api["ports"][0]["containerPort"] == int(dockerfile_value(r"^EXPOSE (\d+)$"))
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["startupProbe"]["httpGet"]["path"] == "/readyz"
    # Both reach Cloud SQL by its unix socket, the instance the guide's URLs name.
    socket = "run.googleapis.com/cloudsql-instances"
    assert revision["metadata"]["annotations"][socket] == "PROJECT:REGION:INSTANCE"
    assert job["spec"]["template"]["metadata"]["annotations"][socket] == "PROJECT:REGION:INSTANCE"
    assert "host=/cloudsql/$PROJECT:$REGION:$INSTANCE" in guide
    # Only the job holds the admin URL; every secret either uses is created by the guide,
    # and each service account it runs as is created and given exactly those secrets.
    assert "DATABASE_ADMIN_URL" not in env_names(api)
    assert "DATABASE_ADMIN_URL" in env_names(migrate)
    created = set(re.findall(r"gcloud secrets create (\S+)", guide))
    api_secrets = secret_refs(api) | {
        v["secret"]["secretName"] for v in revision["spec"]["volumes"]
    }
    assert api_secrets | secret_refs(migrate) <= created
    grants = re.findall(r"for secret in ([^;]+);", guide)
    granted = [set(g.replace("\\", " ").split()) for g in grants]
    assert granted == [api_secrets, secret_refs(migrate)]
    assert revision["spec"]["serviceAccountName"].startswith("coditect-cloud@")
    assert task["serviceAccountName"].startswith("coditect-cloud-migrate@")
    # The keys are files from Secret Manager, at the paths the variables name.
    files = {e["name"]: e["value"] for e in api["env"] if "value" in e}
    mounts = {m["name"]: m["mountPath"] for m in api["volumeMounts"]}
    volumes = {v["name"]: v["secret"] for v in revision["spec"]["volumes"]}
    for variable in ("JWT_PRIVATE_KEY_FILE", "LICENSE_SIGNING_KEY_FILE"):
        folder, file = files[variable].rsplit("/", 1)
        (volume,) = [name for name, path in mounts.items() if path == folder]
        assert [item["path"] for item in volumes[volume]["items"]] == [file]
    # The commands name files that exist.
    for mentioned in re.findall(r"deploy/cloudrun/(\S+\.yaml)", guide):
        assert (CLOUDRUN / mentioned).is_file(), mentioned


@pytest.mark.parametrize("folder", [KUBERNETES, CLOUDRUN])
def test_no_secret_is_written_into_a_recipe(folder: Path) -> None:
    for path in folder.glob("*.yaml"):
        text = path.read_text()
        assert "PRIVATE KEY" not in text, path
        # A URL with a password in it (user:password@) is a secret.
        assert re.search(r"://[^/\s:@]+:[^@\s]+@", text) is None, path


def checkov() -> str:
    """checkov's command: on PATH, or installed by pip into a venv of its own (it pins
    packaging<24, which the test environment's tox cannot live with)."""
    found = shutil.which("checkov") or CHECKOV_VENV / "bin" / "checkov"
    if Path(found).is_file():
        return str(found)
    subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
    subprocess.run(
        [str(CHECKOV_VENV / "bin" / "pip"), "install", "--quiet", "checkov>=3.2,<4"], check=True
    )
    return str(CHECKOV_VENV / "bin" / "checkov")


@pytest.mark.slow
def test_checkov_finds_nothing_in_the_kubernetes_recipe() -> None:
    # Not --quiet: that leaves the passed and skipped checks out of the report.
    result = subprocess.run(
        [
            checkov(),
            "--directory",
            str(KUBERNETES),
            "--framework",
            "kubernetes",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        (check["check_id"], check["resource"], check["check_name"])
        for r in reports
        for check in r["results"]["failed_checks"]
    ]
    assert failed == []
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= len(manifests())
    assert summary["passed"] > 100
    # Every skipped check says why, in the manifest.
    for r in reports:
        for check in r["results"]["skipped_checks"]:
            assert check["check_id"] == "CKV_K8S_35", check["check_id"]
