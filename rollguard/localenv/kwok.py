"""Nodes and the pod lifecycle for the local cluster, from kwok (sigs.k8s.io/kwok).

kwok plays the kubelet of every node it manages: it marks nodes Ready, gives each scheduled
pod an address from its node's ``spec.podCIDR`` and marks it Running, completes the pods of
Jobs and finishes pod deletion. Nothing here runs a container; the pod runner
(:mod:`rollguard.localenv.podrunner`) starts a local process for the pods that ask for one
(:data:`RUN_LABEL`), and those pods are Ready only when the runner says so (their processes run
and pass their readiness probes). A pod nobody runs is Ready at once.

Pod addresses live in the loopback range only: each node gets ``POD_CIDR_TEMPLATE`` with the
cluster's pod network and its index (``127.<net>.<i>.0/24``, ``net`` 10 unless another local
cluster holds it, see :mod:`rollguard.localenv.podnet`), and kwok allocates from the node's ``podCIDR`` (kwok's
``--cidr`` default, ``10.0.0.1/24``, is never used because every node carries its own). On
Linux the whole 127.0.0.0/8 block reaches the loopback interface, so a process can listen on
a pod's address and Prometheus can scrape it without any network setup.

Pod stages are ours, not kwok's defaults. A pod that runs to completion (``restartPolicy``
Never or OnFailure: a Job's pods, a ``helm test`` hook) ends with the exit code in its
annotation :data:`EXIT_CODE_ANNOTATION`: the pod runner writes it when the pod's processes
have ended, as a kubelet reports its containers' exit codes. A pod nobody runs (no
:data:`RUN_LABEL`) ends right after it starts, with exit code 0, or with the code a user wrote
into that annotation. (kwok's defaults complete only a Job's pods, always with 0.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rollguard.localenv.podrunner import EXIT_CODE_ANNOTATION, RUN_LABEL

NODE_COUNT = 3
NODE_NAME_TEMPLATE = "kwok-node-{i}"
POD_CIDR_TEMPLATE = "127.{net}.{i}.0/24"
DEFAULT_POD_NET = 10
NODE_IP = "127.0.0.1"
MANAGED_ANNOTATION = "kwok.x-k8s.io/node"

_NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
# A pod that runs to completion (a Job's, a `helm test` hook): its container ends.
_RUNS_TO_COMPLETION = {"key": ".spec.restartPolicy", "operator": "In", "values": ["Never", "OnFailure"]}
_RUNNING = {"key": ".status.phase", "operator": "In", "values": ["Running"]}
_EXIT_CODE = f'.metadata.annotations["{EXIT_CODE_ANNOTATION}"]'
_NOT_RUN = {"key": f'.metadata.labels["{RUN_LABEL}"]', "operator": "DoesNotExist"}
_RUN = {"key": f'.metadata.labels["{RUN_LABEL}"]', "operator": "Exists"}
_NO_ADDRESS = {"key": ".status.podIP", "operator": "DoesNotExist"}

def _running_status(ready: str) -> str:
    """Phase Running with an address; ``ready``: the Ready conditions' and containers' value."""
    return _RUNNING_STATUS.replace("__READY__", ready).replace("__READY_BOOL__", ready.lower())


_RUNNING_STATUS = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "__READY__"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "__READY__"
  type: ContainersReady
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: __READY_BOOL__
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""


def _terminated_status(phase: str, exit_code: str, reason: str) -> str:
    return f"""\
{{{{ $now := Now }}}}
conditions:
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "False"
  type: Ready
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "False"
  type: ContainersReady
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: {exit_code}
      reason: {reason}
      startedAt: {{{{ $now | Quote }}}}
      finishedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
phase: {phase}
"""


def pod_stages() -> list[dict[str, Any]]:
    """kwok ``Stage`` objects for pods: ready; complete, succeed or fail (run-to-completion pods); delete."""
    def stage(name: str, selector: list[dict[str, Any]], nxt: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name},
                "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"},
                         "selector": {"matchExpressions": selector}, "next": nxt}}

    return [
        # nobody runs it: Running and Ready at once, as kwok's default stages make every pod
        stage("pod-ready", [_NOT_DELETED, _NO_ADDRESS, _NOT_RUN], {"statusTemplate": _running_status("True")}),
        # the pod runner runs it: Running, and Ready when the runner has seen its processes run
        # and pass their readiness probes (the runner writes the Ready conditions, as a kubelet does)
        stage("pod-start", [_NOT_DELETED, _NO_ADDRESS, _RUN], {"statusTemplate": _running_status("False")}),
        # nobody runs it: it ends at once
        stage("pod-complete", [_NOT_DELETED, _RUNNING, _RUNS_TO_COMPLETION, _NOT_RUN,
                               {"key": _EXIT_CODE, "operator": "DoesNotExist"}],
              {"statusTemplate": _terminated_status("Succeeded", "0", "Completed")}),
        # its exit code is known (the pod runner's or a user's)
        stage("pod-succeed", [_NOT_DELETED, _RUNNING, _RUNS_TO_COMPLETION,
                              {"key": _EXIT_CODE, "operator": "In", "values": ["0"]}],
              {"statusTemplate": _terminated_status("Succeeded", "0", "Completed")}),
        stage("pod-fail", [_NOT_DELETED, _RUNNING, _RUNS_TO_COMPLETION, {"key": _EXIT_CODE, "operator": "Exists"},
                           {"key": _EXIT_CODE, "operator": "NotIn", "values": ["0"]}],
              {"statusTemplate": _terminated_status(
                  "Failed", '{{ index $.metadata.annotations "' + EXIT_CODE_ANNOTATION + '" }}', "Error")}),
        stage("pod-delete", [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
              {"finalizers": {"empty": True}, "delete": True}),
    ]


def write_config(path: Path) -> Path:
    """kwok's ``--config`` file: the pod stages above (node stages stay kwok's defaults)."""
    path.write_text(yaml.safe_dump_all(pod_stages(), sort_keys=False))
    return path


def nodes(count: int = NODE_COUNT, net: int = DEFAULT_POD_NET) -> list[dict[str, Any]]:
    """The Node objects kwok manages: each with a loopback ``podCIDR`` of its own, ``127.<net>.<i>.0/24``."""
    return [{
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": NODE_NAME_TEMPLATE.format(i=i),
            "annotations": {MANAGED_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": NODE_NAME_TEMPLATE.format(i=i), "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"},
        },
        "spec": {"podCIDR": POD_CIDR_TEMPLATE.format(net=net, i=i),
                 "podCIDRs": [POD_CIDR_TEMPLATE.format(net=net, i=i)]},
    } for i in range(count)]


def command(binary: str, kubeconfig: Path, config: Path, server_port: int,
            net: int = DEFAULT_POD_NET) -> list[str]:
    """kwok's command line: manage the annotated nodes only, serve its debug API on loopback,
    renew node Leases as kubelets do."""
    return [
        binary, "--kubeconfig", str(kubeconfig), "--config", str(config),
        "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={MANAGED_ANNOTATION}=fake",
        "--node-ip", NODE_IP, "--cidr", POD_CIDR_TEMPLATE.format(net=net, i=0),
        "--server-address", f"127.0.0.1:{server_port}",
        # Renew each node's Lease every 10 s, as a kubelet does: the node-lifecycle controller
        # counts renewals as heartbeats. Without leases kwok only patches node status every
        # 20-45 s, which misses the controller's 50 s grace on a busy machine, and a NotReady
        # node takes its pods' readiness, and their Deployments' availability, with it.
        "--node-lease-duration-seconds", "40",
    ]


def nodes_json(net: int = DEFAULT_POD_NET) -> str:
    """The nodes as one ``kind: List`` document for ``kubectl apply -f -``."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes(net=net)})
