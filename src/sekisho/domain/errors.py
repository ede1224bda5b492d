"""Domain errors.

Services raise these; each interface maps them exactly once: the API to RFC 9457 problems
(`sekisho.api.problems`), the CLI to messages and exit codes (`sekisho.cli.output`).
Every error carries a stable machine code and a sentence a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One broken rule on one input field."""

    field: str
    rule: str
    message: str


class SekishoError(Exception):
    """Base of every error sekisho reports to a user."""

    code = "error"
    title = "Request could not be completed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SekishoError):
    """Input broke a rule. Nothing was changed."""

    code = "invalid-input"
    title = "Invalid input"

    def __init__(self, problems: list[FieldProblem] | FieldProblem) -> None:
        self.problems = problems if isinstance(problems, list) else [problems]
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in self.problems))

    @classmethod
    def one(cls, field: str, rule: str, message: str) -> InvalidInput:
        return cls(FieldProblem(field, rule, message))


class NotFound(SekishoError):
    code = "not-found"
    title = "Not found"


class AuthenticationFailed(SekishoError):
    """Credentials or token were not accepted. Deliberately vague about which part failed."""

    code = "authentication-failed"
    title = "Authentication failed"


class LoginThrottled(AuthenticationFailed):
    """Too many failed sign-ins for what was typed, from where: wait. Known or not alike."""

    code = "login-throttled"
    title = "Too many failed sign-ins"


class Forbidden(SekishoError):
    """The caller is known but may not do this."""

    code = "forbidden"
    title = "Not allowed"


class NotEligible(Forbidden):
    code = "not-eligible"
    title = "Not eligible for this request"


class SelfApproval(Forbidden):
    code = "self-approval"
    title = "Nobody approves their own request"


class NotApprover(Forbidden):
    code = "not-approver"
    title = "Not an approver for this level"


class Locked(Forbidden):
    """A lock in force covers it: "denied: locked by admin01: laptop stolen"."""

    code = "locked"
    title = "Locked"

    def __init__(self, lock_message: str) -> None:
        super().__init__(f"denied: {lock_message}")


class StepUpRequired(Forbidden):
    """The act needs a fresh strong factor this session has not shown: the message says how."""

    code = "step-up-required"
    title = "Confirm it is you first"


class Conflict(SekishoError):
    """The state moved on: a decision arrived late, or a transition is not allowed now."""

    code = "conflict"
    title = "Conflict with the current state"


class AlreadyDecided(Conflict):
    code = "already-decided"
    title = "Already decided"


class ProviderFailure(SekishoError):
    """A provider (the place a grant becomes real) did not confirm an operation."""

    code = "provider-failure"
    title = "Provider did not confirm"


class Unavailable(SekishoError):
    """Something sekisho relies on cannot be used now (the identity provider); try later."""

    code = "unavailable"
    title = "Not available now"


class RateLimited(SekishoError):
    code = "rate-limited"
    title = "Too many attempts"


@dataclass(frozen=True)
class ModelProblem:
    """A rule broken by an access-model file, pointing at the line."""

    file: str
    line: int
    rule: str
    message: str
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        at = f" ({self.path})" if self.path else ""
        return f"{where}: {self.rule}: {self.message}{at}"


class InvalidModel(SekishoError):
    code = "invalid-model"
    title = "Invalid access model"

    def __init__(self, problems: list[ModelProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
