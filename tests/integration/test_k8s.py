"""The Kubernetes and KServe manifests, checked offline: ``kubectl kustomize`` renders every
overlay, each object validates against the API schemas of a pinned Kubernetes version
(kubernetes-validate) or its CRD's published schema (vendored in tests/schemas/crds/), and
what the manifests say agrees with the code: ports, probe paths, environment names,
secrets, limits, the drain and the alert rules."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from bench.ablation import conf_value
from deploy import k8s_rules
from deploy.stack import INFLIGHT_PER_WORKER, ROOT
from service.http.app import create_app
from service.settings import Settings

KUBERNETES = "1.32.0"
"""The cluster version the manifests target (kubectl on this machine is 1.32)."""
OVERLAYS = ("deploy/k8s/overlays/staging", "deploy/k8s/overlays/production")
KSERVE = "deploy/kserve"
CRDS = ROOT / "tests" / "schemas" / "crds"
SECRET = "model-serving-credentials"
PROCESS_ENV = {"BIND", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"}
"""Read by gunicorn.conf.py or prometheus_client rather than Settings."""


@cache
def render(folder: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is on the machine image (the issue says so)"
    done = subprocess.run(
        [kubectl, "kustomize", str(ROOT / folder)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod.get("initContainers", []) + pod["containers"]}


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def settings_env() -> set[str]:

    return {f.metadata["env"] for f in dataclasses.fields(Settings)} | {
        f.metadata["env"] + "_FILE"
        for f in dataclasses.fields(Settings)
        if f.metadata.get("file_env")
    }


@cache
def crd_schema(group: str, kind: str, version: str) -> dict[str, Any]:
    return json.loads(gzip.decompress((CRDS / f"{group}_{kind}_{version}.json.gz").read_bytes()))


ALL = [*OVERLAYS, KSERVE]
pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("folder", ALL)
def test_every_object_validates_against_its_schema(folder: str) -> None:
    for obj in render(folder):
        group, _, version = obj["apiVersion"].rpartition("/")
        if group.endswith(("coreos.com", "kserve.io")):
            schema = crd_schema(group, obj["kind"], version)
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=str)
            assert not errors, f"{obj['kind']}: {[e.message for e in errors[:5]]}"
        else:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_the_crd_validation_catches_a_wrong_field() -> None:
    """The vendored schemas are real ones: a misspelt field fails."""
    monitor = dict(of_kind(render(OVERLAYS[0]), "ServiceMonitor"))
    monitor["spec"] = {**monitor["spec"], "endpoints": [{"port": 9200}]}
    schema = crd_schema("monitoring.coreos.com", "ServiceMonitor", "v1")
    assert list(jsonschema.Draft7Validator(schema).iter_errors(monitor))


@pytest.mark.parametrize("folder", OVERLAYS)
def test_pod_wiring_agrees_with_nginx_gunicorn_and_settings(folder: str) -> None:
    objects = render(folder)
    pod = of_kind(objects, "Deployment")["spec"]["template"]["spec"]
    app, nginx = containers(pod)["app"], containers(pod)["nginx"]
    app_env, nginx_env = env(app), env(nginx)
    assert set(app_env) - PROCESS_ENV <= settings_env(), "every app variable is a setting"
    rendered_vars = set(re.findall(r"\$\{(\w+)\}", (ROOT / "deploy/nginx/render.sh").read_text()))
    assert set(nginx_env) <= rendered_vars, "every nginx variable is one render.sh substitutes"
    ports = {p["name"]: p["containerPort"] for c in (app, nginx) for p in c.get("ports", [])}
    assert port_of(app_env["BIND"]) == port_of(nginx_env["UPSTREAM"]) == ports["app"]
    assert port_of(nginx_env["NGINX_LISTEN"]) == ports["http"]
    assert port_of(nginx_env["METRICS_LISTEN"]) == ports["metrics"]
    assert app_env["MAX_BODY_BYTES"] == nginx_env["MAX_BODY_BYTES"]
    assert app_env["STORE_DIR"] == nginx_env["MODEL_DIR"], "nginx streams downloads from it"
    workers = int(app_env["WEB_CONCURRENCY"])
    assert int(nginx_env["MAX_INFLIGHT_PREDICTIONS"]) == INFLIGHT_PER_WORKER * workers
    service = of_kind(objects, "Service")
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"http", "metrics"}
    monitor = of_kind(objects, "ServiceMonitor")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


@pytest.mark.parametrize("folder", OVERLAYS)
def test_probes_hit_the_real_endpoints(folder: str, model_path: Path) -> None:
    app = create_app(Settings(model_path=model_path, allow_unsigned=True))
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    pod = of_kind(render(folder), "Deployment")["spec"]["template"]["spec"]
    probed = {
        probe["httpGet"]["path"]
        for c in pod["containers"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        if "httpGet" in (probe := c.get(kind, {}))
    }
    assert probed == {"/healthz", "/readyz"} and probed <= routes


@pytest.mark.parametrize("folder", OVERLAYS)
def test_credentials_come_from_the_one_secret(folder: str) -> None:
    pod = of_kind(render(folder), "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == SECRET
    mount = next(m for m in containers(pod)["app"]["volumeMounts"] if m["name"] == volume["name"])
    app_env = env(containers(pod)["app"])
    for variable, key in (
        ("MODEL_SIGNING_KEY_FILE", "signing-key"),
        ("ADMIN_TOKEN_FILE", "admin-token"),
    ):
        assert app_env[variable] == f"{mount['mountPath']}/{key}"


@pytest.mark.parametrize("folder", OVERLAYS)
def test_stopping_drains_within_the_grace_period(folder: str) -> None:
    pod = of_kind(render(folder), "Deployment")["spec"]["template"]["spec"]
    sleep = int(containers(pod)["nginx"]["lifecycle"]["preStop"]["exec"]["command"][-1])
    graceful = int(conf_value("graceful_timeout"))
    assert pod["terminationGracePeriodSeconds"] >= sleep + graceful


@pytest.mark.parametrize("folder", OVERLAYS)
def test_every_container_is_restricted_and_bounded(folder: str) -> None:
    objects = render(folder)
    pod = of_kind(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for name, container in containers(pod).items():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
    assert of_kind(objects, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("folder", OVERLAYS)
def test_metrics_are_reachable_from_monitoring_only(folder: str) -> None:
    rules = of_kind(render(folder), "NetworkPolicy")["spec"]["ingress"]
    open_ports = [p["port"] for rule in rules if "from" not in rule for p in rule["ports"]]
    assert open_ports == ["http"]
    (metrics,) = [rule for rule in rules if "from" in rule]
    assert [p["port"] for p in metrics["ports"]] == ["metrics"]
    selector = metrics["from"][0]["namespaceSelector"]["matchLabels"]
    assert selector == {"kubernetes.io/metadata.name": "monitoring"}


def test_production_is_stricter_than_staging() -> None:
    staging, production = (of_kind(render(o), "HorizontalPodAutoscaler") for o in OVERLAYS)
    assert production["spec"]["minReplicas"] > staging["spec"]["minReplicas"] >= 2
    pod = of_kind(render(OVERLAYS[1]), "Deployment")["spec"]["template"]["spec"]
    zone = pod["topologySpreadConstraints"][1]
    assert (zone["topologyKey"], zone["whenUnsatisfiable"]) == (
        "topology.kubernetes.io/zone",
        "DoNotSchedule",
    )


def test_the_prometheus_rule_is_the_repositorys_alert_rules() -> None:
    committed = (ROOT / "deploy/k8s/base/prometheus-rule.yaml").read_text()
    assert committed == k8s_rules.render(), "run `python -m deploy.k8s_rules`"
    rule = of_kind(render(OVERLAYS[0]), "PrometheusRule")
    alerts = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]


def test_the_kserve_runtime_serves_what_the_storage_initializer_fetched() -> None:
    objects = render(KSERVE)
    runtime, service = of_kind(objects, "ServingRuntime"), of_kind(objects, "InferenceService")
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert model["modelFormat"]["name"] in formats
    (container,) = runtime["spec"]["containers"]
    runtime_env = env(container)
    assert set(runtime_env) - PROCESS_ENV <= settings_env()
    assert runtime_env["MODEL_PATH"].startswith("/mnt/models/")
    assert port_of(runtime_env["BIND"]) == container["ports"][0]["containerPort"] == 8080
    assert runtime_env["MODEL_SIGNING_KEY"]["secretKeyRef"]["name"] == SECRET
    assert {container["readinessProbe"]["httpGet"]["path"]} == {"/readyz"}


def test_kserve_speaks_the_open_inference_protocol_under_the_services_name() -> None:
    """KServe templates the runtime's container with the InferenceService's metadata: the
    model's name in /v2/models/<name> is the InferenceService's, as KServe clients expect."""
    objects = render(KSERVE)
    runtime, service = of_kind(objects, "ServingRuntime"), of_kind(objects, "InferenceService")
    assert "v2" in runtime["spec"]["protocolVersions"]
    assert service["spec"]["predictor"]["model"]["protocolVersion"] == "v2"
    (container,) = runtime["spec"]["containers"]
    assert env(container)["MODEL_NAME"] == "{{.Name}}"
    name = service["metadata"]["name"]
    assert Settings(model_name=name, allow_unsigned=True).served_name == name  # accepted
