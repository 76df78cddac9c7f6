"""The shared domain model: pydantic models of the three custom resources.

They mirror the CRD schemas in ``crds/`` field for field (camelCase on the wire, snake_case
in Python); ``tests/unit/test_crd_models_in_step.py`` keeps the two in step.
"""
