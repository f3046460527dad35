"""What a fuzz run found: the failures with their reproductions, and the summary it prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stress.fuzz_wire import WireResult

CODES = ("invalid", "not_found", "conflict", "invalid_transition", "busy", "schema_too_new", "read_only",
         "storage", "forbidden", "unauthorized")
FAILURE_KINDS = ("hang", "slow", "uncoded", "internal", "schema_violation", "partial_write", "read_only_wrote",
                 "server_death", "unanswered", "protocol_error", "wire")


@dataclass
class Failure:
    kind: str
    case: int
    tool: str
    mode: str
    arguments: str
    detail: str

    def __str__(self) -> str:
        return (f"[{self.kind}] case {self.case} ({self.mode}) {self.tool} {self.arguments}\n"
                f"      -> {self.detail}")


@dataclass
class Summary:
    seed: int
    cases: int = 0
    per_tool: Counter[str] = field(default_factory=Counter)
    per_tool_ok: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    successes: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    wire: list[WireResult] = field(default_factory=list)
    integrity: str = "not checked"
    foreign_key_violations: int = 0
    restarts: int = 0
    elapsed_s: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)  # as listed by tools/list
    # Not contract failures, but the published inputSchema and the server disagree.
    stricter_than_schema: Counter[str] = field(default_factory=Counter)
    laxer_than_schema: Counter[str] = field(default_factory=Counter)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.failures if f.kind == kind)

    @property
    def ok(self) -> bool:
        return not self.failures and self.integrity == "ok" and not self.foreign_key_violations

    def render(self, shown: int = 8) -> str:
        lines = [
            f"fuzz: {self.cases} cases, seed {self.seed}, {len(self.tools)} tools, {self.elapsed_s:.1f} s"
            f" ({self.restarts} server restarts)",
            f"  modes: {dict(sorted(self.modes.items()))}",
            f"  successes {self.successes}; coded errors {sum(self.codes.values())} {dict(self.codes.most_common())}",
            "  contract failures: " + ", ".join(f"{k} {self.count(k)}" for k in FAILURE_KINDS),
            f"  raw JSON-RPC: {len(self.wire)} malformed messages, {sum(w.ok for w in self.wire)} answered as required",
            f"  integrity_check: {self.integrity}; foreign_key_check violations: {self.foreign_key_violations}",
            "  slowest calls: " + "; ".join(f"{s:.2f} s {t}" for s, t in sorted(self.slowest, reverse=True)[:3]),
            "  per tool (calls/successes): " + ", ".join(
                f"{t} {n}/{self.per_tool_ok[t]}" for t, n in sorted(self.per_tool.items())),
        ]
        for title, seen in (("rejected although the published inputSchema allows it", self.stricter_than_schema),
                            ("accepted although the published inputSchema forbids it", self.laxer_than_schema)):
            if seen:
                lines.append(f"  observations, {title} ({sum(seen.values())}):")
                lines += [f"    {n} x {text}" for text, n in seen.most_common(6)]
        if self.failures:
            lines.append(f"  first failures (of {len(self.failures)}; replay one with --seed {self.seed} --case N):")
            by_kind: dict[str, int] = Counter()
            for failure in self.failures:
                by_kind[failure.kind] += 1
                if by_kind[failure.kind] <= max(2, shown // 4):
                    lines.append(f"    {failure}")
        for wire in self.wire:
            if not wire.ok:
                lines.append(f"    [wire] {wire.label}: {wire.detail}")
        lines.append("RESULT: " + ("ok" if self.ok else "CONTRACT FAILURES"))
        return "\n".join(lines)


def preview(value: Any, limit: int = 300) -> str:
    """Arguments as a reproducible Python expression, long strings shown as `unit * n`."""

    def short(v: Any) -> str:
        if isinstance(v, str) and len(v) > 60:
            for size in range(1, 41):
                unit = v[:size]
                repeats, rest = divmod(len(v), size)
                if unit * repeats + unit[:rest] == v:
                    return f"({unit!r} * {repeats + (rest > 0)})[:{len(v)}]" if rest else f"{unit!r} * {repeats}"
            return f"{v[:40]!r}...({len(v)} chars)"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k!r}: {short(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(short(x) for x in v[:4]) + (f", ...({len(v)} items)" if len(v) > 4 else "") + "]"
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 10**20:
            return f"10**{len(str(abs(v))) - 1}" if v > 0 else f"-10**{len(str(abs(v))) - 1}"
        return repr(v)

    text = short(value)
    return text if len(text) <= limit else text[:limit] + "..."


def error_code(tool: str, text: str) -> str | None:
    """The code an error text starts with (after the SDK's prefix), or None."""
    prefix = f"Error executing tool {tool}: "
    body = text[len(prefix):] if text.startswith(prefix) else text
    head, sep, _ = body.partition(": ")
    return head if sep and head.replace("_", "").isalpha() and head.islower() else None
