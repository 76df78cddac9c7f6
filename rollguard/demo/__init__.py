"""The local demo (`make demo`): a real control plane, Prometheus, the failures API, the operator
and two tracks of a small agent-runtime stand-in, through two CanaryRollouts.

``python -m rollguard.demo`` runs it; :mod:`rollguard.demo.backend` is the stand-in backend.
"""
