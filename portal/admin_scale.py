"""Admin lists over tables of millions of rows (ledger, orders, events, the audit log).

What makes Django's changelist slow on such a table, each measured in ``bench/bench_admin.py``:

- It counts the rows with ``COUNT(*)`` on every page view (and a second time for "N total"
  unless ``show_full_result_count`` is off): a count reads every row it counts.
  ``EstimatedCountPaginator`` counts exactly up to ``exact_up_to`` rows (``SELECT count(*) FROM
  (… LIMIT n+1)``: bounded work whatever the table's size) and past that takes the planner's row
  estimate of the same query (``EXPLAIN``: statistics, no rows read). A filtered list of a few
  thousand rows is counted exactly; only a list too long to page through by hand shows an
  approximate total (marked "约"). A too-high estimate only leaves its last pages empty.
- A ``list_filter`` on a plain column (no ``choices``) lists its values with ``SELECT DISTINCT``
  over the whole table. ``RecentValuesListFilter`` offers the values of the newest rows instead
  (a backward walk of the primary key); an older value still filters by its URL parameter.
- ``search_fields`` make one query with an OR of ``icontains`` over every field (joined across
  relations), which no index serves. ``LargeTableAdmin.get_search_results`` compares a field
  exactly unless it names its lookup (keys such as order numbers), turns a related field into
  ``fk IN (SELECT pk FROM related WHERE …)``, and runs one SELECT per field combined with
  ``UNION ALL``: each is an index lookup on its own key.
- The "facet counts" toggle counts every filter choice over the table: turned off.
"""

import json

from django.contrib import admin
from django.contrib.admin.filters import AllValuesFieldListFilter
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property


def planner_row_estimate(queryset: QuerySet) -> int:
    """The planner's estimate of the rows ``queryset`` returns (EXPLAIN, nothing executed)."""
    sql, params = queryset.order_by().query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    exact_up_to = 10_000

    @cached_property
    def count_is_estimate(self) -> bool:
        return self.count > self.exact_up_to

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        counted = queryset.order_by()[: self.exact_up_to + 1].count()
        if counted <= self.exact_up_to:
            return counted
        return max(planner_row_estimate(queryset), counted)


class RecentValuesListFilter(AllValuesFieldListFilter):
    """The values of the newest ``recent_rows`` rows, not ``SELECT DISTINCT`` of the table."""

    recent_rows = 10_000

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        recent = model._default_manager.order_by("-pk").values(field.attname)[: self.recent_rows]
        sql, sql_params = recent.query.sql_with_params()
        column = connections[recent.db].ops.quote_name(field.column)
        with connections[recent.db].cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT {column} FROM ({sql}) AS recent", sql_params)
            values = {row[0] for row in cursor.fetchall() if row[0] is not None}
        if self.lookup_val:
            values.update(self.lookup_val)  # the chosen value stays listed, however old
        self.lookup_choices = sorted(values)


def _search_q(model, spec: str, term: str) -> Q:
    """``a__b__lookup`` → ``Q(a__in=A.objects.filter(b__lookup=term).values("pk"))``."""
    first, _, rest = spec.partition("__")
    try:
        field = model._meta.get_field(first)
    except FieldDoesNotExist:
        field = None
    if field is not None and field.is_relation and rest:
        related = field.related_model
        inner = related._default_manager.filter(_search_q(related, rest, term)).values("pk")
        return Q(**{f"{first}__in": inner})
    if field is not None and not rest:
        spec = f"{first}__exact"
    return Q(**{spec: term})


class LargeTableAdmin(admin.ModelAdmin):
    """Base for the admin of a table that grows without bound (see the module docstring).

    ``search_fields`` here name exact lookups by default (``out_trade_no`` is
    ``out_trade_no__exact``); spell out ``name__icontains`` where an index serves it (the
    trigram indexes on organization names and creator nicknames). The whole search box is one
    term: a key is looked up as typed.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        fields = self.get_search_fields(request)
        if not term or not fields:
            return queryset, False
        # One SELECT per field, combined with UNION ALL: an OR of them (Django's way) is one
        # filter over a sequential scan, since PostgreSQL cannot semi-join under an OR.
        manager = self.model._default_manager
        branches = [manager.filter(_search_q(self.model, spec, term)).values("pk") for spec in fields]
        matches = branches[0].union(*branches[1:], all=True) if len(branches) > 1 else branches[0]
        return queryset.filter(pk__in=matches), False
