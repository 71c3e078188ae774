from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


class DefaultPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def paginated(item_serializer: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """Schema of a DefaultPagination page of ``item_serializer`` items, for views that page by
    hand (APIView + paginator) and so are not wrapped by drf-spectacular automatically."""
    return type(
        f"Paginated{item_serializer.__name__}Page",
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item_serializer(many=True),
        },
    )
