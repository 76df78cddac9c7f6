"""The Helm chart, rendered by the real helm binary: lint, template, schema, RBAC, pod security."""

from __future__ import annotations

import json
import tarfile
from typing import Any

import click
import pytest
import yaml

from rollguard.cli.main import SUBCOMMANDS, cli
from tests.support.helm import CHART, Helm, find, helm, one, pod_specs

CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
NAMESPACED = yaml.safe_load((CHART / "ci" / "namespaced-values.yaml").read_text())


# One worker runs this module under pytest-xdist: its module fixture is built once.
pytestmark = pytest.mark.xdist_group("chart-render")


@pytest.fixture(scope="module")
def h() -> Helm:
    return helm()


@pytest.fixture(scope="module")
def default(h: Helm) -> list[dict[str, Any]]:
    return h.template()


@pytest.fixture(scope="module")
def with_api(h: Helm) -> list[dict[str, Any]]:
    return h.template("--set", "api.enabled=true")


@pytest.fixture(scope="module")
def namespaced(h: Helm) -> list[dict[str, Any]]:
    return h.template(values=NAMESPACED)


def test_helm_lint_strict_default_and_ci_values(h: Helm) -> None:
    out = h("lint", "--strict", str(CHART)).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert len(CI_VALUES) >= 2
    for f in CI_VALUES:
        out = h("lint", "--strict", str(CHART), "-f", str(f)).stdout
        assert "0 chart(s) failed" in out, (f, out)


def test_default_install_is_the_operator_alone(default: list[dict[str, Any]]) -> None:
    """No values at all: the CRDs, the operator and what it needs; no API, no database, no Job."""
    assert {(o["kind"], o["metadata"]["name"]) for o in default} == {
        ("CustomResourceDefinition", "canaryrollouts.rollguard.io"),
        ("CustomResourceDefinition", "failurecatalogs.rollguard.io"),
        ("CustomResourceDefinition", "featureflags.rollguard.io"),
        ("Deployment", "rg-rollguard-operator"), ("Service", "rg-rollguard-operator"),
        ("ServiceAccount", "rg-rollguard-operator"),
        ("ClusterRole", "rg-rollguard-operator-rollguard"), ("ClusterRoleBinding", "rg-rollguard-operator-rollguard"),
        ("PodDisruptionBudget", "rg-rollguard-operator"), ("ConfigMap", "rg-rollguard-dashboard"),
        ("ClusterKopfPeering", "rollguard"), ("Pod", "rg-rollguard-test")}
    # The helm test pod checks the operator only.
    test_pod = one(default, "Pod", "rg-rollguard-test")
    assert "rg-rollguard-api" not in json.dumps(test_pod)


def test_api_enabled_adds_every_api_component(with_api: list[dict[str, Any]]) -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in with_api}
    for expected in [("Deployment", "rg-rollguard-operator"), ("Deployment", "rg-rollguard-api"),
                     ("Service", "rg-rollguard-api"), ("Service", "rg-rollguard-operator"),
                     ("ServiceAccount", "rg-rollguard-operator"), ("ServiceAccount", "rg-rollguard-api"),
                     ("ClusterRole", "rg-rollguard-operator-rollguard"),
                     ("ClusterRoleBinding", "rg-rollguard-operator-rollguard"),
                     ("Job", "rg-rollguard-api-migrate"), ("CronJob", "rg-rollguard-aggregate"),
                     ("CronJob", "rg-rollguard-prune"), ("PodDisruptionBudget", "rg-rollguard-api"),
                     ("PodDisruptionBudget", "rg-rollguard-operator"), ("ConfigMap", "rg-rollguard-dashboard"),
                     ("ClusterKopfPeering", "rollguard"), ("Pod", "rg-rollguard-test")]:
        assert expected in kinds, expected
    # Opt-in objects (need the Prometheus Operator's CRDs) stay off by default.
    assert not find(with_api, "ServiceMonitor") and not find(with_api, "PrometheusRule")
    # Every namespaced object lands in the release namespace.
    for o in with_api:
        if o["kind"] not in ("ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering", "CustomResourceDefinition"):
            assert o["metadata"]["namespace"] == "rollguard", o["metadata"]["name"]


@pytest.mark.parametrize(("values_name", "pod_count"), [("default", 2), ("with_api", 6), ("namespaced", 6)])
def test_every_pod_is_podsecurity_restricted(request: pytest.FixtureRequest, values_name: str,
                                             pod_count: int) -> None:
    objs: list[dict[str, Any]] = request.getfixturevalue(values_name)
    pods = list(pod_specs(objs))
    # operator and test; with the API also api, migrate, aggregate, prune
    assert len(pods) == pod_count, [p for p, _ in pods]
    for name, spec in pods:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001, name
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        for vol in spec.get("volumes", []):
            assert "hostPath" not in vol, (name, vol)
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert not sc.get("privileged"), name
            # The root filesystem is read-only: Python needs a writable /tmp.
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], name
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], name


def test_deployments_have_probes_on_the_documented_endpoints(with_api: list[dict[str, Any]]) -> None:
    op = one(with_api, "Deployment", "rg-rollguard-operator")["spec"]["template"]["spec"]["containers"][0]
    assert op["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in op["ports"]
    api = one(with_api, "Deployment", "rg-rollguard-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in api["ports"]


def _container_args(objs: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {name: c["args"] for name, spec in pod_specs(objs) for c in spec["containers"]
            if name != "Pod/rg-rollguard-test"}


def test_commands_match_the_documented_cli(with_api: list[dict[str, Any]]) -> None:
    args = _container_args(with_api)
    assert args["Deployment/rg-rollguard-operator"] == [
        "operator", "run", "--peering", "--peering-name=rollguard", "--liveness=http://0.0.0.0:8080/healthz"]
    assert args["Deployment/rg-rollguard-api"] == [
        "api", "serve", "--host=0.0.0.0", "--port=8000", "--database-url=$(DATABASE_URL)"]
    assert args["Job/rg-rollguard-api-migrate"] == ["api", "migrate"]
    assert args["CronJob/rg-rollguard-aggregate"] == [
        "failures", "aggregate", "--days", "14", "--min-occurrences", "5",
        "--output", "/data/candidate_failure_patterns.json"]
    assert args["CronJob/rg-rollguard-prune"] == ["failures", "prune", "--older-than", "90d"]


def _parse_with_cli(argv: list[str]) -> click.Context:
    """Resolve argv against the real `rollguard` click tree without running the command."""
    cmd: click.Command = cli
    ctx = cli.make_context("rollguard", list(argv[:1]), resilient_parsing=True)
    rest = list(argv)
    while isinstance(cmd, click.Group):
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, f"`rollguard {' '.join(argv)}`: no command {rest[0]!r}"
        cmd, rest = sub, rest[1:]
    return cmd.make_context(cmd.name or "", rest)  # raises click.UsageError on an unknown option


@pytest.mark.parametrize("values_name", ["default", "with_api", "namespaced"])
def test_container_args_are_accepted_by_the_registered_cli(request: pytest.FixtureRequest, values_name: str) -> None:
    # Every command the chart runs must parse with the real CLI. Groups not registered in this
    # tree yet (api, failures land from other branches) are checked once they are.
    objs: list[dict[str, Any]] = request.getfixturevalue(values_name)
    checked = []
    for name, argv in _container_args(objs).items():
        if argv[0] in SUBCOMMANDS:
            ctx = _parse_with_cli(argv)
            checked.append(name)
            if argv[:2] == ["operator", "run"]:
                expect_ns = tuple(NAMESPACED["watchNamespaces"]) if values_name == "namespaced" else ()
                assert ctx.params["namespaces"] == expect_ns
                assert ctx.params["standalone"] is False
                assert ctx.params["liveness"] == "http://0.0.0.0:8080/healthz"
    assert any("operator" in n for n in checked)


# ---- RBAC ----

def _rules(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    out = set()
    for r in role["rules"]:
        for g in r["apiGroups"]:
            for res in r["resources"]:
                for v in r["verbs"]:
                    out.add((g, res, v))
    return out


def _expand(spec: dict[tuple[str, str], str]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for (g, r), verbs in spec.items() for v in verbs.split()}


KINDS = ("failurecatalogs", "featureflags", "canaryrollouts")
# Exactly what the operator uses; anything more is a finding in a security review.
NAMESPACED_RULES = _expand({
    **{("rollguard.io", r): "get list watch patch update" for r in KINDS},
    **{("rollguard.io", f"{r}/{s}"): "get patch update" for r in KINDS for s in ("status", "finalizers")},
    ("", "configmaps"): "get list watch create patch delete",
    ("apps", "deployments"): "get list watch create patch delete",
    ("apps", "replicasets"): "list",  # the catalog operator: versions old pods still mount
    ("", "services"): "get list watch create patch delete",
    ("networking.k8s.io", "ingresses"): "get list watch create patch delete",
    ("gateway.networking.k8s.io", "httproutes"): "get update",  # the router's read and replace
    ("", "pods"): "list patch",  # the stable's track label; a failed smoke Job's exit code
    ("batch", "jobs"): "get list watch create delete",
    ("", "events"): "create patch",
    ("events.k8s.io", "events"): "create patch",
    ("kopf.dev", "kopfpeerings"): "get list watch patch",
})
CLUSTER_RULES = _expand({
    ("apiextensions.k8s.io", "customresourcedefinitions"): "get list watch",
    ("", "namespaces"): "list watch",
})
CLUSTER_PEERING = _expand({("kopf.dev", "clusterkopfpeerings"): "get list watch patch"})


def test_cluster_wide_rbac_is_exactly_the_operators_needs(default: list[dict[str, Any]]) -> None:
    role = one(default, "ClusterRole")
    assert _rules(role) == NAMESPACED_RULES | CLUSTER_RULES | CLUSTER_PEERING
    assert not find(default, "Role") and not find(default, "RoleBinding")
    binding = one(default, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rg-rollguard-operator", "namespace": "rollguard"}]


def test_watch_namespaces_gives_a_role_per_namespace_and_no_cluster_wide_writes(
        namespaced: list[dict[str, Any]]) -> None:
    assert _rules(one(namespaced, "ClusterRole")) == CLUSTER_RULES
    roles = find(namespaced, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for r in roles:
        assert _rules(r) == NAMESPACED_RULES
    bindings = find(namespaced, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for b in bindings:
        assert b["subjects"][0] == {"kind": "ServiceAccount", "name": "rg-rollguard-operator", "namespace": "rollguard"}
    # kopf's namespaced peering: one KopfPeering per watched namespace, no cluster one.
    peerings = find(namespaced, "KopfPeering")
    assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings) == [
        ("team-a", "rollguard-staging"), ("team-b", "rollguard-staging")]
    assert not find(namespaced, "ClusterKopfPeering")


@pytest.mark.parametrize("values_name", ["default", "namespaced"])
def test_no_secrets_and_no_wildcards_anywhere(request: pytest.FixtureRequest, values_name: str) -> None:
    objs: list[dict[str, Any]] = request.getfixturevalue(values_name)
    for role in find(objs, "ClusterRole") + find(objs, "Role"):
        for g, res, v in _rules(role):
            assert "*" not in (g, res, v), role["metadata"]["name"]
            assert res not in ("secrets", "pods/exec", "serviceaccounts/token"), (role["metadata"]["name"], res)
            assert v not in ("escalate", "bind", "impersonate"), role["metadata"]["name"]


def test_api_and_jobs_have_no_kubernetes_credentials(with_api: list[dict[str, Any]]) -> None:
    assert one(with_api, "ServiceAccount", "rg-rollguard-api")["automountServiceAccountToken"] is False
    for name, spec in pod_specs(with_api):
        if "operator" not in name:
            assert spec["automountServiceAccountToken"] is False, name
    bindings = find(with_api, "ClusterRoleBinding") + find(with_api, "RoleBinding")
    bound = {s["name"] for b in bindings for s in b["subjects"]}
    assert bound == {"rg-rollguard-operator"}


# ---- values ----

def test_non_default_values_take_effect(namespaced: list[dict[str, Any]]) -> None:
    op = one(namespaced, "Deployment", "rg-rollguard-operator")
    c = op["spec"]["template"]["spec"]["containers"][0]
    digest = NAMESPACED["image"]["digest"]
    assert c["image"] == f"registry.example.com/platform/rollguard@{digest}"
    assert c["imagePullPolicy"] == "Always"
    assert op["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert c["args"][:4] == ["operator", "run", "--namespace=team-a", "--namespace=team-b"]
    assert "--verbose" in c["args"] and "--peering-name=rollguard-staging" in c["args"]
    assert {"name": "ROLLGUARD_LOG_FORMAT", "value": "json"} in c["env"]
    assert op["metadata"]["labels"]["team"] == "platform"
    api = one(namespaced, "Deployment", "rg-rollguard-api")
    assert api["spec"]["replicas"] == 3
    assert one(namespaced, "Service", "rg-rollguard-api")["spec"]["type"] == "NodePort"
    # The chart-managed database Secret is a hook created before the migration Job.
    secret = one(namespaced, "Secret")
    assert secret["stringData"] == {"DATABASE_URL": NAMESPACED["api"]["database"]["url"]}
    job = one(namespaced, "Job")
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    agg = one(namespaced, "CronJob", "rg-rollguard-aggregate")
    assert agg["spec"]["schedule"] == "15 1 * * *"
    pod = agg["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][2:6] == ["--days", "7", "--min-occurrences", "3"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "rollguard-aggregation"}} in pod["volumes"]
    prune = one(namespaced, "CronJob", "rg-rollguard-prune")
    assert prune["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "30d"
    dash = one(namespaced, "ConfigMap", "rg-rollguard-dashboard")
    assert dash["metadata"]["namespace"] == "monitoring"


def test_standalone_operator_without_api(h: Helm) -> None:
    objs = h.template(values=yaml.safe_load((CHART / "ci" / "standalone-values.yaml").read_text()))
    assert {o["kind"] for o in objs} == {"CustomResourceDefinition", "Deployment", "Service", "ServiceAccount",
                                         "ClusterRole", "ClusterRoleBinding"}
    c = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--standalone" in c["args"] and "--peering" not in c["args"]


def test_monitoring_objects_carry_the_rules_file_and_dashboard_verbatim(namespaced: list[dict[str, Any]]) -> None:
    rule = one(namespaced, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    sm = one(namespaced, "ServiceMonitor")
    assert sm["spec"]["jobLabel"] == "rollguard.io/job"
    assert {e["port"] for e in sm["spec"]["endpoints"]} == {"metrics", "http"}
    # The alert rules select job="rollguard-operator" / "rollguard-api": the Services must say so.
    jobs = {s["metadata"]["labels"].get("rollguard.io/job") for s in find(namespaced, "Service")}
    assert jobs == {"rollguard-operator", "rollguard-api"}
    cm = one(namespaced, "ConfigMap", "rg-rollguard-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["rollguard.json"]) == json.loads(
        (CHART / "files" / "dashboards" / "rollguard.json").read_text())


def test_pdb_never_blocks_drains_of_a_single_api_replica(h: Helm) -> None:
    objs = h.template("--set", "api.enabled=true", "--set", "api.replicas=1")
    pdb = one(objs, "PodDisruptionBudget", "rg-rollguard-api")["spec"]
    assert "minAvailable" not in pdb and pdb["maxUnavailable"] == 1
    objs = h.template("--set", "api.enabled=true", "--set", "api.replicas=3")
    assert one(objs, "PodDisruptionBudget", "rg-rollguard-api")["spec"]["minAvailable"] == 1


def test_several_operator_replicas_use_peering_and_no_shared_priority(h: Helm) -> None:
    # kopf pauses every replica that sees a same-priority peer: the chart must not pin one
    # priority for all pods of the Deployment; each pod picks its own (tests/unit/test_operator_cli.py).
    objs = h.template("--set", "operator.replicas=2")
    dep = one(objs, "Deployment", "rg-rollguard-operator")
    assert dep["spec"]["replicas"] == 2
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert "--peering" in c["args"] and not any(a.startswith("--priority") for a in c["args"])
    assert "ROLLGUARD_PEERING_PRIORITY" not in {e["name"] for e in c["env"]}
    assert one(objs, "ClusterKopfPeering", "rollguard")


def test_schema_rejects_bad_values_with_the_offending_path(h: Helm, tmp_path: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "operator": {"replicas": "two"},
        "api": {"port": 70000, "service": {"type": "Ingress"}},
        "prune": {"olderThan": "3 months"},
        "watchNamespaces": ["Team_A"],
        "aggregation": {"schedule": "nightly"},
        "imagePullPolicy": "Always",
    }))
    # (`helm install` with the same file is tests/integration/test_chart_install.py)
    proc = h("template", "rg", str(CHART), "-f", str(bad), check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert "values don't meet the specifications of the schema" in err, err
    for path in ("/operator/replicas", "/api/port", "/api/service/type", "/prune/olderThan",
                 "/watchNamespaces/0", "/aggregation/schedule"):
        assert f"at '{path}'" in err, (path, err)
    assert "additional properties 'imagePullPolicy' not allowed" in err
    # ...and the good values pass the same command.
    assert h("template", "rg", str(CHART), "-f", str(CI_VALUES[0])).returncode == 0


def test_values_the_schema_cannot_express_fail_with_a_message(h: Helm) -> None:
    proc = h("template", "rg", str(CHART), "--set", "operator.replicas=2", "--set", "operator.standalone=true",
             check=False)
    assert proc.returncode != 0 and "operator.replicas=2 with operator.standalone=true" in proc.stderr
    proc = h("template", "rg", str(CHART), "--set", "api.database.url=postgresql://x/y",
             "--set", "api.database.existingSecret=db", check=False)
    assert proc.returncode != 0 and "api.database: set either existingSecret or url, not both" in proc.stderr


def test_helm_template_renders_the_api_without_asking_a_cluster_for_its_secret(h: Helm) -> None:
    """The database Secret check needs a cluster (`lookup`); `helm template` has none, so it renders
    the API reading the Secret named (tests/integration/test_chart_install.py: the check itself)."""
    objs = h.template("--set", "api.enabled=true", "--set", "api.database.existingSecret=pg")
    env = one(objs, "Deployment", "rg-rollguard-api")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "pg", "key": "DATABASE_URL"}}} in env


def test_packaged_chart_renders_the_same_and_leaves_ci_values_out(h: Helm, tmp_path: Any,
                                                                  default: list[dict[str, Any]]) -> None:
    h("package", str(CHART), "-d", str(tmp_path))
    tgz = next(tmp_path.glob("rollguard-*.tgz"))
    with tarfile.open(tgz) as tar:
        names = set(tar.getnames())
    assert {"rollguard/files/prometheus-rules.yaml", "rollguard/files/dashboards/rollguard.json",
            "rollguard/values.schema.json", "rollguard/crds/kopf-peering.yaml",
            "rollguard/files/crds/featureflags.rollguard.io.yaml"} <= names
    assert not any(n.startswith("rollguard/ci/") for n in names)
    out = h("template", "rg", str(tgz), "--namespace", "rollguard").stdout
    assert [d for d in yaml.safe_load_all(out) if d] == default


def test_pod_labels_reach_every_pod_the_chart_runs(h: Helm) -> None:
    """``podLabels`` is on every pod (Deployments, hook and cron Jobs, the ``helm test`` pod);
    a component's own ``podLabels`` add to it."""
    objs = h.template(values={"podLabels": {"team": "platform"}, "api": {"enabled": True, "podLabels": {"tier": "api"}},
                              "aggregation": {"enabled": True}, "prune": {"enabled": True}})
    labels: dict[str, dict[str, str]] = {}
    for o in objs:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] in ("Deployment", "Job"):
            labels[name] = o["spec"]["template"]["metadata"]["labels"]
        elif o["kind"] == "CronJob":
            labels[name] = o["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        elif o["kind"] == "Pod":
            labels[name] = o["metadata"]["labels"]
    assert {n.split("/")[0] for n in labels} == {"Deployment", "Job", "CronJob", "Pod"}, sorted(labels)
    assert {n for n, pod in labels.items() if pod.get("team") != "platform"} == set()
    assert {n for n, pod in labels.items() if pod.get("tier") == "api"} == {"Deployment/rg-rollguard-api"}
