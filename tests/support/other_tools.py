"""The resource names of tools a platform team runs next to rollguard.

kubectl resolves a bare name (``kubectl get canary``) to whichever installed group has it, so a
rollguard short name another tool also uses, or a doc that tells the reader to type a bare name
another tool also has, lands on the other tool's objects. tests/unit/test_crd_short_names.py holds
rollguard's CRDs against this list; tests/docs/test_unambiguous_names.py holds the docs' kubectl
commands against it. The local apiserver's own names are checked by discovery
(tests/integration/test_crds.py); CORE_KUBERNETES is the same list for tests without a cluster.

Each entry: (tool, group, kind, plural, short names). Its names, as kubectl matches them: the
plural, the singular (the kind in lower case) and the short names.
"""

from __future__ import annotations

from collections.abc import Iterable

Resource = tuple[str, str, str, str, tuple[str, ...]]

RESOURCES: tuple[Resource, ...] = (
    # Flagger
    ("Flagger", "flagger.app", "Canary", "canaries", ("canary",)),
    ("Flagger", "flagger.app", "MetricTemplate", "metrictemplates", ("mt",)),
    ("Flagger", "flagger.app", "AlertProvider", "alertproviders", ("at",)),
    # Argo Rollouts
    ("Argo Rollouts", "argoproj.io", "Rollout", "rollouts", ("ro",)),
    ("Argo Rollouts", "argoproj.io", "AnalysisTemplate", "analysistemplates", ("at",)),
    ("Argo Rollouts", "argoproj.io", "ClusterAnalysisTemplate", "clusteranalysistemplates", ("cat",)),
    ("Argo Rollouts", "argoproj.io", "AnalysisRun", "analysisruns", ("ar",)),
    ("Argo Rollouts", "argoproj.io", "Experiment", "experiments", ("exp",)),
    # Argo CD
    ("Argo CD", "argoproj.io", "Application", "applications", ("app", "apps")),
    ("Argo CD", "argoproj.io", "ApplicationSet", "applicationsets", ("appset", "appsets")),
    ("Argo CD", "argoproj.io", "AppProject", "appprojects", ("appproj", "appprojs")),
    # OpenFeature operator
    ("OpenFeature operator", "core.openfeature.dev", "FeatureFlag", "featureflags", ("ff",)),
    ("OpenFeature operator", "core.openfeature.dev", "FeatureFlagSource", "featureflagsources", ("fs",)),
    ("OpenFeature operator", "core.openfeature.dev", "FeatureFlagConfiguration", "featureflagconfigurations",
     ("ffc",)),
    ("OpenFeature operator", "core.openfeature.dev", "Flagd", "flagds", ()),
    ("OpenFeature operator", "core.openfeature.dev", "InProcessConfiguration", "inprocessconfigurations", ()),
    # Flux
    ("Flux", "kustomize.toolkit.fluxcd.io", "Kustomization", "kustomizations", ("ks",)),
    ("Flux", "helm.toolkit.fluxcd.io", "HelmRelease", "helmreleases", ("hr",)),
    ("Flux", "source.toolkit.fluxcd.io", "GitRepository", "gitrepositories", ("gitrepo",)),
    ("Flux", "source.toolkit.fluxcd.io", "HelmRepository", "helmrepositories", ("helmrepo",)),
    ("Flux", "source.toolkit.fluxcd.io", "HelmChart", "helmcharts", ("hc",)),
    ("Flux", "source.toolkit.fluxcd.io", "OCIRepository", "ocirepositories", ("ocirepo",)),
    ("Flux", "notification.toolkit.fluxcd.io", "Alert", "alerts", ()),
    ("Flux", "notification.toolkit.fluxcd.io", "Provider", "providers", ()),
    # Kyverno
    ("Kyverno", "kyverno.io", "ClusterPolicy", "clusterpolicies", ("cpol",)),
    ("Kyverno", "kyverno.io", "Policy", "policies", ("pol",)),
    ("Kyverno", "kyverno.io", "PolicyException", "policyexceptions", ("polex",)),
    ("Kyverno", "kyverno.io", "CleanupPolicy", "cleanuppolicies", ("cleanpol",)),
    ("Kyverno", "kyverno.io", "ClusterCleanupPolicy", "clustercleanuppolicies", ("ccleanpol",)),
    ("Kyverno", "kyverno.io", "UpdateRequest", "updaterequests", ("ur",)),
    ("Kyverno", "wgpolicyk8s.io", "PolicyReport", "policyreports", ("polr",)),
    ("Kyverno", "wgpolicyk8s.io", "ClusterPolicyReport", "clusterpolicyreports", ("cpolr",)),
    # cert-manager
    ("cert-manager", "cert-manager.io", "Certificate", "certificates", ("cert", "certs")),
    ("cert-manager", "cert-manager.io", "CertificateRequest", "certificaterequests", ("cr", "crs")),
    ("cert-manager", "cert-manager.io", "Issuer", "issuers", ()),
    ("cert-manager", "cert-manager.io", "ClusterIssuer", "clusterissuers", ()),
    ("cert-manager", "acme.cert-manager.io", "Order", "orders", ()),
    ("cert-manager", "acme.cert-manager.io", "Challenge", "challenges", ()),
    # Istio
    ("Istio", "networking.istio.io", "VirtualService", "virtualservices", ("vs",)),
    ("Istio", "networking.istio.io", "DestinationRule", "destinationrules", ("dr",)),
    ("Istio", "networking.istio.io", "Gateway", "gateways", ("gw",)),
    ("Istio", "networking.istio.io", "ServiceEntry", "serviceentries", ("se",)),
    ("Istio", "networking.istio.io", "Sidecar", "sidecars", ()),
    ("Istio", "networking.istio.io", "EnvoyFilter", "envoyfilters", ()),
    ("Istio", "networking.istio.io", "WorkloadEntry", "workloadentries", ("we",)),
    ("Istio", "networking.istio.io", "WorkloadGroup", "workloadgroups", ("wg",)),
    ("Istio", "security.istio.io", "PeerAuthentication", "peerauthentications", ("pa",)),
    ("Istio", "security.istio.io", "AuthorizationPolicy", "authorizationpolicies", ("ap",)),
    ("Istio", "security.istio.io", "RequestAuthentication", "requestauthentications", ("ra",)),
    ("Istio", "telemetry.istio.io", "Telemetry", "telemetries", ("telemetry",)),
    # Knative
    ("Knative", "serving.knative.dev", "Service", "services", ("kservice", "ksvc")),
    ("Knative", "serving.knative.dev", "Route", "routes", ("rt",)),
    ("Knative", "serving.knative.dev", "Configuration", "configurations", ("config", "cfg")),
    ("Knative", "serving.knative.dev", "Revision", "revisions", ("rev",)),
    ("Knative", "serving.knative.dev", "DomainMapping", "domainmappings", ("dm",)),
    ("Knative", "eventing.knative.dev", "Broker", "brokers", ()),
    ("Knative", "eventing.knative.dev", "Trigger", "triggers", ()),
    # Prometheus operator (rollguard's chart ships a PodMonitor and PrometheusRules)
    ("Prometheus operator", "monitoring.coreos.com", "Prometheus", "prometheuses", ("prom",)),
    ("Prometheus operator", "monitoring.coreos.com", "PrometheusRule", "prometheusrules", ("promrule",)),
    ("Prometheus operator", "monitoring.coreos.com", "ServiceMonitor", "servicemonitors", ("smon",)),
    ("Prometheus operator", "monitoring.coreos.com", "PodMonitor", "podmonitors", ("pmon",)),
    ("Prometheus operator", "monitoring.coreos.com", "Alertmanager", "alertmanagers", ("am",)),
    ("Prometheus operator", "monitoring.coreos.com", "AlertmanagerConfig", "alertmanagerconfigs", ("amcfg",)),
    ("Prometheus operator", "monitoring.coreos.com", "Probe", "probes", ("prb",)),
    ("Prometheus operator", "monitoring.coreos.com", "ScrapeConfig", "scrapeconfigs", ("scfg",)),
    # Gateway API
    ("Gateway API", "gateway.networking.k8s.io", "Gateway", "gateways", ("gtw",)),
    ("Gateway API", "gateway.networking.k8s.io", "GatewayClass", "gatewayclasses", ("gc",)),
    ("Gateway API", "gateway.networking.k8s.io", "HTTPRoute", "httproutes", ()),
    ("Gateway API", "gateway.networking.k8s.io", "GRPCRoute", "grpcroutes", ()),
    ("Gateway API", "gateway.networking.k8s.io", "ReferenceGrant", "referencegrants", ("refgrant",)),
    # KEDA
    ("KEDA", "keda.sh", "ScaledObject", "scaledobjects", ("so",)),
    ("KEDA", "keda.sh", "ScaledJob", "scaledjobs", ("sj",)),
    ("KEDA", "keda.sh", "TriggerAuthentication", "triggerauthentications", ("ta", "triggerauth")),
    ("KEDA", "keda.sh", "ClusterTriggerAuthentication", "clustertriggerauthentications",
     ("cta", "clustertriggerauth")),
    # External Secrets
    ("External Secrets", "external-secrets.io", "ExternalSecret", "externalsecrets", ("es",)),
    ("External Secrets", "external-secrets.io", "SecretStore", "secretstores", ("ss",)),
    ("External Secrets", "external-secrets.io", "ClusterSecretStore", "clustersecretstores", ("css",)),
    # kopf (rollguard's operator framework; its peering CRDs are installed with rollguard's)
    ("kopf", "kopf.dev", "KopfPeering", "kopfpeerings", ()),
    ("kopf", "kopf.dev", "ClusterKopfPeering", "clusterkopfpeerings", ()),
)

# Core Kubernetes' names (plural, singular, short) for the tests that have no apiserver to ask;
# tests/integration/test_crds.py asks the local kube-apiserver's discovery for the real list.
CORE_KUBERNETES: frozenset[str] = frozenset({
    "bindings", "binding", "componentstatuses", "componentstatus", "cs", "configmaps", "configmap", "cm",
    "endpoints", "ep", "events", "event", "ev", "limitranges", "limitrange", "limits",
    "namespaces", "namespace", "ns", "nodes", "node", "no", "persistentvolumeclaims", "persistentvolumeclaim",
    "pvc", "persistentvolumes", "persistentvolume", "pv", "pods", "pod", "po", "podtemplates", "podtemplate",
    "replicationcontrollers", "replicationcontroller", "rc", "resourcequotas", "resourcequota", "quota",
    "secrets", "secret", "serviceaccounts", "serviceaccount", "sa", "services", "service", "svc",
    "mutatingwebhookconfigurations", "validatingwebhookconfigurations", "validatingadmissionpolicies",
    "customresourcedefinitions", "customresourcedefinition", "crd", "crds", "apiservices", "apiservice",
    "controllerrevisions", "daemonsets", "daemonset", "ds", "deployments", "deployment", "deploy",
    "replicasets", "replicaset", "rs", "statefulsets", "statefulset", "sts",
    "horizontalpodautoscalers", "horizontalpodautoscaler", "hpa", "cronjobs", "cronjob", "cj", "jobs", "job",
    "certificatesigningrequests", "certificatesigningrequest", "csr", "leases", "lease",
    "endpointslices", "endpointslice", "ingressclasses", "ingressclass", "ingresses", "ingress", "ing",
    "networkpolicies", "networkpolicy", "netpol", "runtimeclasses", "runtimeclass",
    "poddisruptionbudgets", "poddisruptionbudget", "pdb", "clusterrolebindings", "clusterrolebinding",
    "clusterroles", "clusterrole", "rolebindings", "rolebinding", "roles", "role",
    "priorityclasses", "priorityclass", "pc", "csidrivers", "csidriver", "csinodes", "csinode",
    "storageclasses", "storageclass", "sc", "volumeattachments", "volumeattachment",
    "flowschemas", "flowschema", "prioritylevelconfigurations", "prioritylevelconfiguration",
    "resourceclaims", "resourceclaim", "deviceclasses", "deviceclass", "resourceslices", "resourceslice",
})


def names_of(resource: Resource) -> set[str]:
    """What kubectl matches a bare word against: plural, singular and short names, lower case."""
    _, _, kind, plural, shorts = resource
    return {plural.lower(), kind.lower(), *(s.lower() for s in shorts)}


def owners(word: str, resources: Iterable[Resource] = RESOURCES) -> list[str]:
    """The tools (``"Flagger Canary"``) that answer to a bare word."""
    w = word.lower()
    return sorted({f"{tool} {kind}" for tool, _, kind, plural, shorts in resources
                   if w in names_of((tool, "", kind, plural, shorts))})


OTHER_TOOLS_NAMES: frozenset[str] = frozenset(n for r in RESOURCES for n in names_of(r))
