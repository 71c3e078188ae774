from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from billing import errors
from billing.models import TOP_UP_MAX_FEN, TOP_UP_MIN_FEN, Invoice, LedgerEntry
from billing.selectors.wallet import ledger_filter_error
from billing.services.invoice import uscc_is_valid, uscc_normalize
from billing.services.topup import PRESETS_FEN
from portal.forms import RequestTokenField
from portal.money import format_fen, yuan_to_fen


def _yuan_field(label, **kw):
    return forms.DecimalField(label=label, max_digits=12, decimal_places=2, **kw)


def _to_fen(value) -> int:
    try:
        return yuan_to_fen(value)
    except (ValueError, InvalidOperation) as exc:
        raise ValidationError(_("金额最多两位小数。")) from exc


def _top_up_error(message) -> str:
    """A top-up amount refusal cites the rule code the service and the API answer with."""
    return f"{errors.TOP_UP_AMOUNT}: {message}"


def _taxpayer_id_error() -> str:
    """The API's words and rule code (``invoice_request``), for every unusable code: wrong
    length, a character outside the code's alphabet, or a wrong check character."""
    return f"{errors.TAXPAYER_ID}: {_('纳税人识别号须为 18 位统一社会信用代码 (校验位正确)。')}"


class TopUpForm(forms.Form):
    preset = forms.TypedChoiceField(
        label=_("充值金额"),
        choices=[(str(p), format_fen(p)) for p in PRESETS_FEN] + [("custom", _("自定义金额"))],
        widget=forms.RadioSelect,
        initial=str(PRESETS_FEN[0]),
    )
    request_token = RequestTokenField()
    # The limits are checked once, in clean(), with the page's own ¥1 to ¥1,000,000 message;
    # the browser is told the same range.
    custom_yuan = _yuan_field(
        _("自定义金额 (元)"),
        required=False,
        widget=forms.NumberInput(
            attrs={"min": TOP_UP_MIN_FEN // 100, "max": TOP_UP_MAX_FEN // 100, "step": "0.01"}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Django's own wording ("确认小数不超过 2 位.") names neither the field nor the rule.
        range_message = _top_up_error(_("充值金额须在 ¥1 至 ¥1,000,000 之间。"))
        self.fields["custom_yuan"].error_messages.update(
            invalid=_top_up_error(_("自定义金额须是数字, 如 100 或 99.50。")),
            max_decimal_places=_top_up_error(_("自定义金额最多两位小数 (精确到分)。")),
            max_digits=range_message,
            max_whole_digits=range_message,
        )
        # Neither "required" nor Django's "选择一个有效的选项" says which amount or which rule.
        pick = _top_up_error(_("请选择充值金额。"))
        self.fields["preset"].error_messages.update(required=pick, invalid_choice=pick)

    def clean(self):
        data = super().clean()
        preset = data.get("preset")
        # A typed custom amount wins over whichever preset is picked: without JavaScript nothing
        # moves the radio to "custom" as one types, and an order for a preset the payer did not
        # mean (or a refused amount silently replaced by ¥100) must never be created.
        if str(self.data.get("custom_yuan", "")).strip():
            preset = data["preset"] = "custom"
            self.errors.pop("preset", None)
            self.data = self.data.copy()  # shown again with an error: "custom" is the one picked
            self.data["preset"] = "custom"
        if preset == "custom":
            if "custom_yuan" in self.errors:
                return data  # unreadable as an amount: its own message says why
            if data.get("custom_yuan") is None:
                raise ValidationError({"custom_yuan": _top_up_error(_("请输入自定义金额。"))})
            amount = _to_fen(data["custom_yuan"])
        elif preset:
            amount = int(preset)
        else:
            return data
        if not TOP_UP_MIN_FEN <= amount <= TOP_UP_MAX_FEN:
            raise ValidationError({"custom_yuan": _top_up_error(_("充值金额须在 ¥1 至 ¥1,000,000 之间。"))})
        data["amount_fen"] = amount
        return data


class LedgerFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("类型"), choices=[("", _("全部")), *LedgerEntry.Kind.choices], required=False
    )
    date_from = forms.DateField(
        label=_("开始日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("结束日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        problem = ledger_filter_error(date_from=data.get("date_from"), date_to=data.get("date_to"))
        if problem is not None:
            self.add_error(*problem)
        return data

    def filters(self) -> dict:
        """The filters to apply (none when unbound). Unusable input raises ``BillingError``
        naming the first bad field, so a caller that does not show the form (the CSV export)
        answers 400 instead of silently exporting the unfiltered ledger."""
        if not self.is_bound:
            return {}
        if not self.is_valid():
            field, messages = next(iter(self.errors.items()))
            label = self.fields[field].label if field in self.fields else field
            raise errors.BillingError("invalid", f"{label}: {messages[0]}", field=field)
        return {k: v for k, v in self.cleaned_data.items() if v}


class InvoiceRequestForm(forms.Form):
    amount_yuan = _yuan_field(_("开票金额 (元)"), min_value=Decimal("0.01"))
    title = forms.CharField(label=_("发票抬头"), max_length=200)
    taxpayer_id = forms.CharField(label=_("纳税人识别号"), max_length=18)
    kind = forms.ChoiceField(label=_("发票类型"), choices=Invoice.Kind.choices)
    # The column's length: the validator alone lets a 320-character address through.
    email = forms.EmailField(label=_("接收邮箱"), max_length=Invoice._meta.get_field("email").max_length)
    request_token = RequestTokenField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # In the terms of the rule the service refuses with, not Django's ("确保该值大于或等于 0.01").
        positive = f"{errors.FEE_4_3}: {_('开票金额须大于 ¥0, 最多两位小数。')}"
        too_much = f"{errors.FEE_4_3}: {_('开票金额超过可开票金额。')}"
        # One message for every unusable code (length, alphabet, check character), as the API's.
        self.fields["taxpayer_id"].error_messages.update(max_length=_taxpayer_id_error())
        self.fields["amount_yuan"].error_messages.update(
            invalid=f"{errors.FEE_4_3}: {_('开票金额须是数字, 如 100 或 99.50。')}",
            min_value=positive,
            max_decimal_places=positive,
            max_digits=too_much,
            max_whole_digits=too_much,
        )

    def clean_taxpayer_id(self):
        value = uscc_normalize(self.cleaned_data["taxpayer_id"])
        if not uscc_is_valid(value):
            raise ValidationError(_taxpayer_id_error())
        return value

    def clean(self):
        data = super().clean()
        if data.get("amount_yuan") is not None:
            data["amount_fen"] = _to_fen(data["amount_yuan"])
        return data


class ClosureForm(forms.Form):
    reason = forms.CharField(
        label=_("注销原因"), max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    # Minted when the deposit page is shown: the request sent twice is one request (FEE-6.3).
    request_token = RequestTokenField()
