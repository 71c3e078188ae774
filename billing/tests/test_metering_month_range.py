"""?month= on the usage page and the usage-daily API: a month outside 2000-01..2999-12 is a
form error / 400 naming ``month``, never a 500 (9999-12 has no next month to end its range).
Ingest refuses such hours by line number for the same reason."""

import pytest
from django.urls import reverse

from billing.tests.factories_metering import paid_api, record_usage, sh

pytestmark = pytest.mark.django_db
DAILY = "/api/v1/billing/usage/daily"


@pytest.fixture
def used(app):
    api = paid_api()
    record_usage([(app, api, "in_cloud", sh(2026, 3, 2, 10), 7)])
    return app


@pytest.mark.parametrize("month", ["9999-12", "1999-12", "0001-01", "3000-01"])
def test_usage_page_shows_a_form_error_for_an_unsupported_month(client, owner, used, month):
    # given: a member of the organization
    client.force_login(owner.user)

    # when: the page is asked for a month outside the supported range
    resp = client.get(reverse("billing:usage"), {"month": month})

    # then: the page renders, the month filter carries the error, the current month is shown
    assert resp.status_code == 200
    assert "month" in resp.context["form"].errors
    assert "2000-01" in resp.context["form"].errors["month"][0]
    assert "2000-01" in resp.content.decode()


@pytest.mark.parametrize("month", ["2000-01", "2026-03", "2999-12"])
def test_usage_page_accepts_the_supported_edges(client, owner, used, month):
    client.force_login(owner.user)
    resp = client.get(reverse("billing:usage"), {"month": month})
    assert resp.status_code == 200 and not resp.context["form"].errors
    assert (resp.context["year"], resp.context["month"]) == tuple(map(int, month.split("-")))


@pytest.mark.parametrize("month", ["9999-12", "1999-12", "3000-01"])
def test_usage_daily_api_answers_400_naming_month(client, owner, used, month):
    client.force_login(owner.user)
    resp = client.get(DAILY, {"month": month})
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid" and resp.json()["field"] == "month"


def test_usage_daily_api_edges_and_outsider(client, owner, outsider, used):
    # the allowed member sees the last supported month (empty) and March's calls
    client.force_login(owner.user)
    last = client.get(DAILY, {"month": "2999-12"})
    assert last.status_code == 200 and last.json()["total_calls"] == 0 and len(last.json()["days"]) == 31
    assert client.get(DAILY, {"month": "2026-03"}).json()["total_calls"] == 7
    # another tenant gets the same 400 for a bad month and none of the organization's calls
    client.force_login(outsider.user)
    assert client.get(DAILY, {"month": "9999-12"}).status_code == 400
    assert client.get(DAILY, {"month": "2026-03"}).json()["total_calls"] == 0


def test_ingest_reports_hours_outside_the_supported_months_by_line(app):
    # given: a batch whose first and last lines lie past 2999-12 or before 2000-01
    from billing.services import usage

    api = paid_api()
    k, x = app.app_key, api.code
    body = (
        "app_key,api,location,hour,calls\n"
        f"{k},{x},in_cloud,9999-12-15T10:00:00+08:00,5\n"
        f"{k},{x},in_cloud,2026-03-02T10:00:00+08:00,6\n"
        f"{k},{x},in_cloud,1999-12-31T15:00:00Z,7\n"
    ).encode()

    # when
    result = usage.usage_ingest(data=body, batch_id="far-future")

    # then: no 500; the two lines are refused by number, the good one is kept
    assert result.errors == [
        {"line": 2, "reason": "hour outside 2000-01..2999-12"},
        {"line": 4, "reason": "hour outside 2000-01..2999-12"},
    ]
    assert (result.rows_accepted, result.rows_rejected) == (1, 2)
