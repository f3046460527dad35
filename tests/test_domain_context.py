"""Context packages, consumption and skill outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from baton.errors import Conflict, InvalidInput, NotFound
from baton.store import Store
from tests.domain_helpers import op


async def _session(store: Store, session_id: str = "s1") -> str:
    await op(store, "create-session", session_id=session_id, requirements="build it", project="shop")
    return session_id


async def _package(store: Store, summary: str, priority: str = "medium", consumers: list[str] | None = None,
                   **extra: Any) -> int:
    saved = await op(store, "save-context-package", session_id="s1", package_type="research", producer="developer",
                     consumers=consumers or ["qa_expert"], summary=summary, priority=priority,
                     **({"content": f"body of {summary}"} | extra))
    return int(saved["package_id"])


async def _unconsumed(store: Store, agent: str = "qa_expert", **extra: Any) -> list[str]:
    page = await op(store, "get-context-packages", session_id="s1", agent_type=agent, **extra)
    return [item["summary"] for item in page["items"]]


async def test_packages_are_ranked_by_priority_then_newest(store: Store) -> None:
    """critical > high > medium > low, and within a priority the newest first."""
    await _session(store)
    for summary, priority in [("low-1", "low"), ("high-1", "high"), ("medium-1", "medium"), ("critical-1",
                              "critical"), ("high-2", "high"), ("low-2", "low")]:
        await _package(store, summary, priority)
    assert await _unconsumed(store) == ["critical-1", "high-2", "high-1", "medium-1", "low-2", "low-1"]
    first = await op(store, "get-context-packages", session_id="s1", agent_type="qa_expert", limit=4)
    rest = await op(store, "get-context-packages", session_id="s1", agent_type="qa_expert", limit=4,
                    cursor=first["next_cursor"])
    assert [i["summary"] for i in first["items"] + rest["items"]] == await _unconsumed(store)
    assert rest["next_cursor"] is None


async def test_consuming_a_page_does_not_make_the_next_page_skip_packages(store: Store) -> None:
    """Read a page, mark it consumed, read the next page: every package is seen exactly once."""
    await _session(store)
    for n in range(7):
        await _package(store, f"p{n}", ["low", "high", "critical"][n % 3])
    seen: list[str] = []
    cursor = None
    while True:
        page = await op(store, "get-context-packages", session_id="s1", agent_type="qa_expert", limit=2,
                        cursor=cursor)
        for item in page["items"]:
            await op(store, "mark-context-consumed", session_id="s1", package_id=item["package_id"],
                     agent_type="qa_expert")
        seen += [item["summary"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["p5", "p2", "p4", "p1", "p6", "p3", "p0"]


async def test_only_addressed_unconsumed_packages_are_returned(store: Store) -> None:
    """A consumed package disappears for that consumer only; include_consumed brings it back."""
    await _session(store)
    shared = await _package(store, "shared", consumers=["qa_expert", "tech_lead"])
    await _package(store, "for tech lead", consumers=["tech_lead"])
    marked = await op(store, "mark-context-consumed", session_id="s1", package_id=shared, agent_type="qa_expert",
                      iteration=2)
    assert (marked["already_consumed"], marked["iteration"]) == (False, 2)
    again = await op(store, "mark-context-consumed", session_id="s1", package_id=shared, agent_type="qa_expert",
                     iteration=5)
    assert again["already_consumed"] is True and (again["consumed_at"], again["iteration"]) == (
        marked["consumed_at"], 2)
    assert await _unconsumed(store) == []
    assert await _unconsumed(store, "tech_lead") == ["for tech lead", "shared"]
    everything = await op(store, "get-context-packages", session_id="s1", agent_type="qa_expert",
                          include_consumed=True)
    assert [(i["summary"], i["consumed_at"]) for i in everything["items"]] == [("shared", marked["consumed_at"])]
    assert everything["items"][0]["consumers"] == ["qa_expert", "tech_lead"]


async def test_marking_by_a_non_consumer_is_an_error(store: Store) -> None:
    """mark-context-consumed for an agent that was never a consumer is invalid and names the consumers."""
    await _session(store)
    package = await _package(store, "p", consumers=["qa_expert"])
    with pytest.raises(InvalidInput, match=r"developer is not a consumer of context package .* qa_expert"):
        await op(store, "mark-context-consumed", session_id="s1", package_id=package, agent_type="developer")
    with pytest.raises(NotFound):
        await op(store, "mark-context-consumed", session_id="s1", package_id=999, agent_type="qa_expert")
    assert await _unconsumed(store) == ["p"]


async def test_group_scope_includes_session_global_packages(store: Store) -> None:
    """With group_id, a consumer sees that group's packages and the session-global ones, not other groups'."""
    await _session(store)
    await _package(store, "global one")
    await _package(store, "for g1", group_id="g1")
    await _package(store, "for g2", group_id="g2")
    assert await _unconsumed(store, group_id="g1") == ["for g1", "global one"]
    assert len(await _unconsumed(store)) == 3


async def test_superseding_hides_the_old_version_and_only_the_latest_can_be_superseded(store: Store) -> None:
    """v2 replaces v1 in reads; superseding v1 again is a conflict (versions form a chain)."""
    await _session(store)
    v1 = await _package(store, "design v1", priority="high")
    v2 = await op(store, "save-context-package", session_id="s1", package_type="research", producer="developer",
                  consumers=["qa_expert"], summary="design v2", content="new", supersedes=v1)
    assert v2["version"] == 2 and v2["supersedes"] == v1
    assert await _unconsumed(store) == ["design v2"]
    with_old = await op(store, "get-context-packages", session_id="s1", agent_type="qa_expert",
                        include_superseded=True)
    old = next(i for i in with_old["items"] if i["package_id"] == v1)
    assert old["superseded_by"] == v2["package_id"]
    with pytest.raises(Conflict, match="already superseded"):
        await op(store, "save-context-package", session_id="s1", package_type="research", producer="developer",
                 consumers=["qa_expert"], summary="fork", content="x", supersedes=v1)
    v3 = await op(store, "save-context-package", session_id="s1", package_type="research", producer="developer",
                  consumers=["qa_expert"], summary="design v3", content="x", supersedes=v2["package_id"])
    assert v3["version"] == 3 and await _unconsumed(store) == ["design v3"]


async def test_content_is_redacted_cut_to_max_chars_and_file_paths_recorded_with_size(store: Store,
                                                                                       tmp_path: Path) -> None:
    """Inline content is redacted and budgeted; a file path is kept as given, sized only if it exists."""
    await _session(store)
    saved = await op(store, "save-context-package", session_id="s1", package_type="failures", producer="qa_expert",
                     consumers=["developer"], summary="s", content="api_key=abcd1234efgh " + "x" * 5000)
    assert saved["redacted"] is True
    real = tmp_path / "notes.md"
    real.write_text("12345")
    on_disk = await op(store, "save-context-package", session_id="s1", package_type="handoff", producer="qa_expert",
                       consumers=["developer"], summary="f", file_path=str(real))
    missing = await op(store, "save-context-package", session_id="s1", package_type="handoff", producer="qa_expert",
                       consumers=["developer"], summary="m", file_path="relative/not/here.md")
    assert (on_disk["size_bytes"], missing["size_bytes"]) == (5, None)
    page = await op(store, "get-context-packages", session_id="s1", agent_type="developer", max_chars=100)
    inline = next(i for i in page["items"] if i["summary"] == "s")
    assert inline["truncated"] is True and len(inline["content"]) == 100 and "abcd1234" not in inline["content"]
    assert next(i for i in page["items"] if i["summary"] == "m")["file_path"] == "relative/not/here.md"
    with pytest.raises(InvalidInput, match="exactly one of content"):
        await op(store, "save-context-package", session_id="s1", package_type="handoff", producer="qa_expert",
                 consumers=["developer"], summary="both", content="a", file_path="b")


async def test_save_context_package_retry_with_key_writes_once(store: Store) -> None:
    """The same idempotency_key and payload returns the first package; nothing new is stored."""
    await _session(store)
    args = {"session_id": "s1", "package_type": "decisions", "producer": "tech_lead", "consumers": ["developer"],
            "summary": "use postgres", "content": "because", "idempotency_key": "k1"}
    first = await op(store, "save-context-package", **args)
    second = await op(store, "save-context-package", **args)
    assert second == {**first, "idempotent": True}
    assert len(await _unconsumed(store, "developer")) == 1


async def test_consumption_per_iteration_is_idempotent_and_marks_consumed(store: Store) -> None:
    """save-consumption records once per (package, agent, group, iteration) and marks the package consumed."""
    await _session(store)
    package = await _package(store, "p", consumers=["qa_expert"])
    first = await op(store, "save-consumption", session_id="s1", package_id=package, agent_type="qa_expert",
                     iteration=1, tokens=120)
    repeat = await op(store, "save-consumption", session_id="s1", package_id=package, agent_type="qa_expert",
                      iteration=1, tokens=120)
    assert first["created"] is True and repeat == {**first, "created": False}
    second = await op(store, "save-consumption", session_id="s1", package_id=package, agent_type="qa_expert",
                      iteration=2)
    assert second["consumption_id"] != first["consumption_id"]
    assert await _unconsumed(store) == []
    with pytest.raises(Conflict):
        await op(store, "save-consumption", session_id="s1", package_id=package, agent_type="qa_expert",
                 iteration=1, tokens=999)
    with pytest.raises(InvalidInput, match="not a consumer"):
        await op(store, "save-consumption", session_id="s1", package_id=package, agent_type="developer",
                 iteration=1)


async def test_skill_iterations_count_per_skill_agent_and_group(store: Store) -> None:
    """Iterations are 1, 2, ... per (skill, agent, group); the latest or a given iteration can be read."""
    await _session(store)
    numbers = []
    for agent, group in [(None, "global"), (None, "global"), ("developer", "global"), ("developer", "g1"),
                         (None, "global")]:
        saved = await op(store, "save-skill-output", session_id="s1", skill_name="lint-check",
                         output={"agent": agent, "group": group}, agent_type=agent, group_id=group)
        numbers.append(saved["iteration"])
    assert numbers == [1, 2, 1, 1, 3]
    latest = await op(store, "get-skill-output", session_id="s1", skill_name="lint-check")
    assert (latest["iteration"], latest["agent_type"], latest["output"]) == (3, None,
                                                                            {"agent": None, "group": "global"})
    by_dev = await op(store, "get-skill-output", session_id="s1", skill_name="lint-check", agent_type="developer",
                      group_id="g1")
    assert by_dev["output"] == {"agent": "developer", "group": "g1"}
    second = await op(store, "get-skill-output", session_id="s1", skill_name="lint-check", group_id="global",
                      iteration=2)
    assert second["agent_type"] is None and second["iteration"] == 2
    with pytest.raises(NotFound, match="no output of skill 'security-scan'"):
        await op(store, "get-skill-output", session_id="s1", skill_name="security-scan")


async def test_skill_output_secrets_are_redacted_and_json_kept(store: Store) -> None:
    """A secret inside the output object is redacted and the stored output is still an object."""
    await _session(store)
    saved = await op(store, "save-skill-output", session_id="s1", skill_name="scan",
                     output={"log": "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ok": True})
    assert saved["redacted"] is True
    read = await op(store, "get-skill-output", session_id="s1", skill_name="scan")
    assert read["output"]["ok"] is True and "ghp_" not in read["output"]["log"]
