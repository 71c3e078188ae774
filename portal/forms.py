"""Page forms of the portal app: bad input becomes a 400 naming the field, never a 500."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.models import ApiKey


class ApiKeyCreateForm(forms.Form):
    # CharField already refuses NUL characters (PostgreSQL cannot store them in text).
    name = forms.CharField(
        label=_("名称"), required=False, max_length=ApiKey._meta.get_field("name").max_length
    )


class RequestTokenField(forms.CharField):
    """A one-time token minted when a form is shown (``request_token_initial``): a double submit,
    or the browser re-sending the POST, carries the same token, and the service it is handed to
    writes once (``billing.services.topup.idempotent_call``; the ``request_key`` of the gifts
    services that create, kept unique per shop). A service whose action cannot be done twice
    (renew a grant, submit a gift) raises ``portal.errors.AlreadyDone`` for a repeat of the token,
    so the page shows the action done rather than the refusal a second one meets."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=100, **kwargs)


def request_token_initial() -> dict:
    """``initial`` for a form with a ``request_token`` field, as the page shows it."""
    return {"request_token": uuid.uuid4().hex}
