from django import forms
from django.utils.translation import gettext_lazy as _

from portal.forms import RequestTokenField
from portal.models import Organization

GRANTABLE = [Organization.Kind.SHOP, Organization.Kind.AGENCY]


class DateInput(forms.DateInput):
    input_type = "date"


class AuthorizeForm(forms.Form):
    """GRANT-2: organizations (searched by name), start and end date."""

    organizations = forms.ModelMultipleChoiceField(
        label=_("店铺/机构"),
        queryset=Organization.objects.filter(kind__in=GRANTABLE),
        # Named with the rule, like the service's refusals: a bare "required" under the search
        # results does not say that a shop/agency has to be ticked.
        error_messages={
            "required": _("GRANT-2: 店铺/机构：请搜索并勾选至少一个要授权的店铺/机构。"),  # noqa: RUF001
        },
    )
    start_date = forms.DateField(label=_("开始日期"), widget=DateInput)
    end_date = forms.DateField(label=_("截止日期"), widget=DateInput)


class EarlyRenewForm(forms.Form):
    end_date = forms.DateField(label=_("新截止日期"), widget=DateInput)
    # Minted when the row is shown: the same renewal sent again is reported as done (GRANT-5).
    request_token = RequestTokenField()


class RenewForm(forms.Form):
    start_date = forms.DateField(label=_("开始日期"), widget=DateInput)
    end_date = forms.DateField(label=_("截止日期"), widget=DateInput)
    # Minted when the row is shown: the same renewal sent again is reported as done (GRANT-6).
    request_token = RequestTokenField()


class RevokeForm(forms.Form):
    reason = forms.CharField(label=_("原因"), max_length=300, required=False)
    # Minted when the row is shown (its own, not the renew form's): the same revocation sent
    # again is reported as done (GRANT-4).
    request_token = RequestTokenField()


class WebhookForm(forms.Form):
    """GRANT-11 webhook of the organization (main account): the URL is checked by the service
    (``webhook_url_validate``), whose error lands on the ``url`` field."""

    url = forms.CharField(
        label=_("回调地址(url)"),
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/grants"}),
    )
    is_active = forms.BooleanField(label=_("启用"), required=False, initial=True)
