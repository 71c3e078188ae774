"""Domain errors of the gifts app. Each code names the rule that refused (GIFT-2.1 ...)."""

from portal.errors import Conflict, DomainError, NotFound

__all__ = [
    "Conflict",
    "DomainError",
    "GiftRuleError",
    "ListingBreach",
    "NotFound",
    "TransitionError",
    "UploadRejected",
]


class GiftRuleError(DomainError):
    """A GIFT rule refuses the operation; ``code`` is the rule id, e.g. ``GIFT-2.3``."""


class ListingBreach(GiftRuleError):
    """The listing check found breaches (GIFT-2.1..2.7, 4.3). ``code`` is the first finding's rule;
    ``findings`` carries every one, so pages show the pre-check table and the API returns them."""

    def __init__(self, message: str, *, findings: list):
        super().__init__(findings[0].rule, message, field=findings[0].field)
        self.findings = findings

    def as_body(self) -> dict:
        return {**super().as_body(), "findings": [f.as_dict() for f in self.findings]}


class TransitionError(Conflict):
    """The object is not in a state that allows the operation."""

    def __init__(self, message: str, *, field: str | None = "state"):
        super().__init__("GIFT-STATE", message, field=field)


class UploadRejected(DomainError):
    """An uploaded file is too large or not a PDF/JPEG/PNG by content."""
