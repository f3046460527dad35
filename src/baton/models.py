"""Shared pydantic types: ids, agent types, pages and the base classes of every input and output.

Inputs forbid unknown fields (a misspelt parameter is an error, not silently ignored); outputs
are frozen. Validation that pydantic can declare lives here, not in handlers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

# Looks like an unfilled template: {SESSION_ID}, <session_id>, $GROUP_ID, ${...}, {{x}}, %s.
_PLACEHOLDER = re.compile(r"[{}<>]|\$[A-Za-z_{]|%\(?[a-z_]*\)?s\b")
RESERVED_GROUP_IDS = frozenset({"global", "session", "all", "default"})
AGENT_ALIASES = {"pm": "project_manager"}
KNOWN_AGENT_TYPES = (
    "project_manager",
    "orchestrator",
    "developer",
    "senior_software_engineer",
    "qa_expert",
    "tech_lead",
    "investigator",
    "requirements_engineer",
    "validator",
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
DEFAULT_MAX_CHARS = 2000
MAX_MAX_CHARS = 20_000


def reject_placeholder(value: Any) -> Any:
    if isinstance(value, str) and _PLACEHOLDER.search(value):
        raise ValueError(
            f"{value!r} looks like an unfilled template placeholder; substitute the real value before calling"
        )
    return value


def _normalise_agent_type(value: Any) -> Any:
    value = reject_placeholder(value)
    if isinstance(value, str):
        value = value.strip().lower().replace("-", "_").replace(" ", "_")
        return AGENT_ALIASES.get(value, value)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _not_reserved_group(value: str) -> str:
    if value.lower() in RESERVED_GROUP_IDS:
        raise ValueError(f"group_id {value!r} is reserved ({', '.join(sorted(RESERVED_GROUP_IDS))})")
    return value


# Constraints first, then the BeforeValidator: it still runs first, and pydantic then keeps the
# pattern in the published JSON schema (it drops it when the validator comes first).
SessionId = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", description="From create-session."),
    BeforeValidator(reject_placeholder),
]
GroupId = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="A task group's group_id."),
    BeforeValidator(reject_placeholder),
]
# A task group's own id: additionally not one of the reserved scope words.
NewGroupId = Annotated[GroupId, AfterValidator(_not_reserved_group)]
# Where a group id is a scope: a real group id or the reserved word `global`.
GroupScope = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="Group id, or `global`."),
    BeforeValidator(reject_placeholder),
]
AgentType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="e.g. developer, qa_expert, tech_lead, project_manager (pm).",
    ),
    BeforeValidator(_normalise_agent_type),
]
AgentId = Annotated[
    str,
    Field(min_length=1, max_length=128, description="Agent instance, e.g. developer_1."),
    BeforeValidator(reject_placeholder),
]
Project = Annotated[
    str,
    Field(min_length=1, max_length=200, description="Project name; learning and project-summary go by it."),
    BeforeValidator(reject_placeholder),
]
IdempotencyKey = Annotated[
    str,
    Field(min_length=1, max_length=200, description="Retry key: a repeat returns the first result."),
]
# Free text that must say something.
Text = Annotated[str, AfterValidator(_not_blank)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[str, Field(max_length=200, description="`next_cursor` from the previous page.")]
MaxChars = Annotated[
    int,
    Field(ge=50, le=MAX_MAX_CHARS, description="Cut long text to this length."),
]


# defer_build: a model's validator is built on first use, not at import, so a CLI run that uses one
# operation does not pay for building every model of the catalog (about 100 ms).


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, defer_build=True)


class Output(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(Output, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null at the end.")
    truncated: bool = Field(False, description="True when the page was cut short to stay within the response budget.")


class Items(Output, Generic[ItemT]):
    items: list[ItemT]
