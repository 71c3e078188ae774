"""Domain errors of the gifts app. Each code names the rule that refused (GIFT-2.1 ...)."""

from portal.errors import Conflict, DomainError, NotFound

__all__ = ["Conflict", "DomainError", "GiftRuleError", "NotFound", "TransitionError", "UploadRejected"]


class GiftRuleError(DomainError):
    """A GIFT rule refuses the operation; ``code`` is the rule id, e.g. ``GIFT-2.3``."""


class TransitionError(Conflict):
    """The object is not in a state that allows the operation."""

    def __init__(self, message: str, *, field: str | None = "state"):
        super().__init__("GIFT-STATE", message, field=field)


class UploadRejected(DomainError):
    """An uploaded file is too large or not a PDF/JPEG/PNG by content."""
