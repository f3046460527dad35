"""`baton workflow load FILE [--merge]` and `baton workflow export [--to FILE]`: the routing file.

The routing file is JSON in the layout of BAZINGA's `workflow/transitions.json`, so an existing
BAZINGA file loads as it is:

    {
      "_format": "baton-workflow/1",                      (optional)
      "developer": {                                      one object per agent type
        "READY_FOR_QA": {"next_agent": "qa_expert", "action": "spawn",
                         "include_context": ["dev_output"], "escalation_check": true}
      },
      "_status_aliases": {"INCOMPLETE": "INVESTIGATION_INCOMPLETE"}      every agent, or
                         {"investigator": {"INCOMPLETE": "INVESTIGATION_INCOMPLETE"}}  one agent,
      "_special_rules": {"escalation_after_failures": {"threshold": 2}, ...},
      "_agent_markers": {"developer": ["NO DELEGATION", "READY_FOR_QA"]}
    }

In a transition, `next_agent` (null for none, `_return_to_blocked` for the agent that reported
BLOCKED) and `action` are required; every other key except `include_context` and `_`-prefixed
notes is a modifier (`escalation_check`, `iteration_budget_check`, `model_override`,
`max_parallel`, `fallback_agent`, `mandatory_review`, `then`, ...). Special rules are
`testing_mode` (BAZINGA's `testing_mode_disabled` / `testing_mode_minimal` are folded into it),
`escalation_after_failures`, `security_sensitive`, `research_tasks`, `iteration_budget_check`;
a rule with `"enabled": false` is kept but not applied. `_agent_markers` also accepts BAZINGA's
`{"developer": {"required": [...]}}`.

`load` replaces the whole transition table (`--merge` adds and overrides rows instead) in one
transaction; a section the file leaves out (aliases, rules, markers) is left as it is.
`export` writes the current tables in this format; exporting then loading changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from baton.errors import BatonError, InvalidInput

FORMAT = "baton-workflow/1"
ACTIONS = ("spawn", "respawn", "spawn_batch", "spawn_merge", "validate_then_end", "pause_for_user", "end_session")
RULES = ("testing_mode", "escalation_after_failures", "security_sensitive", "research_tasks", "iteration_budget_check")
_NAME_LIMIT = 64


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _NAME_LIMIT:
        raise InvalidInput(f"{what} must be a non-empty string of at most {_NAME_LIMIT} characters, got {value!r}")
    return value


def parse_routing(data: Any) -> dict[str, Any]:
    """Validate a routing file's JSON; return {transitions, aliases, rules, markers} ready for the tables."""
    if not isinstance(data, dict):
        raise InvalidInput("a routing file is a JSON object with one key per agent type")
    transitions: list[tuple[str, str, str | None, str, list[str], dict[str, Any]]] = []
    for agent, statuses in data.items():
        if agent.startswith("_"):
            continue
        if not isinstance(statuses, dict):
            raise InvalidInput(f"{agent}: expected an object of status -> transition")
        for status, spec in statuses.items():
            if status.startswith("_"):
                continue
            where = f"{agent}.{status}"
            if not isinstance(spec, dict) or "action" not in spec or "next_agent" not in spec:
                raise InvalidInput(f"{where}: a transition needs next_agent (or null) and action")
            if spec["action"] not in ACTIONS:
                raise InvalidInput(f"{where}: action {spec['action']!r} is not one of {', '.join(ACTIONS)}")
            next_agent = spec["next_agent"]
            if next_agent is not None:
                _name(next_agent, f"{where}.next_agent")
            context = spec.get("include_context", [])
            if not isinstance(context, list) or not all(isinstance(c, str) for c in context):
                raise InvalidInput(f"{where}: include_context must be a list of strings")
            modifiers = {k: v for k, v in spec.items()
                         if k not in ("next_agent", "action", "include_context") and not k.startswith("_")}
            transitions.append((_name(agent, "agent type"), _name(status.upper(), "status"), next_agent,
                                spec["action"], context, modifiers))
    return {
        "transitions": transitions,
        "aliases": _parse_aliases(data.get("_status_aliases")),
        "rules": _parse_rules(data.get("_special_rules")),
        "markers": _parse_markers(data.get("_agent_markers")),
    }


def _parse_aliases(section: Any) -> list[tuple[str, str, str]] | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise InvalidInput("_status_aliases must be an object")
    aliases = []
    for key, value in section.items():
        if key.startswith("_"):
            continue
        if isinstance(value, str):
            aliases.append(("*", _name(key.upper(), "alias"), _name(value.upper(), f"_status_aliases.{key}")))
        elif isinstance(value, dict):
            for alias, status in value.items():
                aliases.append((_name(key, "agent type"), _name(alias.upper(), "alias"),
                                _name(str(status).upper(), f"_status_aliases.{key}.{alias}")))
        else:
            raise InvalidInput(f"_status_aliases.{key}: expected a status or an object of alias -> status")
    return aliases


def _parse_rules(section: Any) -> list[tuple[str, str, dict[str, Any], bool]] | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise InvalidInput("_special_rules must be an object")
    rules: dict[str, tuple[str, dict[str, Any], bool]] = {}
    for name, spec in section.items():
        if name.startswith("_"):
            continue
        if not isinstance(spec, dict):
            raise InvalidInput(f"_special_rules.{name}: expected an object")
        config = {k: v for k, v in spec.items() if k not in ("description", "enabled")}
        description = str(spec.get("description", name))
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InvalidInput(f"_special_rules.{name}.enabled must be true or false")
        if name in ("testing_mode_disabled", "testing_mode_minimal"):  # BAZINGA's two rows are one rule here
            before = rules.get("testing_mode", (description, {"modes": []}, enabled))
            modes = [*before[1].get("modes", []), name.removeprefix("testing_mode_")]
            config = {**before[1], **config, "modes": modes}
            rules["testing_mode"] = (before[0], config, before[2] or enabled)
            continue
        if name not in RULES:
            raise InvalidInput(f"_special_rules: unknown rule {name!r}; known rules: {', '.join(RULES)}")
        rules[name] = (description, config, enabled)
    return [(name, *spec) for name, spec in rules.items()]


def _parse_markers(section: Any) -> list[tuple[str, list[str]]] | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise InvalidInput("_agent_markers must be an object of agent type -> list of markers")
    markers = []
    for agent, value in section.items():
        if agent.startswith("_"):
            continue
        listed = value.get("required") if isinstance(value, dict) else value
        if not isinstance(listed, list) or not all(isinstance(m, str) for m in listed):
            raise InvalidInput(f"_agent_markers.{agent}: expected a list of strings")
        markers.append((_name(agent, "agent type"), listed))
    return markers


async def load_routing(conn: Any, parsed: dict[str, Any], *, merge: bool) -> dict[str, int]:
    """Write a parsed routing file into the tables (inside the caller's write transaction)."""
    if not merge and not parsed["transitions"]:
        raise InvalidInput("the file has no transitions; loading it would leave route with nothing (use --merge "
                           "to change only aliases, rules or markers)")
    if not merge:
        await conn.execute("DELETE FROM workflow_transitions")
    await conn.executemany(
        "INSERT OR REPLACE INTO workflow_transitions (agent_type, status, next_agent, action, include_context,"
        " modifiers, source) VALUES (?, ?, ?, ?, ?, ?, 'user')",
        [(a, s, n, act, json.dumps(c), json.dumps(m)) for a, s, n, act, c, m in parsed["transitions"]],
    )
    counts = {"transitions": len(parsed["transitions"])}
    for section, table, columns in (
        ("aliases", "workflow_aliases", "agent_type, alias, status"),
        ("rules", "workflow_special_rules", "rule_name, description, config, enabled"),
        ("markers", "agent_markers", "agent_type, markers"),
    ):
        rows = parsed[section]
        if rows is None:
            continue
        if not merge:
            await conn.execute(f"DELETE FROM {table}")
        encoded = [tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in row) for row in rows]
        marks = ", ".join("?" for _ in columns.split(","))
        await conn.executemany(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})", encoded)
        counts[section] = len(rows)
    return counts


async def export_routing(conn: Any) -> dict[str, Any]:
    from baton.store import fetch_all

    data: dict[str, Any] = {"_format": FORMAT}
    for row in await fetch_all(conn, "SELECT * FROM workflow_transitions ORDER BY agent_type, status"):
        spec = {"next_agent": row["next_agent"], "action": row["action"],
                "include_context": json.loads(row["include_context"]), **json.loads(row["modifiers"])}
        data.setdefault(row["agent_type"], {})[row["status"]] = spec
    aliases: dict[str, Any] = {}
    for row in await fetch_all(conn, "SELECT * FROM workflow_aliases ORDER BY agent_type, alias"):
        if row["agent_type"] == "*":
            aliases[row["alias"]] = row["status"]
        else:
            aliases.setdefault(row["agent_type"], {})[row["alias"]] = row["status"]
    data["_status_aliases"] = aliases
    data["_special_rules"] = {
        row["rule_name"]: {"description": row["description"], "enabled": bool(row["enabled"]),
                           **json.loads(row["config"])}
        for row in await fetch_all(conn, "SELECT * FROM workflow_special_rules ORDER BY rule_name")
    }
    data["_agent_markers"] = {
        row["agent_type"]: json.loads(row["markers"])
        for row in await fetch_all(conn, "SELECT * FROM agent_markers ORDER BY agent_type")
    }
    return data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baton workflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=argparse.SUPPRESS, help="Database file (default: $BATON_DB, else the "
                                                               "user data directory's baton/baton.db).")
    sub = parser.add_subparsers(dest="action", required=True)
    load = sub.add_parser("load", help="Replace the routing table with a routing file.")
    load.add_argument("file", type=Path)
    load.add_argument("--merge", action="store_true", help="Add and override rows instead of replacing the table.")
    load.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    export = sub.add_parser("export", help="Write the current routing table as a routing file.")
    export.add_argument("--to", type=Path, help="File to write (default: stdout).")
    export.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(command: str, argv: list[str]) -> int:
    import anyio

    from baton.paths import resolve_db_path
    from baton.store import Store

    args = _parser().parse_args(argv)
    try:
        db_path = resolve_db_path(getattr(args, "db", None))
        if args.action == "load":
            try:
                raw = json.loads(args.file.read_text(encoding="utf-8"))
            except OSError as exc:
                raise InvalidInput(f"cannot read {args.file}: {exc.strerror}") from None
            except ValueError as exc:
                raise InvalidInput(f"{args.file} is not valid JSON: {exc}") from None
            parsed = parse_routing(raw)

            async def load() -> dict[str, int]:
                async with await Store.open(db_path) as store, store.write() as conn:
                    return await load_routing(conn, parsed, merge=args.merge)

            counts = anyio.run(load)
            print(json.dumps({"loaded": str(args.file), "merge": args.merge, **counts}))
            return 0

        async def export() -> dict[str, Any]:
            async with await Store.open(db_path) as store, store.read() as conn:
                return await export_routing(conn)

        text = json.dumps(anyio.run(export), indent=2, ensure_ascii=False) + "\n"
        if args.to is None:
            sys.stdout.write(text)
        else:
            args.to.write_text(text, encoding="utf-8")
            print(json.dumps({"exported": str(args.to)}))
        return 0
    except BatonError as exc:
        print(json.dumps(exc.as_json()), file=sys.stderr)
        return exc.exit_code
