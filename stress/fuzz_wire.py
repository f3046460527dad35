"""Raw JSON-RPC over a `baton serve` process's stdio: what no SDK client can send.

Two uses: tool calls whose arguments the SDK cannot serialise (lone surrogates, nesting past
pydantic's limit), and malformed messages (invalid JSON, batches, `jsonrpc` "1.0", `params` as a
list, 5,000-digit integers). The rule checked: every message with an id gets an answer with that
id (or, when the id itself cannot be read, an error with id null), and the server keeps serving.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
from anyio.abc import Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

PROTOCOL_VERSION = "2025-11-25"


def encode(message: Any) -> bytes:
    """One newline-framed JSON-RPC line; lone surrogates travel as `\\udxxx` escapes, as JSON allows."""
    return json.dumps(message, ensure_ascii=True, allow_nan=True).encode() + b"\n"


class RawServer:
    """A `baton serve` subprocess spoken to line by line; answers are collected by a reader task."""

    def __init__(self, command: list[str], stderr: IO[bytes]) -> None:
        self.command = command
        self.stderr = stderr
        self.process: Process | None = None
        self.seen: list[Any] = []  # every parsed line, in arrival order
        self.unparsable: list[bytes] = []
        self._send: MemoryObjectSendStream[Any]
        self._receive: MemoryObjectReceiveStream[Any]
        self._next_id = 0

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[Any](10_000)
        self.process = await anyio.open_process(self.command, stderr=self.stderr)
        tg.start_soon(self._read)
        answer = await self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                                   "clientInfo": {"name": "baton-fuzz", "version": "0"}}, 30)
        if answer is None or "result" not in answer:
            raise RuntimeError(f"raw server did not initialise: {answer!r:.300}")
        await self.write(encode({"jsonrpc": "2.0", "method": "notifications/initialized"}))

    async def _read(self) -> None:
        with self._send:
            await self._pump()

    async def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    message = json.loads(line, parse_int=_int)
                except ValueError:
                    self.unparsable.append(line[:200])
                    continue
                self.seen.append(message)
                try:
                    await self._send.send(message)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):  # stopped: nobody is waiting
                    return

    async def write(self, data: bytes) -> None:
        assert self.process is not None and self.process.stdin is not None
        await self.process.stdin.send(data)

    def new_id(self, prefix: str = "r") -> str:
        self._next_id += 1
        return f"{prefix}{self._next_id}"

    async def wait_for(self, ids: set[Any], limit_s: float, null_ends: bool = False) -> dict[Any, Any]:
        """Answers (by id) that arrive within `limit_s`, stopping once every id in `ids` has one
        (or, with `null_ends`, at the first error with id null)."""
        found: dict[Any, Any] = {}
        with anyio.move_on_after(limit_s):
            while not ids <= set(found) and not (null_ends and None in found):
                try:
                    message = await self._receive.receive()
                except anyio.EndOfStream:
                    break
                for item in message if isinstance(message, list) else [message]:
                    if isinstance(item, dict) and ("result" in item or "error" in item):
                        found[_hashable(item.get("id"))] = item
        return found

    async def request(self, method: str, params: Any, limit_s: float) -> dict[str, Any] | None:
        """The answer to one request; an error with id null counts (the line was not JSON, e.g. NaN)."""
        request_id = self.new_id()
        await self.write(encode({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
        found = await self.wait_for({request_id}, limit_s, null_ends=True)
        answer: dict[str, Any] | None = found.get(request_id, found.get(None))
        return answer

    async def call_tool(self, name: str, arguments: Any, limit_s: float) -> dict[str, Any] | None:
        return await self.request("tools/call", {"name": name, "arguments": arguments}, limit_s)

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self) -> None:
        if self.process is None:
            return
        self._receive.close()
        with anyio.move_on_after(5):
            if self.process.stdin is not None:
                await self.process.stdin.aclose()
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            with anyio.CancelScope(shield=True):
                await self.process.wait()


def _int(text: str) -> int | str:
    # Python refuses to convert more than 4,300 digits; an echoed 5,000-digit id stays a string.
    return int(text) if len(text) <= 4000 else text


def _hashable(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


@dataclass(frozen=True)
class Garbage:
    label: str
    line: bytes
    ids: tuple[Any, ...] = ()  # ids that must each get an answer
    null_error: bool = False  # an error with id null is an acceptable (or, without ids, the required) answer
    any_id: bool = False  # one answer among `ids` is enough (duplicate keys: either may win)


def _deep(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def garbage(session_id: str) -> list[Garbage]:
    def call(request_id: str, arguments_json: str, name: str = "get-session") -> bytes:
        return (f'{{"jsonrpc":"2.0","id":"{request_id}","method":"tools/call",'
                f'"params":{{"name":"{name}","arguments":{arguments_json}}}}}\n').encode()

    five_thousand = "9" * 5000
    return [
        Garbage("invalid JSON", b'{"jsonrpc": "2.0", "id": 1, "method": \n', null_error=True),
        Garbage("not an object", b'"just a string"\n', null_error=True),
        Garbage("empty batch", b"[]\n", null_error=True),
        Garbage("batch of pings", b'[{"jsonrpc":"2.0","id":"b1","method":"ping"},'
                b'{"jsonrpc":"2.0","id":"b2","method":"ping"}]\n', ids=("b1", "b2"), null_error=True),
        Garbage("jsonrpc 1.0", b'{"jsonrpc":"1.0","id":"v1","method":"ping"}\n', ids=("v1",)),
        Garbage("no jsonrpc member", b'{"id":"v2","method":"ping"}\n', ids=("v2",)),
        Garbage("params as a list", b'{"jsonrpc":"2.0","id":"p1","method":"tools/call","params":[1,2]}\n',
                ids=("p1",)),
        Garbage("arguments as a list", call("p2", "[1,2]"), ids=("p2",)),
        Garbage("arguments as a string", call("p3", '"x"'), ids=("p3",)),
        Garbage("params null", b'{"jsonrpc":"2.0","id":"p4","method":"tools/call","params":null}\n', ids=("p4",)),
        Garbage("unknown method", b'{"jsonrpc":"2.0","id":"m1","method":"no/such/method"}\n', ids=("m1",)),
        Garbage("method not a string", b'{"jsonrpc":"2.0","id":"m2","method":42}\n', ids=("m2",)),
        Garbage("id an object", b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}\n', null_error=True),
        Garbage("lone surrogate in an argument", call("s1", '{"session_id":"\\ud800"}'), ids=("s1",)),
        Garbage("lone surrogate in a key", call("s2", f'{{"session_id":"{session_id}","\\udfff":1}}'), ids=("s2",)),
        Garbage("nesting 300 deep", call("d1", f'{{"session_id":"{session_id}","x":{_deep(300)}}}'), ids=("d1",)),
        Garbage("nesting 3000 deep", call("d2", f'{{"session_id":{_deep(3000)}}}'), ids=("d2",)),
        Garbage("5000-digit integer", call("i1", f'{{"session_id":"{session_id}","agent_type":"developer",'
                                                 f'"input_tokens":{five_thousand}}}', "log-tokens"), ids=("i1",)),
        Garbage("5000-digit id", f'{{"jsonrpc":"2.0","id":{five_thousand},"method":"ping"}}\n'.encode(),
                ids=(five_thousand,), null_error=True),
        Garbage("1e400 float", call("f1", f'{{"session_id":"{session_id}","agent_type":"developer",'
                                          f'"input_tokens":1e400}}', "log-tokens"), ids=("f1",)),
        Garbage("NaN literal", call("n1", f'{{"session_id":"{session_id}","event_type":"e","payload":{{"x":NaN}}}}',
                                    "save-event"), ids=("n1",), null_error=True),
        Garbage("invalid UTF-8", b'{"jsonrpc":"2.0","id":"u1","method":"ping","params":{"x":"\xff\xfe"}}\n',
                ids=("u1",), null_error=True),
        Garbage("NUL in method", b'{"jsonrpc":"2.0","id":"z1","method":"ping\\u0000"}\n', ids=("z1",)),
        Garbage("duplicate keys", b'{"jsonrpc":"2.0","id":"k1","id":"k2","method":"ping"}\n', ids=("k1", "k2"),
                any_id=True),
        Garbage("trailing garbage", b'{"jsonrpc":"2.0","id":"t1","method":"ping"} xyz\n', ids=("t1",),
                null_error=True),
        Garbage("1 MB of garbage", b"x" * 1_000_000 + b"\n", null_error=True),
        Garbage("response to nothing", b'{"jsonrpc":"2.0","id":"q1","result":{}}\n'),
        Garbage("unknown notification", b'{"jsonrpc":"2.0","method":"notifications/what"}\n'),
    ]


@dataclass
class WireResult:
    label: str
    ok: bool
    detail: str


async def probe(server: RawServer, session_id: str, limit_s: float) -> list[WireResult]:
    """Send each malformed message followed by a ping; check what came back before the ping's answer."""
    results: list[WireResult] = []
    for item in garbage(session_id):
        if not server.alive():
            results.append(WireResult(item.label, False, "server process had exited before this message"))
            continue
        before = len(server.seen)
        control = server.new_id("ctl")
        await server.write(item.line)
        await server.write(f'{{"jsonrpc":"2.0","id":"{control}","method":"ping"}}\n'.encode())
        # When an id-null error is an acceptable answer, the ping's answer ends the wait: the reader
        # answers a line it cannot parse before it reads the next one.
        found = await server.wait_for({control} if item.any_id or item.null_error else {*item.ids, control}, limit_s)
        if item.any_id and not set(item.ids) & set(found):
            found.update(await server.wait_for(set(item.ids[:1]), min(limit_s, 2.0)))
        missing = [i for i in item.ids if i not in found]
        null_error = any(isinstance(m, dict) and m.get("id") is None and "error" in m for m in server.seen[before:])
        if control not in found:
            ok, detail = False, f"no answer to a ping sent after it within {limit_s:.0f} s"
        elif item.ids and (not missing or (item.any_id and len(missing) < len(item.ids))):
            ok, detail = True, "answered"
        elif item.null_error and null_error:
            ok, detail = True, "error with id null"
        elif not item.ids and not item.null_error:
            ok, detail = True, "no answer expected"
        else:
            ok = False
            detail = f"no answer for id {', '.join(str(i)[:20] for i in missing)}" if missing else \
                "no JSON-RPC error (id null) came back"
        results.append(WireResult(item.label, ok, detail))
    return results


def is_finite_json(value: Any) -> bool:
    """False for NaN or infinity anywhere: JSON cannot carry them, so the SDK client would not send them."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(is_finite_json(v) for v in value.values())
    if isinstance(value, list):
        return all(is_finite_json(v) for v in value)
    return True


def stderr_tail(path: Path, lines: int = 6) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
