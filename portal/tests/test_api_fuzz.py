"""The API's promise: bad input gets a 4xx with ``{code, message, field}``, never a 500.

A bounded schemathesis pass over every GET and POST operation in /api/schema/, run in-process
through the WSGI app (no server, no network) as the demo developer's organization, which
authenticates with an Api-Key. Hypothesis is derandomized so a red run reproduces exactly.

The demo data is seeded once for the module inside a transaction that is rolled back at the
end, and every request runs in its own savepoint that is always rolled back: a query the
database refuses (a NUL byte in a filter, say) then cannot poison the test's transaction and
turn every later request into a spurious 500, and examples cannot see each other's writes.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from portal import demo
from portal.models import Membership
from portal.services import api_key_create
from portal.wsgi import application

ERROR_KEYS = {"code", "message", "field"}


@pytest.fixture(scope="module")
def api_key(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", verbosity=0)
        main = Membership.objects.get(organization=demo.organization("provider"), role=Membership.Role.MAIN)
        _key, raw = api_key_create(membership=main, name="fuzz", actor=main.user)
        yield raw
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _keep_test_connection():
    # Django's test client does the same: closing the connection after each request would
    # drop the connection pytest-django manages for the test.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Loading the schema runs drf-spectacular's generator through the app; it reads no rows.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application).include(method=["GET", "POST"])


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_bad_input_gets_4xx_error_body_never_500(case, api_key):
    with transaction.atomic():
        response = case.call(headers={"Authorization": f"Api-Key {api_key}"})
        transaction.set_rollback(True)
    case.validate_response(response, checks=[not_a_server_error])
    if 400 <= response.status_code < 500 and response.headers.get("Content-Type", "").startswith(
        "application/json"
    ):
        body = response.json()
        assert isinstance(body, dict) and body.keys() >= ERROR_KEYS, (case.method, case.path, body)
