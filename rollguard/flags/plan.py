"""The namespace-wide plan: every flag of a namespace evaluated for every environment there.

``plan_namespace(flags, deployments, namespace, now) -> NamespacePlan`` is pure. The operator
gathers the flags and Deployments, calls it, and carries out the plan: one ConfigMap per
environment, the flags volume on each target Deployment, a status per flag.

Which environments exist: every environment a flag of the namespace names (in an override
or a target). Every environment's files hold every (valid) flag of the namespace, so a
backend asking for a flag of its namespace always gets the value meant for its environment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from rollguard.flags.evaluate import SignoffVerdict, evaluate, flag_environments, next_transition, signoff_verdict
from rollguard.flags.render import FLAGD_FILE, FLAGS_FILE, Evaluated, dumps, render_flagd, render_flags
from rollguard.kube.names import FLAGS_CONFIG_MAP_PREFIX as CONFIGMAP_PREFIX
from rollguard.kube.names import flags_config_map as configmap_name
from rollguard.models.flag import FeatureFlag

__all__ = ["CONFIGMAP_PREFIX", "DeploymentObs", "FlagPlan", "NamespacePlan", "configmap_name", "flag_fault",
           "plan_namespace"]


@dataclass(frozen=True)
class DeploymentObs:
    """What the plan needs to know about a Deployment of the namespace."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    containers: tuple[str, ...] = ()
    mounted_environment: str | None = None  # the environment rollguard mounted last time, if any
    all_containers_mounted: bool = False  # every container has the flags volumeMount


@dataclass
class FlagPlan:
    flag: FeatureFlag
    verdict: SignoffVerdict
    values: dict[str, Evaluated] = field(default_factory=dict)  # environment -> value
    deployments: dict[str, list[str]] = field(default_factory=dict)  # environment -> mounted Deployments
    missing: list[str] = field(default_factory=list)  # targets that name a Deployment that does not exist
    problems: list[tuple[str, str]] = field(default_factory=list)  # (reason, message): flag is Invalid

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass
class NamespacePlan:
    namespace: str
    environments: list[str]
    files: dict[str, dict[str, str]]  # environment -> file name -> content
    mounts: dict[str, str]  # Deployment -> environment
    unmounts: list[str]  # Deployments rollguard mounted before and no longer targets
    conflicts: dict[str, list[str]]  # Deployment -> the environments that claim it
    flags: dict[str, FlagPlan]  # resource name -> its plan
    # resource name -> why it cannot be evaluated: left out of everything above (not delivered,
    # no mounts), so one bad flag never stops the rest of the namespace
    faults: dict[str, str] = field(default_factory=dict)


def _created(flag: FeatureFlag) -> tuple[str, str]:
    return (str(flag.metadata.get("creationTimestamp") or ""), flag.name)


def flag_fault(flag: FeatureFlag, now: dt.datetime) -> str | None:
    """Why ``flag`` cannot be evaluated (its gate, its value in each of its environments, when it
    changes by itself), or None. Whatever the fault, it is this flag's alone."""
    try:
        verdict = signoff_verdict(flag.spec, now)
        for env in sorted(flag_environments(flag)) or [""]:
            evaluate(flag.spec, env, now, verdict)
        next_transition(flag.spec, now)
    except Exception as e:  # any fault of one object: it is reported on that object, the others go on
        return f"cannot evaluate FeatureFlag {flag.name}: {type(e).__name__}: {e}"
    return None


def plan_namespace(flags: list[FeatureFlag], deployments: list[DeploymentObs], namespace: str,
                   now: dt.datetime) -> NamespacePlan:
    """Every flag of the namespace in every environment: files, mounts, each flag's plan. A flag
    that cannot be evaluated is left out of all of it and listed in ``faults``."""
    faults = {f.name: fault for f in flags if (fault := flag_fault(f, now)) is not None}
    flags = [f for f in flags if f.name not in faults]
    plans = {f.name: FlagPlan(f, signoff_verdict(f.spec, now)) for f in flags}

    # Two flags answering to the same key: the older one wins, the newer one is Invalid.
    owner_of_key: dict[str, str] = {}
    for f in sorted(flags, key=_created):
        first = owner_of_key.setdefault(f.key, f.name)
        if first != f.name:
            plans[f.name].problems.append(
                ("DuplicateKey", f"key {f.key!r} is already used by FeatureFlag {first}; this flag is not delivered"))

    environments = sorted({e for f in flags for e in flag_environments(f)})

    # Which Deployment gets which environment's files.
    by_name = {d.name: d for d in deployments}
    claims: dict[str, set[str]] = {}
    claimed: dict[str, set[str]] = {name: set() for name in plans}
    for p in plans.values():
        for t in p.flag.spec.targets or []:
            names = set(t.deployments or [])
            p.missing.extend(sorted(n for n in names if n not in by_name))
            if t.selector is not None:
                sel = t.selector.match_labels
                names.update(d.name for d in deployments if all(d.labels.get(k) == v for k, v in sel.items()))
            for n in sorted(names & by_name.keys()):
                claims.setdefault(n, set()).add(t.environment)
                claimed[p.flag.name].add(n)
                p.deployments.setdefault(t.environment, []).append(n)
    conflicts = {d: sorted(envs) for d, envs in claims.items() if len(envs) > 1}
    mounts = {d: next(iter(envs)) for d, envs in claims.items() if len(envs) == 1}
    # A conflict must not yank the flags from a running Deployment (a rollout, every flag false):
    # one that already has an environment it is still claimed for keeps it until the conflict is fixed.
    kept = {d: by_name[d].mounted_environment for d, envs in conflicts.items()
            if by_name[d].mounted_environment in envs}
    mounts.update({d: env for d, env in kept.items() if env is not None})
    for p in plans.values():
        p.deployments = {env: sorted({n for n in listed if mounts.get(n) == env})
                         for env, listed in p.deployments.items()}
        for d in sorted(claimed[p.flag.name] & conflicts.keys()):
            now_has = f"keeps {kept[d]}" if d in kept else "gets no flags"
            p.problems.append(("TargetConflict", f"Deployment {d} is targeted by environments "
                                                 f"{', '.join(conflicts[d])}; it {now_has} until one remains"))
    unmounts = sorted(d.name for d in deployments if d.mounted_environment and d.name not in mounts
                      and d.name not in conflicts)

    files: dict[str, dict[str, str]] = {}
    for env in environments:
        evaluated: list[Evaluated] = []
        for p in plans.values():
            ev = Evaluated(p.flag, evaluate(p.flag.spec, env, now, p.verdict), p.verdict)
            p.values[env] = ev
            if not any(r == "DuplicateKey" for r, _ in p.problems):
                evaluated.append(ev)
        files[env] = {FLAGS_FILE: dumps(render_flags(env, namespace, evaluated)),
                      FLAGD_FILE: dumps(render_flagd(env, namespace, evaluated))}
    return NamespacePlan(namespace, environments, files, mounts, unmounts, conflicts, plans, faults)

