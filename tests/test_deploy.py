"""The Dockerfile (hadolint) and the Helm chart (the real Helm engine, Kubernetes schemas)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import REPO

CHART = REPO / "helm" / "omni"
KUBE_VERSION = "1.30.0"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
DEFAULTS: dict[str, Any] = {"slack": {"botToken": "xoxb-test", "signingSecret": "test-secret"}}


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(
        Path(__import__("sys").executable).parent / "hadolint"
    )
    out = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_shape() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2  # multi-stage
    assert "USER 10001" in text and "HEALTHCHECK" in text and 'ENTRYPOINT ["omni"]' in text
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert "gcc" not in final_stage and "build-essential" not in final_stage
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    import helm_python as helm

    out = helm.Chart.load(str(CHART)).render(values, name="omni", namespace="ops")
    return [
        d
        for name, text in out.items()
        if not name.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text)
        if d
    ]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize(
    "values_file", [None, *CI_VALUES], ids=lambda p: "default" if p is None else p.name
)
def test_chart_lints_renders_and_validates(values_file: Path | None) -> None:
    import helm_python as helm
    import kubernetes_validate

    values = yaml.safe_load(values_file.read_text()) if values_file else DEFAULTS
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report
    docs = _render(values)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_two_deployments_hardened_with_probes() -> None:
    docs = _render(DEFAULTS)
    deployments = {d["metadata"]["name"]: d for d in _by_kind(docs, "Deployment")}
    assert set(deployments) == {"omni-bot", "omni-worker"}
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        [container] = pod["containers"]
        sc = container["securityContext"]
        assert (
            sc["readOnlyRootFilesystem"] is True
            and sc["capabilities"]["drop"] == ["ALL"]
            and sc["allowPrivilegeEscalation"] is False
        )
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert "checksum/config" in dep["spec"]["template"]["metadata"]["annotations"], name
    assert (
        deployments["omni-bot"]["spec"]["template"]["spec"]["containers"][0]["args"][0] == "serve"
    )
    assert deployments["omni-worker"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "worker"
    ]


def test_only_the_worker_gets_aws_access() -> None:
    docs = _render(
        {
            **DEFAULTS,
            "worker": {
                "serviceAccount": {"roleArn": "arn:aws:iam::111111111111:role/omni-diagnostics"}
            },
        }
    )
    accounts = {d["metadata"]["name"]: d for d in _by_kind(docs, "ServiceAccount")}
    assert accounts["omni-worker"]["metadata"]["annotations"][
        "eks.amazonaws.com/role-arn"
    ].endswith("role/omni-diagnostics")
    assert "annotations" not in accounts["omni-bot"]["metadata"]
    assert accounts["omni-bot"]["automountServiceAccountToken"] is False
    bot = next(d for d in _by_kind(docs, "Deployment") if d["metadata"]["name"] == "omni-bot")
    env = {e["name"] for e in bot["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not {e for e in env if e.startswith("AWS_")}


def test_config_change_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        dep = next(
            d
            for d in _by_kind(_render(values), "Deployment")
            if d["metadata"]["name"] == "omni-worker"
        )
        return str(dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(DEFAULTS) != checksum({**DEFAULTS, "config": {"OMNI_ENVIRONMENT": "staging"}})
    assert checksum(DEFAULTS) == checksum(dict(DEFAULTS))


def test_config_file_is_mounted_as_omni_config_and_loads(tmp_path: Any, monkeypatch: Any) -> None:
    from commands.settings import Settings

    values = yaml.safe_load((CHART / "ci" / "environments-values.yaml").read_text())
    docs = _render({**DEFAULTS, **values})
    [config_map] = _by_kind(docs, "ConfigMap")
    for dep in _by_kind(docs, "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert env["OMNI_CONFIG"] == "/etc/omni/omni.yaml" and mounts["config"] == "/etc/omni"
    # the file the pods read is one the settings model accepts
    path = tmp_path / "omni.yaml"
    path.write_text(config_map["data"]["omni.yaml"])
    monkeypatch.setenv("OMNI_CONFIG", str(path))
    settings = Settings()
    assert settings.environment_names() == ["production", "staging"]
    assert settings.for_environment("staging").region == "eu-west-1"
    assert "omni.yaml" not in _by_kind(_render(DEFAULTS), "ConfigMap")[0]["data"]


def test_existing_secrets_are_referenced_not_created() -> None:
    docs = _render(yaml.safe_load((CHART / "ci" / "existing-secrets-values.yaml").read_text()))
    assert _by_kind(docs, "Secret") == []
    worker = next(d for d in _by_kind(docs, "Deployment") if d["metadata"]["name"] == "omni-worker")
    env = {e["name"]: e for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "omni-redis", "key": "url"}
    assert env["SLACK_BOT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "omni-slack"


def test_redis_credentials_plan_key_and_egress_are_locked_down() -> None:
    """Issue 18 (3): Redis's password and TLS come from a secret, the plan key too, and the
    pods reach only DNS, Redis and HTTPS (the worker also PostgreSQL, for the SQL checks)."""
    url = "rediss://:s3cret@omni-redis.abc.cache.amazonaws.com:6380/0"
    docs = _render(
        {**DEFAULTS, "redis": {"url": url}, "slack": {**DEFAULTS["slack"], "planKey": "k" * 32}}
    )
    secrets = {d["metadata"]["name"]: d for d in _by_kind(docs, "Secret")}
    assert secrets["omni-redis"]["stringData"]["REDIS_URL"] == url
    assert secrets["omni-slack"]["stringData"]["OMNI_PLAN_KEY"] == "k" * 32
    for deployment in _by_kind(docs, "Deployment"):
        text = yaml.safe_dump(deployment)
        assert "s3cret" not in text and "k" * 32 not in text  # only references to the secrets
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "omni-redis"
        assert env["OMNI_PLAN_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    policies = {d["metadata"]["name"]: d for d in _by_kind(docs, "NetworkPolicy")}
    allowed = {
        name: {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        for name, policy in policies.items()
    }
    assert allowed == {"omni-bot": {53, 6379, 443}, "omni-worker": {53, 6379, 443, 5432}}
    assert all(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in policies.values())


def test_schema_rejects_bad_values() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError):
        helm.Chart.load(str(CHART)).render(
            {**DEFAULTS, "bot": {"replicas": "two", "port": 3000}}, name="omni"
        )
    with pytest.raises(helm.HelmError):
        helm.Chart.load(str(CHART)).render(
            {**DEFAULTS, "redis": {"url": "http://not-redis"}}, name="omni"
        )
