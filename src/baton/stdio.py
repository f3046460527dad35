"""The stdio transport, owned here rather than taken from the SDK, and the signals that stop it.

`stdio_server()` is the SDK's `stdio_server()` with two differences. Lines are interpreted by
frames.py, so every request gets an answer, malformed ones included. And stdin and stdout are read
and written without blocking (the SDK reads stdin in a worker thread that nothing can interrupt,
which is why SIGINT could not stop the server while the client kept stdin open). While serving,
fd 0 reads /dev/null and fd 1 writes to stderr, as with the SDK: a stray print, or a child process,
cannot corrupt the protocol, and stdout carries protocol messages only, one per line.

`stop_on_signals()` turns the first SIGINT or SIGTERM into cancelling the scopes it hands out.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TextIO

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCRequest, JSONRPCResponse

from baton.frames import encode, interpret

log = logging.getLogger("baton.stdio")

CHUNK = 256 * 1024
THREAD_LINE_BYTES = 512 * 1024  # longer lines are parsed in a worker thread (see _read_lines)
EOF_GRACE_SECONDS = 5.0  # after EOF, how long requests already read may take to be answered
DRAIN_SECONDS = 2.0  # once serving ends, how long queued answers may take to reach a client that reads slowly
_POSIX = os.name == "posix"  # elsewhere pipes cannot be polled: blocking calls in a thread instead


class _Fd:
    """One end of the wire. Non-blocking on POSIX (restored on close: the open file may be a shared tty)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._was_blocking: bool | None = None
        if _POSIX:
            self._was_blocking = os.get_blocking(fd)
            os.set_blocking(fd, False)

    def close(self) -> None:
        if self._was_blocking is not None:
            os.set_blocking(self.fd, self._was_blocking)

    async def read(self) -> bytes:
        if not _POSIX:
            return await anyio.to_thread.run_sync(os.read, self.fd, CHUNK, abandon_on_cancel=True)
        while True:
            try:
                data = os.read(self.fd, CHUNK)
            except BlockingIOError:
                await anyio.wait_readable(self.fd)
                continue
            await anyio.lowlevel.checkpoint()  # a regular file is always readable: let the others run
            return data

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if not _POSIX:
                view = view[await anyio.to_thread.run_sync(os.write, self.fd, view):]
                continue
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                await anyio.wait_writable(self.fd)


def _is_backed_by(stream: TextIO | None, fd: int) -> bool:
    try:
        return stream is not None and stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False


@contextmanager
def _claimed(fd: int, stream: TextIO | None, diversion: Callable[[], int]) -> Iterator[_Fd | None]:
    """The wire on a private duplicate of `fd`, while `fd` itself points at `diversion()`; None when the
    process was started with `fd` closed (then whatever holds that number now is not the wire)."""
    if not _is_backed_by(stream, fd):
        yield None
        return
    if stream is not None:
        stream.flush()
    if not _POSIX:
        yield _Fd(fd)
        return
    import fcntl

    private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    wire = _Fd(private)
    target = diversion()
    os.dup2(target, fd)
    os.close(target)
    try:
        yield wire
    finally:
        if stream is not None:
            stream.flush()  # what was printed while serving goes to the diversion, not to the wire
        wire.close()
        os.dup2(private, fd)
        os.close(private)


class _Unanswered:
    """Requests handed to the server and not answered yet. The SDK cancels whatever is in flight when
    its read stream ends, so at EOF the stream stays open until these are answered (for at most
    EOF_GRACE_SECONDS): `baton serve < requests.jsonl` answers every request."""

    def __init__(self) -> None:
        self._ids: Counter[str | int | None] = Counter()
        self._none = anyio.Event()
        self._none.set()

    def asked(self, message: SessionMessage) -> None:
        if isinstance(message.message, JSONRPCRequest):
            if not self._ids:
                self._none = anyio.Event()
            self._ids[message.message.id] += 1

    def answered(self, message: SessionMessage) -> None:
        if isinstance(message.message, JSONRPCResponse | JSONRPCError):
            count = self._ids.get(message.message.id, 0)
            if count > 1:
                self._ids[message.message.id] = count - 1
            elif count == 1:
                del self._ids[message.message.id]
                if not self._ids:
                    self._none.set()

    async def wait(self) -> None:
        with anyio.move_on_after(EOF_GRACE_SECONDS):
            await self._none.wait()


async def _read_lines(wire: _Fd | None, messages: MemoryObjectSendStream[SessionMessage | Exception],
                      answers: MemoryObjectSendStream[SessionMessage], unanswered: _Unanswered) -> None:
    async def take(line: bytes) -> None:
        if len(line) < THREAD_LINE_BYTES:
            message, errors = interpret(line)
        else:  # a hostile megabyte line can cost a second of Python-level parsing: not on the event loop
            message, errors = await anyio.to_thread.run_sync(interpret, line)
        for error in errors:
            await answers.send(SessionMessage(error))
        if message is not None:
            unanswered.asked(message)
            await messages.send(message)

    with messages, answers:
        if wire is None:
            log.warning("stdin was closed when the server started: there is nothing to serve")
            return
        parts: list[bytes] = []
        try:
            while chunk := await _read_or_eof(wire):
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    parts.append(chunk[start:end])
                    await take(b"".join(parts))
                    parts, start = [], end + 1
                if start < len(chunk):
                    parts.append(chunk[start:])
            if parts:
                await take(b"".join(parts))  # a last line without its newline
            await unanswered.wait()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the server stopped reading: nothing more to deliver


async def _read_or_eof(wire: _Fd) -> bytes:
    try:
        return await wire.read()
    except OSError as exc:
        log.warning("reading stdin failed (%s): treating it as closed", exc)
        return b""


async def _write_lines(wire: _Fd | None, outgoing: MemoryObjectReceiveStream[SessionMessage],
                       unanswered: _Unanswered) -> None:
    if wire is None:
        log.warning("stdout was closed when the server started: answers are dropped")
    with outgoing:
        async for item in outgoing:
            data = encode(item.message)
            if wire is not None and data:  # otherwise still drained: the server's writes must not block
                try:
                    await wire.write(data)
                except OSError as exc:
                    log.warning("writing stdout failed (%s): the client is gone, answers are dropped", exc)
                    wire = None
            unanswered.answered(item)


def _null_input() -> int:
    return os.open(os.devnull, os.O_RDONLY)


def _stderr_copy() -> int:
    return os.dup(2)


@asynccontextmanager
async def stdio_server() -> AsyncIterator[tuple[MemoryObjectReceiveStream[SessionMessage | Exception],
                                                MemoryObjectSendStream[SessionMessage]]]:
    """The read and write streams a low-level MCP server's `run()` takes, served over stdin/stdout.

    The read stream ends at EOF on stdin, once the requests read are answered. On exit the reader
    stops, and answers already queued get DRAIN_SECONDS to reach the client.
    """
    with _claimed(0, sys.stdin, _null_input) as wire_in, _claimed(1, sys.stdout, _stderr_copy) as wire_out:
        read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](0)
        reading, writing = anyio.CancelScope(), anyio.CancelScope()
        answers, unanswered = write_send.clone(), _Unanswered()

        async def read() -> None:
            with reading:
                await _read_lines(wire_in, read_send, answers, unanswered)

        async def write() -> None:
            with writing:
                await _write_lines(wire_out, write_receive, unanswered)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read)
            tasks.start_soon(write)
            try:
                yield read_receive, write_send
            finally:
                reading.cancel()
                read_receive.close()
                write_send.close()
                writing.deadline = anyio.current_time() + DRAIN_SECONDS


class Stop:
    """Which signal stopped the server, if any, and the scopes a signal cancels."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self._scopes: list[anyio.CancelScope] = []

    def scope(self) -> anyio.CancelScope:
        """A scope the first SIGINT or SIGTERM cancels (at once, if one arrived already)."""
        scope = anyio.CancelScope()
        if self.signal is not None:
            scope.cancel()
        self._scopes.append(scope)
        return scope

    def received(self, signum: signal.Signals) -> None:
        if self.signal is None:
            self.signal = signum
            log.info("%s received: stopping", signum.name)
        for scope in self._scopes:
            scope.cancel()


async def _watch(stop: Stop, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                stop.received(signum)
    except NotImplementedError:  # an event loop without signal handlers (Windows): Ctrl-C stays as it is
        task_status.started()


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception inside nested single-member groups (task groups wrap what crosses them)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def stop_on_signals() -> AsyncIterator[Stop]:
    """Handle SIGINT and SIGTERM while inside; afterwards both are ignored, as the process is on its way
    out (a late SIGINT would otherwise be a KeyboardInterrupt traceback). An exception from inside
    comes out as itself, not wrapped in an exception group."""
    stop = Stop()
    try:
        async with anyio.create_task_group() as watcher:
            await watcher.start(_watch, stop)
            yield stop
            watcher.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise _sole(group) from None
    finally:
        if _POSIX:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
