"""The one exception tree of Baton.

    BatonError                    code          CLI exit
     ├── InvalidInput             invalid       2
     ├── NotFound                 not_found     3
     ├── Conflict                 conflict      4
     ├── InvalidTransition        invalid_transition 4
     ├── Busy                     busy          5
     ├── Unauthorized             unauthorized  6
     ├── Forbidden                forbidden     6
     ├── SchemaTooNew             schema_too_new 1
     ├── ReadOnly                 read_only     1
     └── StorageError             storage       1

Every expected failure is one of these. The MCP layer turns it into a `ToolError` whose text
starts with `code:`; the CLI turns it into `{"error": {"code", "message"}}` on stderr and the
exit code above. Each translation happens in exactly one place (server.py, cli.py).
"""

from __future__ import annotations


class BatonError(Exception):
    code = "error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def as_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(BatonError):
    code = "invalid"
    exit_code = 2


class NotFound(BatonError):
    code = "not_found"
    exit_code = 3


class Conflict(BatonError):
    code = "conflict"
    exit_code = 4


class InvalidTransition(BatonError):
    code = "invalid_transition"
    exit_code = 4


class Busy(BatonError):
    code = "busy"
    exit_code = 5


class Unauthorized(BatonError):
    """No credential, or one that is unknown, revoked or expired (over HTTP: status 401)."""

    code = "unauthorized"
    exit_code = 6


class Forbidden(BatonError):
    """The credential is valid but lacks the scope the call needs (e.g. a `read` key writing)."""

    code = "forbidden"
    exit_code = 6


class SchemaTooNew(BatonError):
    code = "schema_too_new"


class ReadOnly(BatonError):
    code = "read_only"


class StorageError(BatonError):
    """The database file cannot be used (unwritable, full, corrupt): the message names the path."""

    code = "storage"
