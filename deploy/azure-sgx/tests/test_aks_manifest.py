"""uid2-operator-aks.yml: valid against the Kubernetes API schemas (offline, bundled with
kubernetes-validate), and deployable as the package intends: on SGX nodes with enough EPC for the
enclave, one pod per node, keys from a Secret, probes that never restart a pod because Core is
down."""

import copy

import kubernetes_validate
import pytest
import yaml

import occlum_config
from conftest import PACKAGE

MANIFEST = PACKAGE / "uid2-operator-aks.yml"
# The oldest and newest Kubernetes minor versions this package is checked against.
KUBERNETES_VERSIONS = ["1.31.0", "1.33.0"]
EPC = "sgx.intel.com/epc"
UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}


@pytest.fixture(scope="module")
def documents():
    return list(yaml.safe_load_all(MANIFEST.read_text()))


@pytest.fixture(scope="module")
def deployment(documents):
    return next(d for d in documents if d["kind"] == "Deployment")


@pytest.fixture(scope="module")
def service(documents):
    return next(d for d in documents if d["kind"] == "Service")


@pytest.fixture(scope="module")
def container(deployment):
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def quantity(text):
    text = str(text)
    for unit, factor in UNITS.items():
        if text.endswith(unit):
            return int(text[: -len(unit)]) * factor
    return int(text)


def test_a_deployment_and_a_service(documents):
    assert sorted(d["kind"] for d in documents) == ["Deployment", "Service"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_valid_against_the_kubernetes_schemas(documents, version):
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_the_schema_check_is_real(deployment):
    # A misspelt field must fail strict validation; otherwise the test above proves nothing.
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_keys_come_from_a_secret(container):
    env = {e["name"]: e for e in container["env"]}
    for name in ("core_api_token", "optout_api_token"):
        assert "value" not in env[name], f"{name} must not be written into the manifest"
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] and ref["key"]
    assert all("value" not in e or "token" not in e["name"].lower() for e in container["env"])


def test_ports(container, service, deployment):
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "prometheus": 9091}
    service_ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert service_ports == {"http": (8080, "http"), "prometheus": (9091, "prometheus")}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9091"
    assert "9080" not in MANIFEST.read_text()


def test_service_selects_the_pods(service, deployment):
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_epc_covers_the_enclave(container, occlum_json):
    resources = container["resources"]
    # Extended resources cannot be overcommitted: the request, when given, equals the limit.
    limit = quantity(resources["limits"][EPC])
    assert quantity(resources["requests"].get(EPC, resources["limits"][EPC])) == limit
    budget = occlum_config.enclave_budget(occlum_json)
    assert limit >= sum(budget.values()), budget
    assert "kubernetes.azure.com/sgx_epc_mem_in_MiB" not in resources["limits"]


def test_one_pod_per_node(deployment):
    spec = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    terms = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert any(
        t["topologyKey"] == "kubernetes.io/hostname" and t["labelSelector"]["matchLabels"].items() <= labels.items()
        for t in terms
    )
    # With one pod per node a surge pod needs a spare SGX node; the rollout replaces in place.
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


def test_image_pull_secret(deployment):
    assert deployment["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"]


def _seconds(probe):
    return probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)


def test_startup_allows_minutes_for_enclave_load(container):
    assert _seconds(container["startupProbe"]) >= 300


def test_readiness_is_the_healthcheck(container):
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/ops/healthcheck"
    assert probe["port"] in (8080, "http")


def test_liveness_does_not_restart_during_a_core_outage(container):
    # /ops/healthcheck answers 503 until the first sync, so a liveness check on it would restart
    # the pod in a loop whenever Core is unreachable at start; restarting never helps.
    probe = container["livenessProbe"]
    if "httpGet" in probe and probe["httpGet"]["path"] == "/ops/healthcheck":
        assert _seconds(probe) >= 3600, "liveness on /ops/healthcheck needs a very high failureThreshold"
    else:
        assert probe["tcpSocket"]["port"] in (8080, "http")


def test_termination(deployment, container):
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert 15 <= grace <= 120
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep" and int(pause[1]) < grace


def test_optout_cache_volume_is_the_tmp_sefs_directory(container, occlum_json):
    tmp = next(m for m in occlum_json["mount"] if m["target"] == "/tmp")
    instance = "/root/uid2-operator"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert f"{instance}/{tmp['source'].removeprefix('./')}" in mounts
