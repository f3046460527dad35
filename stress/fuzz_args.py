"""Arguments for one fuzz case, generated from a tool's published inputSchema with a seeded RNG.

Each case draws a *mode*: `valid` (every required field, values that reference what exists, so
the deep code paths run), `boundary` (one field at or just past a limit), `wrong_type`,
`missing_required`, `unknown_key`, `hostile` (adversarial strings, huge integers, deep nesting,
placeholders, out-of-range times) or `chaos` (hostile values everywhere). A case's RNG is seeded
from (seed, case index) alone, so the same seed gives the same case mix; only ids the server
generated during the run (and harvested into the pools) differ between runs.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

MODES = (("valid", 40), ("boundary", 14), ("wrong_type", 10), ("missing_required", 6), ("unknown_key", 6),
         ("hostile", 20), ("chaos", 4))

AGENT_TYPES = ["developer", "qa_expert", "tech_lead", "project_manager", "pm", "senior_software_engineer"]
# What each agent may report (the workflow seed), so that valid `route` calls route.
ROUTES = {"developer": ["READY_FOR_QA", "BLOCKED", "PARTIAL", "ready for qa", "ESCALATE_SENIOR"],
          "qa_expert": ["PASS", "FAIL", "FLAKY", "FAIL_ESCALATE"], "tech_lead": ["APPROVED", "CHANGES_REQUESTED"],
          "project_manager": ["BAZINGA", "CONTINUE", "NEEDS_CLARIFICATION"], "pm": ["BAZINGA", "CONTINUE"]}
STATUSES = [*{s for statuses in ROUTES.values() for s in statuses}, "Not A Status"]
# Cross-field rules a JSON schema does not state: exactly one of these fields in a valid call.
EXACTLY_ONE = {"update-error-confidence": ("pattern_id", "error_message"),
               "update-plan-phase": ("phase_number", "phase_name"),
               "update-success-criterion": ("criterion_id", "criterion"),
               "save-context-package": ("content", "file_path")}
SOME_OF = {"update-plan-phase": ("status", "notes")}
# Optional fields a valid call seldom gives: a compare-and-set or an exact version mostly conflicts.
RARELY = {"expected_status": 0.1, "version": 0.15, "supersedes": 0.15, "iteration": 0.2, "after_id": 0.2}
# The fixture session holds one of everything (packages for qa_expert and tech_lead among them).
HOME_SESSION, HOME_CONSUMERS = "fz-s1", ("qa_expert", "tech_lead")
# At least one of these (the project, given or through the session).
AT_LEAST_ONE = ("project", "session_id")
PLACEHOLDERS = ["{SESSION_ID}", "<session_id>", "$GROUP_ID", "${GROUP}", "{{x}}", "%s", "%(name)s"]
TIMES_VALID = ["2026-01-01T00:00:00Z", "2026-12-02T10:11:12.345+02:00", "2020-02-29", "2026-06-01T00:00:00"]
TIMES_HOSTILE = ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999999-23:59",
                 "0000-00-00T00:00:00Z", "2026-13-45T25:61:61Z", "yesterday", "-2026-01-01", "+275760-09-13"]
NAN_LIKE = ["NaN", "nan", "Infinity", "-Infinity", "1e309", "-0", "0x10", "1_000", " 1", "1.0", "true", "null"]
SHORT_HOSTILE = ["", " ", "\x00", "a\x00b", "\u202e\u202dgnp.exe", "עברית ‏mark", "👩‍💻🔥" * 20, "\n\r\t",
                 "../../etc/passwd", "'; DROP TABLE sessions; --", "\\", "C:\\x\\y.py:12", "İıKſ", "\ufeff",
                 *PLACEHOLDERS, *NAN_LIKE]
LONE_SURROGATES = ["\ud800", "x\udfffy", "\udcff" * 3]
# Valid text that redaction must rewrite, so its code path runs too.
SECRETS = ["api_key=sk-abcdefghijklmnop1234", "Authorization: Bearer abcdefghijklmnopqrstuvwx",
           "ghp_abcdefghijklmnopqrstuvwxyz0123", "postgres://u:hunter22@db/x", "AKIAABCDEFGHIJKLMNOP"]
HUGE_INTS = [2**63, 2**63 - 1, -(2**63) - 1, 10**30, -(10**30), 10**400]


def adversarial(size: int) -> list[str]:
    """Inputs known (or suspected) to make a backtracking regex quadratic, each about `size` chars."""
    pem = "-----BEGIN PRIVATE KEY-----"
    return [
        "\\" * size, "/" * size, "a" * (size - 1) + "/", ("eyJa-" * (size // 5 + 1))[:size],
        (pem * (size // len(pem) + 1))[:size], "line" + " " * (size - 5) + "x", ("sk-" * (size // 3 + 1))[:size],
        "token: " + " " * (size - 8) + ";", "@a://" + "b:" * ((size - 5) // 2), "x" * size,
        ("word " * (size // 5 + 1))[:size],  # one word, many times: what full-text search ranks and snippets
    ]


def nested_object(depth: int) -> Any:
    node: Any = "leaf"
    for _ in range(depth):
        node = {"a": node}
    return node


def nested_list(depth: int) -> Any:
    node: Any = []
    for _ in range(depth):
        node = [node]
    return node


@dataclass
class Pools:
    """Values that exist on the server: fixtures first, then ids harvested from successful results."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    cap: int = 24

    def add(self, name: str, value: Any, rng: random.Random | None = None) -> None:
        bucket = self.values.setdefault(name, [])
        if value in bucket:
            return
        if len(bucket) < self.cap:
            bucket.append(value)
        elif rng is not None:  # keep the first (fixture) half, recycle the rest
            bucket[rng.randrange(self.cap // 2, self.cap)] = value

    def pick(self, name: str, rng: random.Random) -> Any:
        return rng.choice(self.values[name])

    def has(self, name: str) -> bool:
        return bool(self.values.get(name))


# Field names whose valid values come from the pools (what the server holds).
# How often a valid call takes the value from the pool rather than a fresh one (a fresh session id
# is mostly not_found; a reused idempotency key with another payload is a conflict).
POOLED = {"session_id": 0.95, "group_id": 0.85, "project": 0.85, "package_id": 0.9, "supersedes": 0.9,
          "pattern_id": 0.9, "criterion_id": 0.9, "criterion": 0.8, "phase_number": 0.9, "phase_name": 0.8,
          "cursor": 1.0, "error_message": 0.6, "skill_name": 0.8, "idempotency_key": 0.25}
TIME_FIELDS = {"created_after", "created_before"}
_CLASS = re.compile(r"\[((?:\\.|[^\]])+)\]([*+]?)")


def _class_chars(body: str) -> str:
    chars: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            chars += [chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)]
            i += 3
        else:
            chars.append(body[i + 1] if body[i] == "\\" else body[i])
            i += 2 if body[i] == "\\" else 1
    return "".join(chars)


def from_pattern(pattern: str, length: int, rng: random.Random) -> str:
    """A string of about `length` matching a pattern made of character classes (`^[..][..]*$`)."""
    parts = [(_class_chars(m[1]), m[2]) for m in _CLASS.finditer(pattern)]
    out = [rng.choice(chars) for chars, quantifier in parts if quantifier != "*"]
    repeat = next((chars for chars, q in reversed(parts) if q), "")
    while repeat and len(out) < length:
        out.append(rng.choice(repeat))
    text = "".join(out)
    return text if re.fullmatch(pattern, text) else "a"


class ArgumentGenerator:
    """Arguments for a tool's inputSchema; `big` caps the size of adversarial strings."""

    def __init__(self, pools: Pools, big: int) -> None:
        self.pools = pools
        self.big = big

    # -- valid values ----------------------------------------------------------------------------
    def valid(self, node: dict[str, Any], defs: dict[str, Any], rng: random.Random, name: str = "") -> Any:
        node = self._resolve(node, defs)
        if "anyOf" in node:
            branches = [b for b in node["anyOf"] if b.get("type") != "null"] or node["anyOf"]
            return self.valid(rng.choice(branches), defs, rng, name)
        if name in TIME_FIELDS:
            return rng.choice(TIMES_VALID)
        if name == "session_id" and rng.random() < 0.5:
            return HOME_SESSION
        if name in POOLED and self.pools.has(name) and rng.random() < POOLED[name]:
            value = self.pools.pick(name, rng)
            # `global` is a scope, not a task group: only where the field says it takes it.
            if not (name == "group_id" and value == "global" and "global" not in node.get("description", "")):
                return value
        if name in ("agent_type", "producer", "updated_by", "consumers") and node.get("type") == "string":
            return rng.choice(AGENT_TYPES)
        if name == "response_status":
            return rng.choice(STATUSES)
        if "enum" in node:
            return rng.choice(node["enum"])
        kind = node.get("type")
        if kind == "string":
            low, high = node.get("minLength", 1), min(node.get("maxLength", 60), 60)
            length = rng.randint(max(low, 1), max(high, low, 1))
            if "pattern" in node:
                return from_pattern(node["pattern"], length, rng)
            if rng.random() < 0.1 and high >= 40:
                return rng.choice(SECRETS)
            words = ["fuzz", "tests", "pass", "the", "parser", "fails", "on", "line", "12", "ok", "schema"]
            return " ".join(rng.choice(words) for _ in range(max(1, length // 5)))[:high] or "x"
        if kind == "integer":
            low, high = node.get("minimum", 0), node.get("maximum", 1000)
            if low < 0:  # a signed delta (increment): a negative one mostly breaks a counter's CHECK
                return rng.choice([1, 1, 2, 0, -1])
            return rng.choice([low, min(low + 1, high), rng.randint(low, min(high, low + 1000))])
        if kind == "number":
            return rng.uniform(node.get("minimum", 0.0), node.get("maximum", 1.0))
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "array":
            low, high = node.get("minItems", 0), min(node.get("maxItems", 3), 3)
            return [self.valid(node.get("items", {}), defs, rng, name) for _ in range(rng.randint(low, max(low, high)))]
        if kind == "object" and "properties" in node:
            return self.object(node, defs, rng)
        if kind == "object" and isinstance(node.get("additionalProperties"), dict):
            names = node.get("propertyNames", {}).get("enum", ["k"])
            values = node["additionalProperties"]
            return {n: self.valid(values, defs, rng) for n in rng.sample(names, rng.randint(1, min(2, len(names))))}
        return rng.choice([{}, {"k": "v"}, {"testing_mode": "full", "n": 3, "nested": {"list": [1, "two", None]}}])

    def object(self, schema: dict[str, Any], defs: dict[str, Any], rng: random.Random,
               tool: str = "") -> dict[str, Any]:
        required = set(schema.get("required", []))
        properties: dict[str, Any] = schema.get("properties", {})
        chosen = {name for name in properties
                  if name in required or (rng.random() < RARELY.get(name, 0.35)
                                          and not (name == "cursor" and not self.pools.has(name)))}
        if tool in EXACTLY_ONE:
            chosen -= set(EXACTLY_ONE[tool])
            chosen.add(rng.choice(EXACTLY_ONE[tool]))
        if tool in SOME_OF and not chosen & set(SOME_OF[tool]):
            chosen.add(rng.choice(SOME_OF[tool]))
        elif all(name in properties for name in AT_LEAST_ONE) and not chosen & set(AT_LEAST_ONE):
            chosen.add(rng.choice(AT_LEAST_ONE))
        arguments = {name: self.valid(properties[name], defs, rng, name) for name in properties if name in chosen}
        if tool == "route" and "agent_type" in arguments:
            agent = rng.choice(list(ROUTES))
            arguments.update(agent_type=agent, response_status=rng.choice(ROUTES[agent]))
        if "package_id" in arguments and self.pools.has("package_id") and rng.random() < 0.7:
            arguments.update(session_id=HOME_SESSION, package_id=self.pools.values["package_id"][0],
                             agent_type=rng.choice(HOME_CONSUMERS))
        return arguments

    # -- invalid and hostile values --------------------------------------------------------------
    def boundary(self, node: dict[str, Any], defs: dict[str, Any], rng: random.Random, name: str) -> Any:
        node = self._resolve(node, defs)
        if "anyOf" in node:
            node = self._resolve(node["anyOf"][0], defs)
        kind = node.get("type")
        if kind == "string":
            cap = node.get("maxLength", self.big)
            low = node.get("minLength", 0)
            length = rng.choice([low, max(low - 1, 0), min(cap, self.big), min(cap + 1, self.big + 1)])
            if "pattern" in node and length > 0:
                return from_pattern(node["pattern"], length, rng)
            return "b" * length
        if kind == "integer":
            low, high = node.get("minimum"), node.get("maximum")
            return rng.choice([v for v in (low, high, None if low is None else low - 1,
                                           None if high is None else high + 1, 0, -1, 2**63 - 1) if v is not None])
        if kind == "array":
            low, high = node.get("minItems", 0), node.get("maxItems", 200)
            count = rng.choice([max(low - 1, 0), low, min(high, 1000), min(high + 1, 1001)])
            item = node.get("items", {})
            return [self.valid(item, defs, rng, name) for _ in range(count)]
        if kind == "number":
            return rng.choice([node.get("minimum", 0.0), node.get("maximum", 1.0), -1e308, 1e308, 5e-324])
        return self.wrong_type(node, rng)

    def wrong_type(self, node: dict[str, Any], rng: random.Random) -> Any:
        kind = node.get("type", "anyOf")
        options: list[Any] = [None, True, 0, 1.5, "1", [], {}, ["x"], {"k": 1}, 1.0, -0.0]
        by_kind = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
                   "array": (list,), "object": (dict,)}
        allowed = by_kind.get(kind, ())
        wrong = [v for v in options
                 if not isinstance(v, allowed) or (kind == "integer" and isinstance(v, bool))
                 or (kind in ("integer", "number") and isinstance(v, bool))]
        return rng.choice(wrong or options)

    def hostile(self, node: dict[str, Any], defs: dict[str, Any], rng: random.Random, name: str) -> Any:
        node = self._resolve(node, defs)
        kind = node.get("type")
        roll = rng.random()
        if name in TIME_FIELDS and roll < 0.6:
            return rng.choice(TIMES_HOSTILE)
        if kind == "integer" or (kind is None and roll < 0.2):
            return rng.choice([*HUGE_INTS, float("nan"), float("inf"), "NaN", 1e308, 2.5])
        if kind == "object" or kind == "array":
            if roll < 0.5:
                depth = rng.choice([20, 60, 100, 300])
                return nested_object(depth) if kind == "object" else [nested_list(depth)]
            if roll < 0.7:
                return {"k": rng.choice(SHORT_HOSTILE + LONE_SURROGATES)} if kind == "object" else \
                    [rng.choice(SHORT_HOSTILE + LONE_SURROGATES)]
            return self.wrong_type(node, rng)
        if roll < 0.45:
            size = min(node.get("maxLength", self.big), self.big)
            return rng.choice(adversarial(max(size, 8)))
        if roll < 0.55:
            return rng.choice(LONE_SURROGATES)
        if roll < 0.7:
            return rng.choice(TIMES_HOSTILE)
        return rng.choice(SHORT_HOSTILE)

    # -- one case --------------------------------------------------------------------------------
    def case(self, tool: str, schema: dict[str, Any], rng: random.Random) -> tuple[str, dict[str, Any]]:
        modes, weights = zip(*MODES, strict=True)
        mode = rng.choices(modes, weights)[0]
        defs = schema.get("$defs", {})
        properties: dict[str, Any] = schema.get("properties", {})
        arguments = self.object(schema, defs, rng, tool)
        names = list(properties)
        required = [n for n in schema.get("required", []) if n in arguments]
        if mode == "missing_required" and not required:
            mode = "unknown_key"
        if not names and mode not in ("unknown_key", "chaos"):
            mode = "valid"
        if mode == "boundary":
            target = rng.choice(names)
            arguments[target] = self.boundary(properties[target], defs, rng, target)
        elif mode == "wrong_type":
            target = rng.choice(names)
            arguments[target] = self.wrong_type(self._resolve(properties[target], defs), rng)
        elif mode == "missing_required":
            del arguments[rng.choice(required)]
        elif mode == "unknown_key":
            key = rng.choice(["extra", "sessionId", "", "\x00", "session_id ", "__proto__", "a" * 300])
            arguments[key] = rng.choice(["x", 1, None, {"a": 1}])
        elif mode == "hostile":
            for target in rng.sample(names, rng.randint(1, min(2, len(names)))):
                arguments[target] = self.hostile(properties[target], defs, rng, target)
        elif mode == "chaos":
            arguments = {n: self.hostile(properties[n], defs, rng, n) for n in names if rng.random() < 0.7}
            if rng.random() < 0.3:
                arguments[rng.choice(SHORT_HOSTILE) or "k"] = nested_object(5)
        return mode, arguments

    @staticmethod
    def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            resolved: dict[str, Any] = defs[node["$ref"].rsplit("/", 1)[-1]]
            return resolved
        return node


def free_text_paths(schema: dict[str, Any]) -> list[tuple[str | int, ...]]:
    """Where free text goes (strings without a pattern or enum), down into array items: the fields
    redaction, normalisation and search scan."""
    defs = schema.get("$defs", {})

    def walk(node: dict[str, Any], path: tuple[str | int, ...], depth: int) -> list[tuple[str | int, ...]]:
        node = ArgumentGenerator._resolve(node, defs)
        if "anyOf" in node:
            node = next((ArgumentGenerator._resolve(b, defs) for b in node["anyOf"] if b.get("type") != "null"), {})
        kind = node.get("type")
        if kind == "string" and "pattern" not in node and "enum" not in node:
            return [path]
        if kind == "array" and depth < 3:
            return walk(node.get("items", {}), (*path, 0), depth + 1)
        if kind == "object" and depth < 3:
            if "properties" not in node and not isinstance(node.get("additionalProperties"), dict):
                return [(*path, "note")] if path else []  # a free-form object (metadata, state, output)
            return [p for name, sub in node.get("properties", {}).items() for p in walk(sub, (*path, name), depth + 1)]
        return []

    return walk(schema, (), 0)


def sweep(generator: ArgumentGenerator, tool: str, schema: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Every adversarial string in every free-text field of an otherwise valid call, in a fixed order."""
    cases = []
    for path in free_text_paths(schema):
        for index, text in enumerate(adversarial_for(schema, path, generator.big)):
            rng = random.Random(f"{seed}:{tool}:{path}:{index}")
            arguments = generator.object(schema, schema.get("$defs", {}), rng, tool)
            if _put(arguments, path, text, generator, schema, rng):
                cases.append(arguments)
    return cases


def adversarial_for(schema: dict[str, Any], path: tuple[str | int, ...], big: int) -> list[str]:
    node: dict[str, Any] = schema
    defs = schema.get("$defs", {})
    for step in path:
        node = ArgumentGenerator._resolve(node, defs)
        if "anyOf" in node:
            node = next((b for b in node["anyOf"] if b.get("type") != "null"), {})
        node = ArgumentGenerator._resolve(node.get("items", {}) if isinstance(step, int)
                                          else node.get("properties", {}).get(step, {}), defs)
    if "anyOf" in node:
        node = next((b for b in node["anyOf"] if b.get("type") != "null"), {})
    return adversarial(max(min(node.get("maxLength", big), big), 8))


def _put(arguments: dict[str, Any], path: tuple[str | int, ...], text: str, generator: ArgumentGenerator,
         schema: dict[str, Any], rng: random.Random) -> bool:
    """Set `text` at `path`, creating the containers on the way (a one-item list, a valid item)."""
    defs = schema.get("$defs", {})
    container: Any = arguments
    node: dict[str, Any] = schema
    for step, following in zip(path, (*path[1:], None), strict=True):
        node = ArgumentGenerator._resolve(node, defs)
        node = ArgumentGenerator._resolve(node.get("items", {}) if isinstance(step, int)
                                          else node.get("properties", {}).get(step, {}), defs)
        if following is None:
            if isinstance(step, int):
                if not isinstance(container, list):
                    return False
                container[:] = [text]
            else:
                container[step] = text
            return True
        if isinstance(step, int):
            if not isinstance(container, list):
                return False
            if not container:
                container.append(generator.valid(node, defs, rng))
            container = container[0]
        else:
            if step not in container or not isinstance(container[step], list | dict):
                container[step] = [] if node.get("type") == "array" else generator.valid(node, defs, rng)
            container = container[step]
    return False
