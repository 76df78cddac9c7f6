"""Request and response bodies of the failures API."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, field_validator, model_validator

from rollguard.api.db import WITHHELD
from rollguard.sdk import limits
from rollguard.sdk.limits import clean_text

MAX_BATCH = limits.MAX_BATCH_EVENTS
# "error_code or error_message", stated in the OpenAPI schema too (not only in a validator).
CODE_OR_MESSAGE: dict[str, Any] = {"anyOf": [
    {"required": ["error_code"], "properties": {"error_code": {"type": "string"}}},
    {"required": ["error_message"], "properties": {"error_message": {"type": "string"}}},
]}
MatchTypeLit = Literal["exact", "alias", "pattern", "unknown"]


# RFC 3339 date-time, what the schema's `format: date-time` means. Pydantic alone would also take
# numbers (as Unix times), digit strings and dates without a time.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time string with a time zone, e.g. 2026-01-02T03:04:05Z")
    return value


def _json_integer(value: Any) -> Any:
    # JSON Schema's "integer": a number with no fractional part (2.0 is one), never a boolean
    # or a string (pydantic alone takes false as 0, "2" as 2)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


# constraints before the validator: after it, pydantic would not render them as minimum/maximum
StepIndex = Annotated[int, Field(ge=0, le=2_147_483_647), BeforeValidator(_json_integer)]
StrictBool = Annotated[bool, Strict()]
DateTime3339 = Annotated[datetime, BeforeValidator(_rfc3339)]


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii() and "\x00" not in value
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


def clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


class _Clean(BaseModel):
    @model_validator(mode="after")
    def _clean(self) -> Self:
        # One pass over the fields per model (not a validator call per field), and the common
        # case (plain ASCII) only checked, not rebuilt: ingest validates up to 1000 events a request.
        fields = self.__dict__
        for name, value in fields.items():  # replaces values of existing keys only
            if isinstance(value, str):
                if not (value.isascii() and "\x00" not in value):
                    fields[name] = clean_text(value)
            elif isinstance(value, dict | list) and not _storable(value):
                fields[name] = clean_json(value)
        return self


class FailureIn(_Clean):
    model_config = ConfigDict(extra="forbid", json_schema_extra=CODE_OR_MESSAGE)

    id: uuid.UUID | None = Field(default=None, description="Client-chosen id, unique within the caller's tenant: "
                                                           "makes retries idempotent")
    run_id: str = Field(min_length=1, max_length=limits.RUN_ID_MAX)
    error_code: str | None = Field(default=None, min_length=1, max_length=limits.ERROR_CODE_MAX,
                                   description="Error code (or message) to match; UNKNOWN when only a message is given")
    error_message: str | None = Field(default=None, min_length=1, max_length=limits.ERROR_MESSAGE_MAX)
    skill_id: str | None = Field(default=None, max_length=limits.SKILL_ID_MAX)
    step_index: StepIndex | None = None
    context: dict[str, Any] = Field(default_factory=dict, description=f"Free-form: {limits.CONTEXT_RULES}")
    occurred_at: DateTime3339 | None = Field(default=None, description="When it happened, RFC 3339 with a time "
                                                                        "zone (default: when received)")

    @field_validator("context")
    @classmethod
    def _context_fits(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = limits.check_json(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _code_or_message(self) -> FailureIn:
        if not self.error_code and not self.error_message:
            raise ValueError("error_code or error_message is required")
        if self.occurred_at is not None:
            if self.occurred_at.tzinfo is None:
                raise ValueError("occurred_at must carry a timezone")
            try:  # stored as UTC (PostgreSQL refuses offsets beyond +-15:59)
                self.occurred_at = self.occurred_at.astimezone(UTC)
            except OverflowError as exc:
                raise ValueError("occurred_at is out of range") from exc
        return self


class FailureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: str
    run_id: str
    error_code: str
    error_message: str | None
    catalog_entry_id: str | None
    catalog_version: str | None
    match_type: MatchTypeLit
    confidence: float
    category: str | None
    severity: str | None
    is_retryable: bool
    recovery_mode: str | None
    recovery_suggestion: str | None
    recovery_attempted: bool
    recovery_succeeded: bool
    recovered_at: datetime | None
    recovered_by: str | None
    recovery_notes: str | None
    skill_id: str | None
    step_index: int | None
    context: dict[str, Any] = Field(description=f"As reported; a stored context that cannot be shown (nested "
                                                f"deeper than {limits.READ_MAX_DEPTH} levels, or not an object) "
                                                f"reads as {{\"{WITHHELD}\": <why>}}")
    created_at: datetime
    updated_at: datetime

    @field_validator("context", mode="before")
    @classmethod
    def _readable(cls, value: Any) -> Any:
        # Rows written before the limits (or around the service) must never break a read.
        if not isinstance(value, dict):
            return {WITHHELD: "not a JSON object"}
        big = 1 << 62
        problem = limits.check_json(value, max_depth=limits.READ_MAX_DEPTH, max_values=big, max_key=big,
                                    max_string=big, max_total=big)
        return value if problem is None else {WITHHELD: problem}


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[FailureIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchItemOut(BaseModel):
    id: uuid.UUID
    error_code: str
    catalog_entry_id: str | None
    match_type: MatchTypeLit
    confidence: float
    category: str | None
    recovery_mode: str | None
    duplicate: bool


class BatchOut(BaseModel):
    accepted: int
    duplicates: int
    catalog_version: str
    items: list[BatchItemOut]


class FailureList(BaseModel):
    items: list[FailureOut]
    limit: int
    offset: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class CodeCount(BaseModel):
    error_code: str
    count: int
    matched: int


class CategoryCount(BaseModel):
    category: str | None
    count: int


class ModeRecovery(BaseModel):
    recovery_mode: str | None
    attempted: int
    succeeded: int
    failed: int
    success_rate: float | None


class Stats(BaseModel):
    since_hours: int
    total: int
    matched: int
    unmatched: int
    hit_rate: float | None = Field(description="matched / total; null when there is no failure in the window")
    recovery_attempted: int
    recovery_succeeded: int
    recovery_success_rate: float | None
    by_code: list[CodeCount]
    by_category: list[CategoryCount]
    recovery_by_mode: list[ModeRecovery]


class RecoveryPatch(_Clean):
    model_config = ConfigDict(extra="forbid")

    recovery_succeeded: StrictBool
    recovered_by: str | None = Field(default=None, max_length=limits.RECOVERED_BY_MAX)
    notes: str | None = Field(default=None, max_length=limits.NOTES_MAX)


class SuggestIn(_Clean):
    model_config = ConfigDict(extra="forbid", json_schema_extra=CODE_OR_MESSAGE)

    error_code: str | None = Field(default=None, min_length=1, max_length=limits.ERROR_CODE_MAX)
    error_message: str | None = Field(default=None, min_length=1, max_length=limits.ERROR_MESSAGE_MAX)

    @model_validator(mode="after")
    def _code_or_message(self) -> SuggestIn:
        if not self.error_code and not self.error_message:
            raise ValueError("error_code or error_message is required")
        return self


class SuggestOut(BaseModel):
    matched: bool
    catalog_entry_id: str | None
    match_type: MatchTypeLit
    confidence: float
    category: str | None
    severity: str | None
    retryable: bool
    recovery_mode: str | None
    recovery_suggestion: str | None
    catalog_version: str
    past_attempts: int = Field(description="This tenant's recoveries of this entry so far")
    past_successes: int
