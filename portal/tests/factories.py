import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from portal.models import Creator, Membership, Notification, Organization, OutboundEmail, User


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    display_name = factory.Faker("name", locale="zh_CN")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"组织{n} Org {n}")
    kind = Organization.Kind.SHOP


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.MAIN


class CreatorFactory(DjangoModelFactory):
    class Meta:
        model = Creator

    user = factory.SubFactory(UserFactory)
    nickname = factory.Sequence(lambda n: f"达人{n}")
    douyin_id = factory.Sequence(lambda n: f"dy_{n}")


class NotificationFactory(DjangoModelFactory):
    class Meta:
        model = Notification

    user = factory.SubFactory(UserFactory)
    kind = "test"
    title = factory.Sequence(lambda n: f"通知 {n}")


class OutboundEmailFactory(DjangoModelFactory):
    """A pending outbox email whose after-commit send never ran (its grace is over)."""

    class Meta:
        model = OutboundEmail

    notification = factory.SubFactory(NotificationFactory)
    language = "zh-hans"
    recipients = factory.LazyAttribute(lambda o: [o.notification.user.email])
    subject = factory.LazyAttribute(lambda o: o.notification.title)
    text = "正文"
    created_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=10))
    next_attempt_at = factory.LazyAttribute(lambda o: o.created_at + dt.timedelta(minutes=2))


def main_member(org=None, **kwargs) -> Membership:
    """A user who is the main account (主账号) of ``org`` (a new shop by default)."""
    return MembershipFactory(organization=org or OrganizationFactory(**kwargs), role=Membership.Role.MAIN)


def sub_member(org) -> Membership:
    return MembershipFactory(organization=org, role=Membership.Role.SUB)
