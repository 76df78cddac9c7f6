"""rollguard's one Kubernetes adapter.

- :mod:`rollguard.kube.names`: every label, annotation, volume, mount path, suffix and field
  manager rollguard writes or reads on Kubernetes objects (no imports: backends may read it).
- :mod:`rollguard.kube.client`: the client loader (one order of kubeconfig / in-cluster), the
  typed :class:`~rollguard.kube.client.NotFound` and :class:`~rollguard.kube.client.Conflict`
  errors and the call helpers that raise them, the patch content types, and :class:`Event`, the
  one shape of an Event every controller posts.

This package's ``__init__`` imports nothing, so that importing the names does not load the
Kubernetes client library.
"""
