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
    writes once (``billing.services.topup.idempotent_call``, ``gifts.services.gift_register``'s and
    ``dispute_respond``'s ``request_key``)."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=100, **kwargs)


def request_token_initial() -> dict:
    """``initial`` for a form with a ``request_token`` field, as the page shows it."""
    return {"request_token": uuid.uuid4().hex}
