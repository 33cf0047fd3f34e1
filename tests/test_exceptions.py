"""The provider's exception hierarchy and the attributes callers rely on."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_assemblyai.exceptions import (
    AssemblyAIAuthError,
    AssemblyAIConfigError,
    AssemblyAIError,
    AssemblyAIRateLimitError,
    AssemblyAIServerError,
    AssemblyAITransportError,
    TranscriptNotFoundError,
)

SUBCLASSES = [
    AssemblyAIConfigError,
    AssemblyAIAuthError,
    TranscriptNotFoundError,
    AssemblyAIRateLimitError,
    AssemblyAIServerError,
    AssemblyAITransportError,
]


def test_base_error_is_an_airflow_exception_with_context() -> None:
    error = AssemblyAIError(
        "AssemblyAI DELETE /v2/transcript/abc (us) failed with HTTP 400: bad",
        status_code=400,
        api_error="bad",
        method="DELETE",
        path="/v2/transcript/abc",
    )
    assert isinstance(error, AirflowException)
    assert (error.status_code, error.api_error, error.method, error.path) == (
        400,
        "bad",
        "DELETE",
        "/v2/transcript/abc",
    )
    assert str(error) == "AssemblyAI DELETE /v2/transcript/abc (us) failed with HTTP 400: bad"


def test_context_defaults_to_none() -> None:
    error = AssemblyAIError("no response")
    assert (error.status_code, error.api_error, error.method, error.path) == (None, None, None, None)


@pytest.mark.parametrize("cls", SUBCLASSES)
def test_every_error_is_an_assemblyai_and_airflow_exception(cls: type[AssemblyAIError]) -> None:
    error = cls("boom", status_code=418)
    assert isinstance(error, AssemblyAIError)
    assert isinstance(error, AirflowException)
    assert error.status_code == 418
    with pytest.raises(AssemblyAIError, match="boom"):
        raise error


def test_config_error_is_also_a_value_error() -> None:
    """Bad configuration is bad input: callers catching ValueError catch it too."""
    assert issubclass(AssemblyAIConfigError, ValueError)
    assert not issubclass(AssemblyAIAuthError, ValueError)


def test_rate_limit_and_transport_defaults() -> None:
    assert AssemblyAIRateLimitError("429").retry_after is None
    assert AssemblyAITransportError("dropped").request_sent is True


def test_specific_errors_are_distinct() -> None:
    """A not-found is never mistaken for an auth or server failure (and vice versa)."""
    for cls in SUBCLASSES:
        others = [other for other in SUBCLASSES if other is not cls]
        assert not any(isinstance(cls("x"), other) for other in others)
