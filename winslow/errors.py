"""Every error Winslow raises on purpose, in one tree.

Callers catch the branch they can handle; the API maps each branch to one HTTP status
in one place (``api/app.py``)::

    WinslowError
    ├── PipelineError                 file, line, column, field path (one or many problems)
    ├── ValidationError               bad input that is not a pipeline file → 422
    ├── NotFoundError                 → 404
    ├── ConflictError                 → 409: refused transition, delete while running
    ├── AuthError                     → 401
    ├── ForbiddenError                → 403: a valid token without the capability
    ├── BackendError
    │   ├── BackendUnavailableError   transient: the engine retries later
    │   └── SubmitRejectedError       permanent: becomes the run's reason
    ├── StorageError
    └── DeployError                   `winslow deploy`: a job file, or a job not healthy

A message says what happened, to which thing, and what the person can do next.
"""

from __future__ import annotations

from dataclasses import dataclass


class WinslowError(Exception):
    """Base of every deliberate Winslow error."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PipelineProblem:
    """One problem in a pipeline definition, located as precisely as the YAML allows."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class PipelineError(WinslowError):
    """A pipeline definition is invalid; ``problems`` lists every problem found."""

    code = "invalid_pipeline"

    def __init__(self, problems: list[PipelineProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ValidationError(WinslowError):
    """Input other than a pipeline file is malformed (a path, a variable name, a label).

    ``field`` names the input at fault where there is one, as a dotted path ending in the
    request's own names (``variables.LR``, ``resources.memory``), so a form can mark it.
    """

    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(WinslowError):
    """The named thing does not exist."""

    code = "not_found"


class ConflictError(WinslowError):
    """The request is valid but the thing's current state refuses it."""

    code = "conflict"


class AuthError(WinslowError):
    """No or a wrong bearer token."""

    code = "unauthorized"


class ForbiddenError(WinslowError):
    """The caller's token is valid but lacks the capability the request needs."""

    code = "forbidden"


class BackendError(WinslowError):
    """The backend that runs stages failed."""

    code = "backend_error"


class BackendUnavailableError(BackendError):
    """Transient: the backend did not answer; the engine tries again later."""

    code = "backend_unavailable"


class SubmitRejectedError(BackendError):
    """Permanent: the backend refused this stage; the message becomes the run's reason."""

    code = "submit_rejected"


class StorageError(WinslowError):
    """Object storage failed or refused a request."""

    code = "storage_error"


class SchemaError(WinslowError):
    """The database's schema is one this Winslow cannot bring up to date: a newer Winslow
    migrated it, or a migration failed."""

    code = "schema_error"


class DeployError(WinslowError):
    """``winslow deploy`` stopped: a job file is wrong, or a job did not become healthy.
    ``job`` and ``allocation`` name what failed where known."""

    code = "deploy_error"

    def __init__(self, message: str, job: str = "", allocation: str = "") -> None:
        super().__init__(message)
        self.job = job
        self.allocation = allocation
