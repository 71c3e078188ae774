import dataclasses

from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import BooleanField, F, Func, QuerySet, Value
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from portal.errors import DomainError


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


# --- keyset (seek) pagination ----------------------------------------------------------------------
#
# OFFSET pagination reads and throws away every row before the page, so page 4,000 of a 100,000
# row list costs as much as the whole list. A keyset page instead starts right after the last
# row seen: ``WHERE (key, id) > (last_key, last_id) ORDER BY key, id LIMIT n``, one index range
# scan whatever the depth, provided an index on (<filter columns>, key, id) exists. The cursor
# carries (key, id, direction), signed so a client cannot hand us arbitrary values; a bad one
# is a 400 naming the ``cursor`` parameter, never a 500.


class InvalidCursor(DomainError):
    def __init__(self):
        super().__init__(
            "invalid",
            _("翻页位置 cursor 无效或已被篡改。请从第一页重新开始。"),
            field="cursor",
        )


class _RowCompare(Func):
    """``(a, b) > (x, y)`` (or ``<``): PostgreSQL compares rows lexicographically and can use
    it as one index condition on consecutive index columns."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, op: str, columns: list, values: list):
        self.op = op
        super().__init__(*columns, *(Value(v) for v in values))

    def as_sql(self, compiler, connection, **extra):
        parts, params = [], []
        for expr in self.get_source_expressions():
            sql, p = compiler.compile(expr)
            parts.append(sql)
            params.extend(p)
        half = len(parts) // 2
        return f"({', '.join(parts[:half])}) {self.op} ({', '.join(parts[half:])})", params


@dataclasses.dataclass
class KeysetPage:
    """One page of a keyset-paginated list; iterate it like a Django ``Page``."""

    object_list: list
    next_cursor: str | None
    previous_cursor: str | None

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous


def _key_field(qs: QuerySet, name: str):
    annotation = qs.query.annotations.get(name)
    return annotation.output_field if annotation is not None else qs.model._meta.get_field(name)


def cursor_encode(*, values: tuple, direction: str, salt: str) -> str:
    return signing.dumps([[str(v) for v in values], direction], salt=salt, compress=True)


def cursor_decode(cursor: str, *, fields: list, salt: str) -> tuple[tuple, str]:
    try:
        raw, direction = signing.loads(cursor, salt=salt)
        if direction not in ("n", "p") or len(raw) != len(fields):
            raise ValueError(direction)
        return tuple(f.to_python(v) for f, v in zip(fields, raw, strict=True)), direction
    except (signing.BadSignature, ValueError, TypeError, ValidationError) as exc:
        raise InvalidCursor() from exc


def keyset_page(
    qs: QuerySet, *, keys: tuple[str, ...], cursor: str | None, size: int, salt: str
) -> KeysetPage:
    """A page of ``qs`` ordered by ``keys`` ascending (the last key unique, e.g. ``id``), after
    (or, for a "previous" cursor, before) the cursor's row. ``keys`` must not be NULL (coalesce
    them in an annotation) so the row comparison never drops rows."""
    fields = [_key_field(qs, k) for k in keys]
    columns = [F(k) for k in keys]
    direction = "n"
    if cursor:
        values, direction = cursor_decode(cursor, fields=fields, salt=salt)
        qs = qs.filter(_RowCompare(">" if direction == "n" else "<", columns, list(values)))
    if direction == "n":
        rows = list(qs.order_by(*keys)[: size + 1])
    else:
        rows = list(qs.order_by(*(f"-{k}" for k in keys))[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if direction == "p":
        rows.reverse()

    def at(row, d):
        return cursor_encode(values=tuple(getattr(row, k) for k in keys), direction=d, salt=salt)

    if not rows:
        return KeysetPage([], None, None)
    has_next = more if direction == "n" else True
    has_previous = bool(cursor) if direction == "n" else more
    return KeysetPage(
        rows,
        at(rows[-1], "n") if has_next else None,
        at(rows[0], "p") if has_previous else None,
    )


class KeysetPagination(BasePagination):
    """DRF pagination over ``keyset_page``: ``?cursor=`` from the previous answer's ``next`` or
    ``previous`` link; no count (counting 100,000 rows on every page is what this avoids).
    Views set ``keyset_keys`` (ascending, last one unique) and ``keyset_salt``."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = self.page_size
        raw = request.query_params.get(self.page_size_query_param)
        if raw and raw.isdigit() and int(raw) > 0:
            size = min(int(raw), self.max_page_size)
        self.page = keyset_page(
            queryset,
            keys=view.keyset_keys,
            cursor=request.query_params.get(self.cursor_query_param) or None,
            size=size,
            salt=view.keyset_salt,
        )
        return list(self.page)

    def _link(self, cursor):
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, cursor)

    def get_paginated_response(self, data):
        return Response(
            {
                "next": self._link(self.page.next_cursor),
                "previous": self._link(self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position from the `next` or `previous` link of the previous "
                "page (keyset pagination); a tampered cursor answers 400 with field `cursor`.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (at most {self.max_page_size}).",
                "schema": {"type": "integer"},
            },
        ]
