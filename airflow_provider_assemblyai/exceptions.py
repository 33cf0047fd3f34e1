"""Errors raised by the AssemblyAI provider. Shapes only: no I/O here."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class AssemblyAIError(AirflowException):
    """
    An AssemblyAI API call failed, or answered something the provider cannot use.

    :param message: what went wrong, in words a DAG author can act on (never the API key).
    :param status_code: the HTTP status, or None when no response arrived.
    :param api_error: the API's own ``error`` text (or a short snippet of a non-JSON body).
    :param method: the HTTP method of the failed call.
    :param path: the URL path of the failed call.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        api_error: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        # AirflowException declares a class-level HTTPStatus for Airflow's own API; ours is the API's.
        self.status_code = status_code  # type: ignore[assignment]
        self.api_error = api_error
        self.method = method
        self.path = path


class AssemblyAIConfigError(AssemblyAIError, ValueError):
    """The Airflow connection is misconfigured (missing key, unknown region, bad base_url, ...)."""


class AssemblyAIAuthError(AssemblyAIError):
    """The API rejected the key (401/403)."""


class TranscriptNotFoundError(AssemblyAIError):
    """The transcript does not exist in this region (404, or the API's 400 lookup error)."""


class AssemblyAIRateLimitError(AssemblyAIError):
    """The API still answered 429 Too Many Requests after every retry."""

    retry_after: float | None = None


class AssemblyAIServerError(AssemblyAIError):
    """The API still answered 5xx after every retry."""


class AssemblyAITransportError(AssemblyAIError):
    """No usable response: the connection failed, dropped or timed out (after every retry)."""

    #: False when the request certainly never reached the server (connect failure), so even a
    #: non-idempotent call may be retried.
    request_sent: bool = True


#: Errors that may go away on a later poll (after the hook's own retries gave up on them).
TRANSIENT_ERRORS = (AssemblyAIRateLimitError, AssemblyAIServerError, AssemblyAITransportError)


class TranscriptFailedError(AssemblyAIError, AirflowFailException):
    """
    The transcript reached a failure status (by default ``error``): the task fails without retries.

    ``api_error`` holds the API's error text; ``soft_fail=True`` turns it into a skip, in every mode.
    """
