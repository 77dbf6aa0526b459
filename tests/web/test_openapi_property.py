"""Property test over the OpenAPI document (schemathesis): random valid and invalid requests to
every operation never produce a 5xx, and without a token every operation answers 401."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from primeguard.web import create_app
from tests.web.seed import Seeded

EXAMPLES = 12


def _spec() -> dict:
    """The app's OpenAPI document (it does not depend on the store's content)."""
    import tempfile

    from primeguard.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/spec.db")
        try:
            return create_app(store).openapi()
        finally:
            store.close()


schema = schemathesis.openapi.from_dict(_spec())


@pytest.fixture
def api_app(seeded: Seeded, dest_service):
    return create_app(seeded.store, withdrawals=seeded.service, playbook=seeded.playbook,
                      policy_dir=seeded.policy_dir, destinations=dest_service)


def test_schema_is_served_with_a_token(api_app, seeded: Seeded):
    loaded = schemathesis.openapi.from_asgi("/openapi.json", api_app, headers=seeded.auth("vera"))
    assert loaded.raw_schema == schema.raw_schema
    assert len(list(schema.get_all_operations())) == 16


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, api_app, seeded: Seeded):
    """Each role that can write something: random requests never break the server."""
    for user in ("carol", "tom", "adam"):
        response = case.call(app=api_app, headers=seeded.auth(user))
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, (user, case.method, case.formatted_path, response.text)
        assert response.headers["content-type"][0].startswith("application/json")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_needs_auth(case, api_app, seeded: Seeded):
    """Without a token (or with a wrong one) nothing is read or written: always 401, whatever the body."""
    before = _audit_head(seeded)
    for headers in ({}, {"Authorization": "Bearer pgt_wrong-wrong-wrong-wrong-wrong"}):
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        response = case.call(app=api_app, headers=headers)
        assert response.status_code == 401, (case.method, case.formatted_path, response.status_code, response.text)
        assert response.json()["error"] == "unauthenticated"
    assert _audit_head(seeded) == before


def _audit_head(seeded: Seeded):
    from primeguard.store import audit

    with seeded.store.session(readonly=True) as s:
        return audit.head(s)
