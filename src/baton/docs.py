"""Generate the README's reference tables from the operation table, so docs cannot drift.

`python -m baton.docs` rewrites the marked blocks of README.md in place; `--check` exits 1 if
the README differs (a test runs the same comparison).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from baton.operations import Operation
from baton.tools import catalog
from baton.tools.groups import GROUP_TRANSITIONS
from baton.tools.sessions import SESSION_TRANSITIONS


def _inputs(op: Operation) -> str:
    names = [
        f"`{name}`" if field.is_required() else f"`{name}?`" for name, field in op.input_model.model_fields.items()
    ]
    return ", ".join(names) or "none"


def tools_table() -> str:
    rows = ["| tool | profile | kind | inputs (`?` optional) | what it does |", "|---|---|---|---|---|"]
    for op in catalog().values():
        kind = "read" if op.read_only else ("write, idempotent" if op.idempotent else "write")
        if op.destructive:
            kind = "write, **deletes**"
        rows.append(f"| `{op.name}` | {op.profile} | {kind} | {_inputs(op)} | {op.summary} |")
    return "\n".join(rows)


def transitions_table() -> str:
    rows = ["| task group status | may become |", "|---|---|"]
    for status, targets in GROUP_TRANSITIONS.items():
        rows.append(f"| `{status}` | {', '.join(f'`{t}`' for t in targets) or '— (terminal)'} |")
    rows += ["", "| session status | may become |", "|---|---|"]
    for status, allowed in SESSION_TRANSITIONS.items():
        rows.append(f"| `{status}` | {', '.join(f'`{t}`' for t in sorted(allowed)) or '— (terminal)'} |")
    return "\n".join(rows)


def copilot_agent_config() -> str:
    """The Copilot cloud agent's config: its `tools` allowlist is required, so list the core tools."""
    import json

    core = [op.name for op in catalog().values() if op.profile == "core"]
    config = {"mcpServers": {"baton": {"type": "local", "command": "baton", "args": ["serve"], "tools": core}}}
    return "```json\n" + json.dumps(config, indent=2) + "\n```"


BLOCKS = {"tools": tools_table, "transitions": transitions_table, "copilot": copilot_agent_config}


def render(readme: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        match = pattern.search(readme)
        if match is None:
            raise SystemExit(f"README.md has no <!-- {name}:start --> ... <!-- {name}:end --> block")
        readme = readme[: match.end(1)] + make() + "\n" + readme[match.start(2) :]
    return readme


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readme", type=Path, default=Path(__file__).resolve().parents[2] / "README.md")
    parser.add_argument("--check", action="store_true", help="Exit 1 if the README is out of date.")
    args = parser.parse_args()
    current = args.readme.read_text(encoding="utf-8")
    wanted = render(current)
    if args.check:
        if wanted != current:
            print("README.md tables are out of date: run `python -m baton.docs`", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
