"""Portal API: who am I, organization search (for pickers), notifications."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import selectors
from portal.models import ApiKey, Notification, Organization


class OrganizationOut(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "kind"]


class MembershipOut(serializers.Serializer):
    organization = OrganizationOut()
    role = serializers.CharField()


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    display_name = serializers.CharField()
    is_creator = serializers.BooleanField()
    roles = serializers.ListField(child=serializers.CharField())
    active_membership = MembershipOut(allow_null=True)
    memberships = MembershipOut(many=True)


class MeApi(APIView):
    @extend_schema(responses=MeOut, summary="The signed-in user, memberships and dashboard roles")
    def get(self, request):
        membership = request.active_membership
        is_key = isinstance(request.auth, ApiKey)  # speaks for the organization, not its owner
        data = {
            "id": request.user.id,
            "username": request.user.username,
            "display_name": request.user.display_name,
            "is_creator": not is_key and hasattr(request.user, "creator"),
            "roles": selectors.dashboard_roles(user=None if is_key else request.user, membership=membership),
            "active_membership": membership,
            # A key acts for its own organization only: its owner's other organizations are
            # none of the key-holder's business.
            "memberships": [membership]
            if isinstance(request.auth, ApiKey)
            else list(selectors.membership_list_for_user(user=request.user)),
        }
        return Response(MeOut(data).data)


class OrganizationSearchIn(serializers.Serializer):
    # CharField refuses NUL characters, which PostgreSQL cannot compare against text.
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)
    kind = serializers.ListField(child=serializers.ChoiceField(Organization.Kind.choices), required=False)


class OrganizationSearchApi(generics.ListAPIView):
    serializer_class = OrganizationOut
    filter_backends: list = []

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="part of the name"),
            OpenApiParameter("kind", str, many=True, enum=[k for k, _ in Organization.Kind.choices]),
        ],
        summary="Search organizations by name (trigram index)",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        data = OrganizationSearchIn(data={"q": params.get("q", ""), "kind": params.getlist("kind")})
        data.is_valid(raise_exception=True)
        return selectors.organization_search(
            query=data.validated_data["q"], kinds=data.validated_data["kind"] or None, limit=200
        )


class NotificationOut(serializers.ModelSerializer):
    # In the language of the request, not the one the notice was sent in.
    title = serializers.CharField(source="display_title", read_only=True)
    body = serializers.CharField(source="display_body", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "url", "created_at", "read_at"]


class NotificationListApi(generics.ListAPIView):
    serializer_class = NotificationOut
    filter_backends: list = []

    def get_queryset(self):
        membership = self.request.active_membership
        if isinstance(self.request.auth, ApiKey):
            # A key reads its organization's notices, not its owner's personal inbox (the
            # owner may be main account of other organizations, or a creator).
            return selectors.notification_list_for_organization(organization_id=membership.organization_id)
        return selectors.notification_list_for_user(user=self.request.user, membership=membership)
