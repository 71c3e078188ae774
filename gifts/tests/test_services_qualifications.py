"""Qualification uploads and review (GIFT-2.3), document demands (GIFT-3), licence expiry."""

import datetime as dt

import pytest
from django.core.files.storage import default_storage

from gifts import services
from gifts.errors import GiftRuleError, NotFound, TransitionError, UploadRejected
from gifts.models import DocumentRequest, GiftEvent, Qualification
from gifts.tests.factories import (
    ELF_BYTES,
    PNG_BYTES,
    UserFactory,
    approved_gift,
    food_category,
    main_member,
    sub_member,
    upload,
    valid_licence,
)
from portal.models import AuditEntry, Notification

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
TODAY = dt.date(2024, 5, 1)


@pytest.fixture
def owner():
    return main_member()


@pytest.fixture
def staff():
    return UserFactory(is_staff=True)


def _upload(owner, f=None, **kw):
    return services.qualification_upload(
        membership=owner, actor=owner.user, licence_type="食品经营许可证", upload=f or upload(), **kw
    )


def test_gift_2_3_pdf_upload_is_stored_privately_with_its_hash(owner):
    q = _upload(owner)
    assert q.content_type == "application/pdf" and q.state == "pending" and len(q.sha256) == 64
    assert q.storage_name.startswith(f"gifts/qualifications/{owner.organization_id}/")
    assert default_storage.open(q.storage_name).read(5) == b"%PDF-"
    assert GiftEvent.objects.filter(qualification=q, kind="qualification_uploaded").exists()


def test_gift_2_3_png_upload_is_accepted_by_content_even_if_named_pdf(owner):
    q = _upload(owner, upload("scan.pdf", PNG_BYTES, "application/pdf"))
    assert q.content_type == "image/png" and q.storage_name.endswith(".png")


def test_gift_2_3_renamed_executable_is_rejected_and_nothing_is_stored(owner):
    with pytest.raises(UploadRejected) as err:
        _upload(owner, upload("licence.pdf", ELF_BYTES, "application/pdf"))
    assert err.value.code == "UPLOAD-TYPE"
    assert not Qualification.objects.exists()


def test_gift_2_3_fake_pdf_header_is_rejected(owner):
    with pytest.raises(UploadRejected):
        _upload(owner, upload("licence.pdf", b"Hello, I am text pretending %PDF-", "application/pdf"))


def test_gift_2_3_upload_over_the_size_limit_is_rejected(owner, settings):
    settings.MAX_UPLOAD_BYTES = 1024
    with pytest.raises(UploadRejected) as err:
        _upload(owner, upload("big.pdf", b"%PDF-1.4\n" + b"0" * 2000))
    assert err.value.code == "UPLOAD-TOO-LARGE"


def test_gift_2_3_sub_account_cannot_upload_licences(owner):
    sub = sub_member(owner.organization)
    with pytest.raises(Exception) as err:
        _upload(sub)
    assert err.value.status == 403


def test_gift_2_3_staff_approve_with_number_and_expiry_audited(owner, staff):
    q = _upload(owner)
    q = services.qualification_approve(
        qualification=q, actor=staff, licence_number="JY1", valid_until=dt.date(2026, 1, 1), now=NOW
    )
    assert (q.state, q.licence_number, q.reviewed_by) == ("approved", "JY1", staff)
    assert AuditEntry.objects.filter(action="gifts.qualification_approve", object_id=str(q.pk)).exists()
    with pytest.raises(TransitionError):
        services.qualification_reject(qualification=q, actor=staff, reason="x")


def test_gift_2_3_expired_licence_cannot_be_approved(owner, staff):
    q = _upload(owner)
    with pytest.raises(GiftRuleError):
        services.qualification_approve(
            qualification=q, actor=staff, licence_number="JY1", valid_until=dt.date(2024, 4, 30), now=NOW
        )


def test_gift_2_3_staff_reject_with_reason(owner, staff):
    q = services.qualification_reject(qualification=_upload(owner), actor=staff, reason="模糊不清")
    assert q.state == "rejected" and q.reject_reason == "模糊不清"
    assert Notification.objects.filter(organization=owner.organization, kind="gift_qualification").exists()


def test_gift_2_3_expired_licence_suspends_dependent_gifts_and_renewal_reinstates(owner, staff):
    gift = approved_gift(shop=owner.organization, category=food_category())
    valid_licence(owner.organization, valid_until=dt.date(2024, 4, 30))
    result = services.qualification_expiry_run(today=TODAY)
    gift.refresh_from_db()
    assert result["suspended"] == 1 and gift.state == "suspended"
    assert services.qualification_expiry_run(today=TODAY)["suspended"] == 0  # runs twice, suspends once
    q = _upload(owner)
    services.qualification_approve(
        qualification=q, actor=staff, licence_number="JY2", valid_until=dt.date(2027, 1, 1), now=NOW
    )
    gift.refresh_from_db()
    assert gift.state == "approved"
    assert GiftEvent.objects.filter(gift=gift, kind="reinstated").exists()


def test_gift_2_3_licence_valid_through_its_last_day():
    gift = approved_gift(category=food_category())
    valid_licence(gift.shop, valid_until=TODAY)
    assert services.qualification_expiry_run(today=TODAY)["suspended"] == 0


def test_gift_2_3_shop_is_told_30_days_ahead_once(owner):
    valid_licence(owner.organization, valid_until=TODAY + dt.timedelta(days=30))
    valid_licence(owner.organization, valid_until=TODAY + dt.timedelta(days=31), licence_type="其他许可证")
    assert services.qualification_expiry_run(today=TODAY)["noticed"] == 1
    assert (
        services.qualification_expiry_run(today=TODAY + dt.timedelta(days=1))["noticed"] == 1
    )  # the 31-day one
    assert services.qualification_expiry_run(today=TODAY + dt.timedelta(days=2))["noticed"] == 0
    assert Notification.objects.filter(kind="gift_licence_expiring").count() == 2


def test_gift_3_document_demand_unanswered_removes_the_gift(staff):
    gift = approved_gift()
    services.document_request_create(
        gift=gift, actor=staff, reason="请提供来源证明", deadline_at=NOW + dt.timedelta(days=3), now=NOW
    )
    assert services.document_request_expire_run(now=NOW + dt.timedelta(days=2)) == 0
    assert services.document_request_expire_run(now=NOW + dt.timedelta(days=4)) == 1
    gift.refresh_from_db()
    assert gift.state == "removed" and DocumentRequest.objects.get(gift=gift).state == "expired"
    assert services.document_request_expire_run(now=NOW + dt.timedelta(days=5)) == 0


def test_gift_3_document_demand_answered_in_time_keeps_the_gift(owner, staff):
    gift = approved_gift(shop=owner.organization, category=food_category())
    req = services.document_request_create(
        gift=gift, actor=staff, reason="请提供资质", deadline_at=NOW + dt.timedelta(days=3), now=NOW
    )
    q = _upload(owner, document_request_id=req.pk)
    req.refresh_from_db()
    assert req.state == "fulfilled" and req.fulfilled_by == q
    assert services.document_request_expire_run(now=NOW + dt.timedelta(days=4)) == 0
    gift.refresh_from_db()
    assert gift.state == "approved"


def test_gift_3_rejected_document_reopens_the_demand_and_the_gift_is_removed_after_its_deadline(owner, staff):
    # Given a demand for documents answered with a document staff then reject
    gift = approved_gift(shop=owner.organization, category=food_category())
    req = services.document_request_create(
        gift=gift, actor=staff, reason="抽检索取", deadline_at=NOW + dt.timedelta(days=3), now=NOW
    )
    q = _upload(owner, document_request_id=req.pk, now=NOW)

    # When staff reject the document
    services.qualification_reject(qualification=q, actor=staff, reason="不是所需资质", now=NOW)

    # Then the demand is open again until its deadline, and the shop is told
    req.refresh_from_db()
    assert (req.state, req.fulfilled_by, req.closed_at) == ("open", None, None)
    assert GiftEvent.objects.filter(gift=gift, kind="document_request_reopened", rule_id="GIFT-3").exists()
    assert (
        Notification.objects.filter(organization=owner.organization, kind="gift_documents_requested").count()
        == 2
    )
    assert services.document_request_expire_run(now=NOW + dt.timedelta(days=2)) == 0
    # and with no valid document by the deadline the gift is removed (GIFT-3(3))
    assert services.document_request_expire_run(now=NOW + dt.timedelta(days=4)) == 1
    gift.refresh_from_db()
    req.refresh_from_db()
    assert (gift.state, req.state) == ("removed", "expired")


def test_gift_3_reopened_demand_is_fulfilled_by_a_new_document(owner, staff):
    gift = approved_gift(shop=owner.organization, category=food_category())
    req = services.document_request_create(
        gift=gift, actor=staff, reason="抽检索取", deadline_at=NOW + dt.timedelta(days=3), now=NOW
    )
    rejected = _upload(owner, document_request_id=req.pk, now=NOW)
    services.qualification_reject(qualification=rejected, actor=staff, reason="模糊不清", now=NOW)
    second = _upload(owner, document_request_id=req.pk, now=NOW + dt.timedelta(days=1))
    req.refresh_from_db()
    assert (req.state, req.fulfilled_by) == ("fulfilled", second)
    assert services.document_request_expire_run(now=NOW + dt.timedelta(days=4)) == 0


def test_gift_3_one_open_demand_per_gift(staff):
    gift = approved_gift()
    services.document_request_create(
        gift=gift, actor=staff, reason="a", deadline_at=NOW + dt.timedelta(days=3), now=NOW
    )
    with pytest.raises(Exception) as err:
        services.document_request_create(
            gift=gift, actor=staff, reason="b", deadline_at=NOW + dt.timedelta(days=3), now=NOW
        )
    assert err.value.code == "GIFT-3"


def test_gift_3_other_shops_document_request_is_not_found(owner, staff):
    req = services.document_request_create(
        gift=approved_gift(), actor=staff, reason="a", deadline_at=NOW + dt.timedelta(days=3), now=NOW
    )
    with pytest.raises(NotFound):
        _upload(owner, document_request_id=req.pk)
    assert not Qualification.objects.exists()
