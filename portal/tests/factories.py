import factory
from factory.django import DjangoModelFactory

from portal.models import Creator, Membership, Organization, User


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


def main_member(org=None, **kwargs) -> Membership:
    """A user who is the main account (主账号) of ``org`` (a new shop by default)."""
    return MembershipFactory(organization=org or OrganizationFactory(**kwargs), role=Membership.Role.MAIN)


def sub_member(org) -> Membership:
    return MembershipFactory(organization=org, role=Membership.Role.SUB)
