"""Pieces every resource shares: model config, status conditions (Kubernetes API conventions), Events."""

from __future__ import annotations

import datetime as dt
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class K8sModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are refused like the CRD does."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_k8s(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(K8sModel):
    """One entry of ``status.conditions`` (metav1.Condition)."""

    type: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$", max_length=316)
    status: ConditionStatus
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: dt.datetime
    observed_generation: int | None = Field(default=None, ge=0)


def set_condition(conditions: list[Condition], new: Condition) -> list[Condition]:
    """Replace the condition of the same type; keep lastTransitionTime when status did not change."""
    out: list[Condition] = []
    found = False
    for c in conditions:
        if c.type == new.type:
            found = True
            if c.status == new.status:
                new = new.model_copy(update={"last_transition_time": c.last_transition_time})
            out.append(new)
        else:
            out.append(c)
    if not found:
        out.append(new)
    return out


class Event(NamedTuple):
    """One Kubernetes Event a controller posts about the object it reconciles (or another of its
    kind). A planner returns them; the kopf handler posts them (``rollguard.operator.events``)."""

    type: Literal["Normal", "Warning"]
    reason: str  # UpperCamelCase, e.g. VersionMounted
    message: str

    def describe(self) -> str:
        """One line for logs and action lists."""
        return f"event {self.type} {self.reason}: {self.message}"
