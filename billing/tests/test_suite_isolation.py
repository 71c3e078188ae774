"""Billing's transactional tests leave the database as the migrations made it.

A ``django_db(transaction=True)`` test ends with a flush. Without ``serialized_rollback`` the
flush runs post_migrate, which recreates content types and permissions under new ids and drops
what the data migrations wrote (staff groups, beat entries): a ``serialized_rollback`` test run
after it then fails to restore the database (duplicate ``django_content_type`` key), and a test
that needs the staff groups finds none. Every billing test that uses real transactions restores
the migrations' data instead, as the wallet and settlement races do.
"""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _flag(call: ast.Call, name: str) -> bool:
    return any(
        kw.arg == name and isinstance(kw.value, ast.Constant) and kw.value.value is True
        for kw in call.keywords
    )


def _transactional_markers_without_serialized_rollback(tests: Path = TESTS) -> list[str]:
    found = []
    for path in sorted(tests.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "django_db"
                and _flag(node, "transaction")
                and not _flag(node, "serialized_rollback")
            ):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_every_transactional_billing_test_restores_what_the_migrations_created():
    assert _transactional_markers_without_serialized_rollback() == []


def test_the_check_sees_a_transactional_marker_without_serialized_rollback(tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.django_db(transaction=True)\n"
        "def test_a(): ...\n\n"
        "@pytest.mark.django_db(transaction=True, serialized_rollback=True)\n"
        "def test_b(): ...\n"
    )
    assert _transactional_markers_without_serialized_rollback(tmp_path) == ["test_sample.py:3"]
