"""Ledger date filters on the wallet page, the CSV export and the API: a far or malformed
date is the developer's input error (a form error or a 400 naming the field), never a 500."""

import pytest
from django.urls import reverse

from billing.selectors.wallet import ledger_list_for_organization
from billing.services.wallet import wallet_charge_for_month
from portal import clock
from portal.errors import DomainError

pytestmark = pytest.mark.django_db

FAR_DATES = [
    ({"date_to": "9999-12-31"}, "date_to"),
    ({"date_from": "9999-12-31"}, "date_from"),
    ({"date_from": "0001-01-01"}, "date_from"),
    ({"date_from": "2024-05-02", "date_to": "2024-05-01"}, "date_to"),
]


@pytest.fixture
def charged(owner):
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=100)
    return owner


@pytest.mark.parametrize(("params", "field"), FAR_DATES)
def test_wallet_page_shows_a_form_error_for_an_unusable_date(client, charged, params, field):
    client.force_login(charged.user)
    resp = client.get(reverse("billing:wallet"), params)
    assert resp.status_code == 200
    assert field in resp.context["filters"].errors
    html = resp.content.decode()
    assert f'data-field="{field}"' in html
    assert "data-kind=" not in html  # nothing listed under a filter that was not applied


@pytest.mark.parametrize(("params", "field"), FAR_DATES)
def test_ledger_csv_answers_400_naming_the_field(client, charged, params, field):
    client.force_login(charged.user)
    resp = client.get(reverse("billing:ledger-csv"), params)
    assert resp.status_code == 400
    assert not resp.streaming
    assert field in resp.content.decode()


@pytest.mark.parametrize(("params", "field"), [*FAR_DATES, ({"date_to": "2024-13-01"}, "date_to")])
def test_ledger_api_answers_400_naming_the_field(client, charged, params, field):
    client.force_login(charged.user)
    resp = client.get(reverse("billing-api:ledger"), params)
    assert resp.status_code == 400
    assert resp.json()["field"] == field and resp.json()["code"] == "invalid"


def test_malformed_date_on_the_page_is_a_form_error_and_on_csv_a_400(client, charged):
    client.force_login(charged.user)
    resp = client.get(reverse("billing:wallet"), {"date_to": "2024-13-01"})
    assert resp.status_code == 200 and "date_to" in resp.context["filters"].errors
    assert client.get(reverse("billing:ledger-csv"), {"date_to": "2024-13-01"}).status_code == 400


def test_the_page_offers_the_csv_export_only_for_filters_it_could_apply(client, charged):
    # Given a developer whose filter the page refused (end before start)
    client.force_login(charged.user)
    bad = {"date_from": "2024-05-01", "date_to": "2024-04-01"}
    html = client.get(reverse("billing:wallet"), bad).content.decode()
    # Then the page says why and offers no export that would only answer an error page
    assert 'data-field="date_to"' in html and reverse("billing:ledger-csv") not in html
    # And with a filter it applied, the export carries that filter
    html = client.get(reverse("billing:wallet"), {"kind": "settlement_charge"}).content.decode()
    assert f'href="{reverse("billing:ledger-csv")}?kind=settlement_charge"' in html


def test_the_widest_accepted_range_still_lists_and_exports_everything(client, charged):
    wide = {"date_from": "2000-01-01", "date_to": "2999-12-31"}
    client.force_login(charged.user)
    html = client.get(reverse("billing:wallet"), wide).content.decode()
    assert html.count('data-kind="settlement_charge"') == 1
    lines = b"".join(client.get(reverse("billing:ledger-csv"), wide).streaming_content).splitlines()
    assert len(lines) == 2
    assert client.get(reverse("billing-api:ledger"), wide).json()["count"] == 1


def test_selector_refuses_an_out_of_range_date_naming_the_field(charged):
    with pytest.raises(DomainError) as exc:
        ledger_list_for_organization(
            organization_id=charged.organization_id, date_to=clock.today().replace(year=9999)
        )
    assert exc.value.field == "date_to" and exc.value.status == 400


def _back_href(html: str) -> str:
    import re

    return re.search(r'<a href="([^"]*)" data-back>', html).group(1)


def test_csv_error_page_names_the_field_by_its_label_and_goes_back_to_the_wallet(client, charged):
    # Given a developer who opens the export with a malformed date and no referring page
    client.force_login(charged.user)
    resp = client.get(reverse("billing:ledger-csv"), {"date_from": "2026-13-01"})
    html = resp.content.decode()
    # Then the page names the field by its label, with no machine code or raw field name shown
    assert resp.status_code == 400
    assert "开始日期: " in html
    assert "<strong>invalid</strong>" not in html and "(date_from)" not in html
    # And "Back" leads to the wallet page the export belongs to, not the dashboard
    assert _back_href(html) == reverse("billing:wallet")


def test_error_page_back_link_returns_to_the_referring_page_of_this_site_only(client, charged):
    client.force_login(charged.user)
    url = reverse("billing:ledger-csv")
    own = "http://testserver" + reverse("billing:wallet") + "?kind=settlement_charge"
    html = client.get(url, {"date_to": "2024-13-01"}, HTTP_REFERER=own).content.decode()
    assert _back_href(html) == own
    html = client.get(url, {"date_to": "2024-13-01"}, HTTP_REFERER="https://evil.example/x").content.decode()
    assert _back_href(html) == reverse("billing:wallet")


def test_a_refused_filter_says_to_fix_the_filter_not_that_the_wallet_is_empty(client, charged):
    # Given a developer whose filter the page refused (end before start)
    client.force_login(charged.user)
    html = client.get(reverse("billing:wallet"), {"date_from": "2026-11-01", "date_to": "2026-01-01"})
    html = html.content.decode()
    # Then the table asks for the filter to be fixed instead of reading like an empty ledger
    assert "暂无流水" not in html and "data-filter-refused" in html
    # And an accepted filter with no match still says there are no entries
    html = client.get(reverse("billing:wallet"), {"date_from": "2999-01-01"}).content.decode()
    assert "暂无流水" in html and "data-filter-refused" not in html
