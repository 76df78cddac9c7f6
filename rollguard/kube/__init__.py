"""rollguard's one Kubernetes adapter.

- :mod:`rollguard.kube.names`: every label, annotation, volume, mount path, suffix and field
  manager rollguard writes or reads on Kubernetes objects (no imports: backends may read it).
- :mod:`rollguard.kube.client`: the client loader (one order of kubeconfig / in-cluster), the
  typed :class:`~rollguard.kube.client.NotFound` and :class:`~rollguard.kube.client.Conflict`
  errors and the call helpers that raise them, and the patch content types.
- :mod:`rollguard.kube.template`: TypedDicts of the object parts rollguard reads, and pure
  pod-template edits.

This package's ``__init__`` imports nothing, so that importing the names does not load the
Kubernetes client library.
"""
