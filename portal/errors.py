"""Domain errors. Every refusal a rule produces is a ``DomainError`` whose ``code`` names the
rule (``FEE-6.1-ARREARS``, ``GRANT-5``...) and whose ``field`` names the input at fault.
The API turns it into ``{"code", "message", "field"}`` with ``status``; pages show the message.
"""

import re

# A rule ID as DOMAIN.md writes it (``GRANT-5``, ``FEE-6.1-ARREARS``); the other codes
# (``invalid``, ``conflict``, ``not_found``...) are machine words, not something to show a reader.
RULE_ID = re.compile(r"^[A-Z][A-Z0-9.]*(-[A-Z0-9.]+)+$")


class DomainError(Exception):
    status = 400

    def __init__(self, code: str, message: str, *, field: str | None = None, status: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    @property
    def rule(self) -> str | None:
        """The rule ID this refusal cites, None for a plain input error."""
        return self.code if RULE_ID.match(self.code) else None

    @property
    def display(self) -> str:
        """The refusal as a page shows it: "GRANT-5: …" when a rule is cited, else the message
        alone (a reader has no use for ``invalid`` or ``conflict``)."""
        return f"{self.rule}: {self.message}" if self.rule else str(self.message)

    def as_body(self) -> dict:
        return {"code": self.code, "message": str(self.message), "field": self.field}


class NotFound(DomainError):
    """The object does not exist *for this party*: another tenant's ids answer 404 too."""

    status = 404

    def __init__(self, message: str = "Not found.", *, field: str | None = None):
        super().__init__("not_found", message, field=field)


class Conflict(DomainError):
    status = 409


class AlreadyDone(Exception):
    """Not a refusal: this very request (the same one-time form token, the same Idempotency-Key)
    was already carried out, so nothing is written again. ``result`` is the object it acted on;
    a page shows it with a message saying so, instead of the error the repeat would otherwise
    meet (the grant is no longer expired, the gift no longer a draft). Raised only to a caller
    that passed a ``request_key``."""

    def __init__(self, result):
        super().__init__(repr(result))
        self.result = result
