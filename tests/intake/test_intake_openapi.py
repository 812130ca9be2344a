"""The OpenAPI 3.1 document stays true: schemathesis against the live server.

At least 1,000 generated requests (valid and invalid by the document), with and without a
supervisor's token: no 5xx, and every status code, content type, header and body matches
the document.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from intake_support import Live
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

EXAMPLES_PER_MODE = 36


@pytest.mark.slow
def test_openapi_document_matches_the_server(live: Live) -> None:
    doc = httpx.get(f"{live.url}/api/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_url(f"{live.url}/api/openapi.json")
    calls = {"n": 0, "by_status": {}}
    auth = live.auth("sam")
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            admin = operation.path.startswith("/api/v1/admin")

            @given(case=strategy, with_token=st.booleans())
            @settings(
                max_examples=EXAMPLES_PER_MODE,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case, with_token: bool) -> None:
                headers = auth if with_token and admin else None  # noqa: B023 - used at once
                # Schema-valid proposals may still name unknown stations (422): the check that
                # "valid data is accepted" does not apply to a semantic refusal.
                response = case.call_and_validate(
                    headers=headers, timeout=30, excluded_checks=[positive_data_acceptance]
                )
                calls["n"] += 1
                by = calls["by_status"]
                by[response.status_code] = by.get(response.status_code, 0) + 1
                assert response.status_code < 500, (case.method, case.path, response.text[:500])

            try:
                check()
            except Unsatisfiable:
                # Nothing to make invalid (an operation without parameters or body).
                assert mode == GenerationMode.NEGATIVE, operation.label
    print("schemathesis:", calls)
    assert calls["n"] >= 1000, calls
    # The run exercised refusals and successes, not just one answer.
    assert {200, 400, 401, 404} <= set(calls["by_status"]), calls
