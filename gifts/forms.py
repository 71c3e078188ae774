# ruff: noqa: RUF001
"""Forms of the shop pages. Money is typed in yuan and stored as integer fen (portal.money)."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from gifts.models import Gift, GiftCategory, GiftDispute
from portal.forms import RequestTokenField
from portal.money import yuan_to_fen


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(d, initial) for d in data if d]
        return [super().clean(data, initial)] if data else []


# PositiveIntegerField columns are PostgreSQL integers: a larger number typed in a form is a
# field error, not a DataError (500) at save.
POSITIVE_INT_MAX = 2_147_483_647


def _yuan_field(label, required=False, error_messages=None):
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        error_messages=error_messages,
    )


class GiftForm(forms.Form):
    name = forms.CharField(label=_("赠品名称"), max_length=200)
    brand = forms.CharField(
        label=_("品牌"), max_length=100, help_text=_("多个名称用 / 分隔，如 兰蔻/Lancome")
    )
    category = forms.ModelChoiceField(label=_("类目"), queryset=GiftCategory.objects.order_by("name"))
    kind = forms.CharField(label=_("品种"), max_length=100, required=False)
    spec = forms.CharField(label=_("规格"), max_length=100, required=False)
    quantity_per_order = forms.IntegerField(
        label=_("每单数量"),
        min_value=1,
        max_value=POSITIVE_INT_MAX,
        required=False,
        # Django's own wording ("确保该值小于或等于2147483647。") names neither field nor rule.
        error_messages=dict.fromkeys(
            ("invalid", "min_value", "max_value"), _("GIFT-2.4: 每单数量须为 1 至 2,147,483,647 之间的整数")
        ),
    )
    ship_from = forms.ChoiceField(
        label=_("发货地"), choices=[("", "—"), *Gift.ShipFrom.choices], required=False
    )
    declared_value = _yuan_field(
        _("申报价值（元）"),
        error_messages={
            "invalid": _("GIFT-1.2: 申报价值须是数字（元），如 99.50"),
            "min_value": _("GIFT-1.2: 申报价值不能为负"),
            "max_decimal_places": _("GIFT-1.2: 申报价值最多两位小数（精确到分）"),
            "max_digits": _("GIFT-1.2: 申报价值最多 ¥9,999,999,999.99"),
            "max_whole_digits": _("GIFT-1.2: 申报价值最多 ¥9,999,999,999.99"),
        },
    )
    declared_value.help_text = _("单件赠品的价值；每单赠品价值 = 单件价值 × 每单数量（GIFT-1.2、GIFT-2.4）")
    near_expiry = forms.BooleanField(label=_("临保商品"), required=False)
    expiry_date = forms.DateField(
        label=_("到期日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    is_lottery = forms.BooleanField(label=_("抽奖赠品"), required=False)
    # Minted when the registration form is shown: a double submit registers one gift (GIFT-2.1).
    request_token = RequestTokenField()

    # The service's name for a field it refuses (GIFT-1.2, GIFT-2.7 on ``declared_value_fen``) → this
    # form's, so the refusal is shown next to the field typed in yuan.
    SERVICE_FIELDS = {"declared_value_fen": "declared_value"}

    @classmethod
    def initial_for(cls, gift: Gift) -> dict:
        data = {
            name: getattr(gift, name)
            for name in (
                "name",
                "brand",
                "category",
                "kind",
                "spec",
                "quantity_per_order",
                "ship_from",
                "near_expiry",
                "expiry_date",
                "is_lottery",
            )
        }
        if gift.declared_value_fen is not None:
            data["declared_value"] = Decimal(gift.declared_value_fen) / 100
        return data

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("request_token", None)
        value = data.pop("declared_value")
        data["declared_value_fen"] = yuan_to_fen(value) if value is not None else None
        return data


class GiftSubmitForm(forms.Form):
    """The gift page's submit button. Its token is minted when the page is shown: pressed twice,
    or re-sent by the browser, the submit is reported as done instead of refused (GIFT-2.1)."""

    request_token = RequestTokenField()


class QualificationUploadForm(forms.Form):
    licence_type = forms.CharField(label=_("资质类型"), max_length=100)
    document_request = forms.TypedChoiceField(
        label=_("对应的资质索取"), required=False, coerce=int, empty_value=None
    )
    file = forms.FileField(
        label=_("资质文件（PDF/JPEG/PNG，≤10MB）"),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
    )
    # Minted when the page is shown: the same upload posted twice stores one licence (GIFT-2.3).
    request_token = RequestTokenField()

    def __init__(self, *args, licence_types=(), requests=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["licence_type"].widget = forms.TextInput(attrs={"list": "licence-types"})
        self.licence_types = sorted(set(licence_types))
        self.fields["document_request"].choices = [("", "—")] + [
            (r.pk, f"{r.gift.name} · {r.reason[:30]}") for r in requests
        ]


class ProductForm(forms.Form):
    title = forms.CharField(label=_("商品标题"), max_length=200)
    subtitle = forms.CharField(label=_("副标题"), max_length=200, required=False)
    main_image_shows_gift_alone = forms.BooleanField(label=_("主图单独展示赠品"), required=False)
    gift_more_prominent = forms.BooleanField(label=_("主图中赠品比商品更显著"), required=False)
    promised_ship_hours = forms.IntegerField(
        label=_("承诺发货时长（小时）"),
        min_value=1,
        max_value=POSITIVE_INT_MAX,
        initial=48,
        error_messages=dict.fromkeys(
            ("invalid", "min_value", "max_value"),
            _("GIFT-4.2: 承诺发货时长须为 1 至 2,147,483,647 之间的整数（小时）"),
        ),
    )


class ProductCreateForm(ProductForm):
    # Minted when the create form is shown: a double submit creates one product.
    request_token = RequestTokenField()

    def service_data(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k != "request_token"}


class ProductGiftForm(forms.Form):
    """The gift an attach or detach button on the product page names."""

    gift = forms.IntegerField(label=_("赠品"), min_value=1)


class PrecheckForm(forms.Form):
    title = forms.CharField(label=_("商品标题"), max_length=200)
    subtitle = forms.CharField(label=_("副标题"), max_length=200, required=False)
    main_image_shows_gift_alone = forms.BooleanField(label=_("主图单独展示赠品"), required=False)
    gift_more_prominent = forms.BooleanField(label=_("主图中赠品比商品更显著"), required=False)
    gifts = forms.ModelMultipleChoiceField(label=_("赠品"), queryset=Gift.objects.none(), required=False)

    def __init__(self, *args, gifts_qs=None, **kwargs):
        super().__init__(*args, **kwargs)
        if gifts_qs is not None:
            self.fields["gifts"].queryset = gifts_qs


class DisputeResponseForm(forms.Form):
    response = forms.CharField(label=_("商家说明"), widget=forms.Textarea(attrs={"rows": 4}), required=False)
    files = MultipleFileField(label=_("证据文件（PDF/JPEG/PNG）"), required=False)
    # Minted when the page is shown: the same answer posted twice is recorded once.
    request_token = RequestTokenField()


DISPUTE_KINDS = GiftDispute.Kind
