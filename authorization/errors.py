"""Refusals of the grant rules: a ``DomainError`` whose code is the rule (GRANT-5...)."""

from portal.errors import DomainError


class GrantRuleError(DomainError):
    """A grant operation refused by rule ``code`` because of input ``field``."""

    def __init__(self, code: str, message, *, field: str | None = None, status: int = 400):
        super().__init__(code, message, field=field, status=status)
