"""Pieces every resource shares: model config, status conditions (Kubernetes API conventions), Events."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class K8sModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are refused like the CRD does."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_k8s(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def as_utc(value: dt.datetime) -> dt.datetime:
    """A timestamp without an offset is read as UTC (the apiserver's and kubectl's own zone); one
    with an offset keeps it. Every timestamp a model holds is then comparable with any other."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


# The type of every timestamp in every model (specs, statuses, annotations read into a model):
# "2026-11-23T09:00:00" is 09:00 UTC, never a naive time that cannot be compared with "now".
UtcDateTime = Annotated[dt.datetime, AfterValidator(as_utc)]


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(K8sModel):
    """One entry of ``status.conditions`` (metav1.Condition)."""

    type: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$", max_length=316)
    status: ConditionStatus
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: UtcDateTime
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
