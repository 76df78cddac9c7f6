"""Feature flags: per-environment evaluation, the sign-off gate, and the files backends read.

Pure functions only (no Kubernetes client here): ``evaluate`` for one flag in one environment,
``plan_namespace`` for all flags of a namespace, ``build_status`` for a flag's status and Events.
"""

from rollguard.flags.evaluate import EnvValue, SignoffVerdict, default_env_var, evaluate, signoff_verdict
from rollguard.flags.plan import DeploymentObs, NamespacePlan, configmap_name, plan_namespace
from rollguard.flags.render import render_flagd, render_flags
from rollguard.flags.status import build_status
from rollguard.models.common import Event

__all__ = [
    "DeploymentObs", "EnvValue", "Event", "NamespacePlan", "SignoffVerdict", "build_status", "configmap_name",
    "default_env_var", "evaluate", "plan_namespace", "render_flagd", "render_flags", "signoff_verdict",
]
