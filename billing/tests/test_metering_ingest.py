"""Usage ingest (FEE-2.3/2.4): idempotent batches, replaced rows, bad rows by line, partitions."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from billing.models import UsageBatch, UsageHourly
from billing.services import usage
from billing.tests.factories_metering import AppFactory, paid_api, sh

pytestmark = pytest.mark.django_db
URL = "/api/v1/billing/usage"


def csv_body(*lines):
    return ("app_key,api,location,hour,calls\n" + "\n".join(lines) + "\n").encode()


def calls_of(app, api):
    return sorted(UsageHourly.objects.filter(app_id=app.id, api_id=api.id).values_list("location", "calls"))


def test_fee_2_3_batch_sent_twice_counts_once(app):
    api = paid_api()
    body = csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5")
    first = usage.usage_ingest(data=body, batch_id="B-1")
    again = usage.usage_ingest(data=body, batch_id="B-1")
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.rows_accepted == 1
    assert calls_of(app, api) == [("in_cloud", 5)]
    assert UsageBatch.objects.filter(batch_id="B-1").count() == 1


def test_fee_2_3_row_for_a_recorded_hour_replaces_never_adds(app):
    api = paid_api()
    usage.usage_ingest(
        data=csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5"), batch_id="a"
    )
    usage.usage_ingest(
        data=csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T02:00:00Z,8"), batch_id="b"
    )
    assert calls_of(app, api) == [("in_cloud", 8)]


def test_fee_2_3_within_one_batch_the_last_line_for_a_key_wins(app):
    api = paid_api()
    line = f"{app.app_key},{api.code},out_of_cloud,2026-03-02T10:00:00+08:00,"
    result = usage.usage_ingest(data=csv_body(line + "1", line + "2", line + "3"), batch_id="c")
    assert result.rows_accepted == 3 and calls_of(app, api) == [("out_of_cloud", 3)]


def test_fee_2_3_bad_rows_are_reported_by_line_and_good_rows_kept(app):
    api = paid_api()
    k, x = app.app_key, api.code
    body = csv_body(
        f"{k},{x},in_cloud,2026-03-02T10:00:00+08:00,5",  # line 2: good
        f"nope,{x},in_cloud,2026-03-02T10:00:00+08:00,5",
        f"{k},no.such.api,in_cloud,2026-03-02T10:00:00+08:00,5",
        f"{k},{x},in_cloud,2026-03-02T10:30:00+08:00,5",
        f"{k},{x},in_cloud,2026-03-02T11:00:00+08:00,-3",
        f"{k},{x},in_cloud,2026-02-30T11:00:00+08:00,5",
        f"{k},{x},in_cloud,2026-03-02 11:00,5",
        f"{k},{x},on_the_moon,2026-03-02T11:00:00+08:00,5",
        f"{k},{x},in_cloud",
        f"{k},{x},in_cloud,2026-03-02T12:00:00+08:00,many",
        f"{k},{x},out_of_cloud,2026-03-02T12:00:00+08:00,7",  # line 12: good
    )
    result = usage.usage_ingest(data=body, batch_id="bad")
    assert result.errors == [
        {"line": 3, "reason": "unknown app_key"},
        {"line": 4, "reason": "unknown api"},
        {"line": 5, "reason": "hour is not on the hour"},
        {"line": 6, "reason": "negative calls"},
        {"line": 7, "reason": "hour is not an ISO 8601 time with a UTC offset"},
        {"line": 8, "reason": "hour is not an ISO 8601 time with a UTC offset"},
        {"line": 9, "reason": "location must be in_cloud or out_of_cloud"},
        {"line": 10, "reason": "malformed row (expected app_key,api,location,hour,calls)"},
        {"line": 11, "reason": "calls is not a whole number"},
    ]
    assert (result.rows_total, result.rows_accepted, result.rows_rejected) == (11, 2, 9)
    assert calls_of(app, api) == [("in_cloud", 5), ("out_of_cloud", 7)]


def test_fee_2_3_ndjson_lines_are_numbered_from_one(app):
    api = paid_api()
    body = (
        f'{{"app_key": "{app.app_key}", "api": "{api.code}", "location": "in_cloud",'
        f' "hour": "2026-03-02T10:00:00+08:00", "calls": 4}}\n'
        "{not json\n"
        "[1, 2]\n"
    ).encode()
    result = usage.usage_ingest(data=body, batch_id="nd", fmt="ndjson")
    assert [e["line"] for e in result.errors] == [2, 3]
    assert calls_of(app, api) == [("in_cloud", 4)]


def test_fee_4_2_rows_land_in_the_shanghai_month_partition(app):
    api = paid_api()
    usage.usage_ingest(
        data=csv_body(
            f"{app.app_key},{api.code},in_cloud,2026-03-31T23:00:00+08:00,1",
            f"{app.app_key},{api.code},in_cloud,2026-04-30T16:00:00Z,1",
        ),
        batch_id="p",
    )
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text FROM billing_usage_hourly ORDER BY hour")
        assert [r[0] for r in cur.fetchall()] == [
            "billing_usage_hourly_p2026_03",
            "billing_usage_hourly_p2026_05",
        ]


def test_fee_4_2_rows_for_a_settled_month_are_refused(app):
    from billing.services.settlement import settlement_run_month

    api = paid_api()
    settlement_run_month(year=2026, month=3)
    result = usage.usage_ingest(
        data=csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5"), batch_id="late"
    )
    assert result.errors == [{"line": 2, "reason": "month already settled (FEE-4.2)"}]


def test_partitions_are_created_ahead_by_the_beat_job():
    from billing.tasks_metering import usage_partitions_task

    created = usage.usage_partitions_ensure_ahead(today=sh(2031, 11, 20).date(), months_ahead=3)
    assert created == [f"billing_usage_hourly_p{n}" for n in ("2031_11", "2031_12", "2032_01", "2032_02")]
    assert usage.usage_partitions_ensure_ahead(today=sh(2031, 11, 20).date(), months_ahead=3) == []
    assert isinstance(usage_partitions_task(), list)


def test_import_usage_command_reports_bad_lines(app, tmp_path):
    api = paid_api()
    path = tmp_path / "usage.csv"
    path.write_bytes(
        csv_body(
            f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5", f"x,{api.code},in_cloud,bad,1"
        )
    )
    out = io.StringIO()
    call_command("import_usage", str(path), "--batch-id", "cmd-1", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "accepted 1" in text and "rejected 1" in text and "line 3: unknown app_key" in text
    assert calls_of(app, api) == [("in_cloud", 5)]
    out = io.StringIO()
    call_command("import_usage", str(path), "--batch-id", "cmd-1", stdout=out, stderr=io.StringIO())
    assert "already ingested" in out.getvalue()


class TestIngestApi:
    def test_fee_2_3_gateway_posts_csv_and_a_retry_counts_once(self, client, app, gateway_token):
        api = paid_api()
        body = csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5", "bad line")
        headers = {"HTTP_AUTHORIZATION": f"Bearer {gateway_token}"}
        resp = client.post(f"{URL}?batch_id=api-1", body, content_type="text/csv", **headers)
        assert resp.status_code == 201, resp.content
        assert resp.json()["rows_accepted"] == 1 and resp.json()["errors"][0]["line"] == 3
        again = client.post(f"{URL}?batch_id=api-1", body, content_type="text/csv", **headers)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert calls_of(app, api) == [("in_cloud", 5)]

    def test_ndjson_by_content_type_and_batch_header(self, client, app, gateway_token):
        api = paid_api()
        body = (
            f'{{"app_key":"{app.app_key}","api":"{api.code}","location":"out_of_cloud",'
            f'"hour":"2026-03-02T10:00:00Z","calls":9}}\n'
        ).encode()
        resp = client.post(
            URL,
            body,
            content_type="application/x-ndjson",
            HTTP_AUTHORIZATION=f"Bearer {gateway_token}",
            HTTP_X_BATCH_ID="nd-api",
        )
        assert resp.status_code == 201 and resp.json()["rows_accepted"] == 1

    def test_ingest_refuses_wrong_token_members_and_missing_batch(self, client, owner, gateway_token):
        assert client.post(f"{URL}?batch_id=x", b"", content_type="text/csv").status_code == 401
        bad = client.post(f"{URL}?batch_id=x", b"", content_type="text/csv", HTTP_AUTHORIZATION="Bearer nope")
        assert bad.status_code == 401
        client.force_login(owner.user)
        assert client.post(f"{URL}?batch_id=x", b"", content_type="text/csv").status_code == 403
        resp = client.post(URL, b"", content_type="text/csv", HTTP_AUTHORIZATION=f"Bearer {gateway_token}")
        assert resp.status_code == 400 and resp.json()["field"] == "batch_id"
        assert reverse("billing-api:usage-ingest") == URL

    def test_other_apps_rows_are_ingested_whoever_owns_them(self, client, gateway_token):
        a1, a2 = AppFactory(), AppFactory()
        api = paid_api()
        body = csv_body(*(f"{a.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,1" for a in (a1, a2)))
        resp = client.post(
            f"{URL}?batch_id=two", body, content_type="text/csv", HTTP_AUTHORIZATION=f"Bearer {gateway_token}"
        )
        assert resp.json()["rows_accepted"] == 2


def _staff_in(group_name):
    from django.contrib.auth.models import Group

    from portal.permissions import staff_groups_ensure
    from portal.tests.factories import UserFactory

    staff_groups_ensure()  # a transactional test's flush may have emptied the migrated groups
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


class TestIngestByStaff:
    """P-4: usage is what settlement charges, so only billing staff may post it by hand."""

    def test_p4_staff_outside_billing_ops_get_403_and_write_no_usage(self, client, app):
        api = paid_api()
        client.force_login(_staff_in("gift-reviewers"))
        body = csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,999999")
        resp = client.post(f"{URL}?batch_id=evil", body, content_type="text/csv")
        assert resp.status_code == 403, resp.content
        assert "P-4" in resp.json()["message"]
        assert not UsageHourly.objects.exists() and not UsageBatch.objects.exists()

    def test_p4_billing_ops_staff_batch_is_audited_under_its_sender(self, client, app):
        from portal.models import AuditEntry

        api = paid_api()
        ops = _staff_in("billing-ops")
        client.force_login(ops)
        body = csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5")
        resp = client.post(f"{URL}?batch_id=by-hand", body, content_type="text/csv")
        assert resp.status_code == 201, resp.content
        batch = UsageBatch.objects.get(batch_id="by-hand")
        entry = AuditEntry.objects.get(action="billing.usage_ingest")
        assert entry.actor == ops and entry.object_id == str(batch.pk)
        assert entry.details["rows_accepted"] == 1
        assert calls_of(app, api) == [("in_cloud", 5)]

    def test_p4_a_gateway_batch_has_no_staff_audit_entry(self, client, app, gateway_token):
        from portal.models import AuditEntry

        api = paid_api()
        body = csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5")
        resp = client.post(
            f"{URL}?batch_id=gw", body, content_type="text/csv", HTTP_AUTHORIZATION=f"Bearer {gateway_token}"
        )
        assert resp.status_code == 201
        assert not AuditEntry.objects.filter(action="billing.usage_ingest").exists()
