from django import forms
from django.utils.translation import gettext_lazy as _

from billing.models import Api
from billing.months import parse_month
from portal.errors import DomainError


class AppCreateForm(forms.Form):
    name = forms.CharField(label=_("应用名称"), max_length=120)


class UsageFilterForm(forms.Form):
    month = forms.RegexField(
        label=_("月份"),
        regex=r"^\d{4}-(0[1-9]|1[0-2])$",
        required=False,
        widget=forms.DateInput(attrs={"type": "month"}),
    )
    app = forms.TypedChoiceField(label=_("应用"), required=False, coerce=int, empty_value=None)
    api = forms.ModelChoiceField(label="API", queryset=Api.objects.order_by("code"), required=False)

    def __init__(self, *args, apps, today, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["month"].initial = f"{today.year}-{today.month:02d}"
        self.fields["app"].choices = [("", _("全部应用")), *[(a.pk, f"{a.name} ({a.app_key})") for a in apps]]
        self.fields["api"].empty_label = _("全部API")

    def clean_month(self):
        value = self.cleaned_data["month"]
        if value:
            try:
                parse_month(value, None)  # the API's rule: a supported month (2000-01..2999-12)
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code="month_range") from exc
        return value
