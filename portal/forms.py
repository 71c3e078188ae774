"""Page forms of the portal app: bad input becomes a 400 naming the field, never a 500."""

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.models import ApiKey


class ApiKeyCreateForm(forms.Form):
    # CharField already refuses NUL characters (PostgreSQL cannot store them in text).
    name = forms.CharField(
        label=_("名称"), required=False, max_length=ApiKey._meta.get_field("name").max_length
    )
