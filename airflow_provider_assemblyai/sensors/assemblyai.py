"""
TranscriptSensor: wait until a transcript reaches a status (poke, reschedule or deferrable mode).

DAG files import this module, and the scheduler parses DAG files all day: module-level imports are
Airflow's base classes (through common-compat) and the provider's exception classes; the hook and
the trigger are imported where they are used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_assemblyai.exceptions import (
    AssemblyAIError,
    AssemblyAIRateLimitError,
    AssemblyAIServerError,
    AssemblyAITransportError,
    TranscriptFailedError,
)
from airflow_provider_assemblyai.validation import (
    check_positive_seconds,
    is_template,
    parse_status_sets,
    validate_transcript_id,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
    from airflow_provider_assemblyai.models import Transcript

#: Extra time the scheduler grants a deferred sensor beyond ``timeout`` before failing it itself:
#: the trigger's own deadline fires first; this is only the backstop for a triggerer that is down.
DEFERRAL_GRACE_SECONDS = 60.0


class TranscriptSensor(BaseSensorOperator):
    """
    Wait until a transcript reaches one of ``target_statuses``; fail on one of ``failure_statuses``.

    Returns ``{"transcript_id", "status", "audio_duration", "error"}`` (pushed to XCom). A failure
    status raises :class:`TranscriptFailedError` (no retries) naming the transcript and the API's
    error text. Running out of ``timeout`` raises ``AirflowSensorTimeout``; with ``soft_fail=True``
    the task is skipped instead, in poke, reschedule and deferrable modes alike. Rate limits, 5xx and
    dropped connections that outlast the hook's retries count as "not yet" and are polled again.

    In deferrable mode the sensor pokes once and, if the transcript is not done, frees the worker
    slot and waits in the triggerer (:class:`TranscriptStatusTrigger`) until ``now + timeout``, an
    absolute deadline that a triggerer restart does not extend, polling every ``poke_interval``.
    After deferral, Airflow's ``soft_fail`` handling also turns any other error into a skip.

    .. seealso:: README section "Operators and sensor".

    :param transcript_id: the transcript to wait for (templated).
    :param assemblyai_conn_id: the Airflow connection id (templated).
    :param target_statuses: statuses that end the wait successfully (default ``completed``).
    :param failure_statuses: statuses that fail the task (default ``error``); disjoint from the targets.
    :param deferrable: wait in the triggerer instead of a worker slot (default
        ``[operators] default_deferrable``).
    :param kwargs: BaseSensorOperator arguments (``poke_interval``, ``timeout``, ``mode``,
        ``soft_fail``, ...). ``poke_interval`` and ``timeout`` must be positive.
    """

    template_fields: Sequence[str] = ("transcript_id", "assemblyai_conn_id")
    ui_color = "#fbe9d9"

    def __init__(
        self,
        *,
        transcript_id: str,
        assemblyai_conn_id: str = "assemblyai_default",
        target_statuses: Sequence[str] = ("completed",),
        failure_statuses: Sequence[str] = ("error",),
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        if "poke_interval" in kwargs:
            check_positive_seconds(kwargs["poke_interval"], argument="poke_interval", allow_timedelta=True)
        if kwargs.get("timeout") is not None:
            check_positive_seconds(kwargs["timeout"], argument="timeout", allow_timedelta=True)
        target_set, failure_set = parse_status_sets(target_statuses, failure_statuses)
        targets, failures = [s.value for s in target_set], [s.value for s in failure_set]
        if isinstance(transcript_id, str) and not is_template(transcript_id):
            validate_transcript_id(transcript_id)
        super().__init__(**kwargs)
        self.transcript_id = transcript_id
        self.assemblyai_conn_id = assemblyai_conn_id
        self.target_statuses = targets
        self.failure_statuses = failures
        self.deferrable = deferrable
        # Checked again after BaseSensorOperator applied it: the [sensors] default_timeout may be 0.
        check_positive_seconds(self.timeout, argument="timeout", allow_timedelta=True)

    @cached_property
    def hook(self) -> AssemblyAIHook:
        """The AssemblyAI hook for ``assemblyai_conn_id``."""
        from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

        return AssemblyAIHook(self.assemblyai_conn_id)

    def _summary(self, transcript: Transcript) -> dict[str, Any]:
        return {
            "transcript_id": transcript.id,
            "status": transcript.status.value,
            "audio_duration": transcript.audio_duration,
            "error": transcript.error,
        }

    @staticmethod
    def _failure(transcript_id: str, message: str, api_error: str | None) -> TranscriptFailedError:
        return TranscriptFailedError(
            message, api_error=api_error, method="GET", path=f"/v2/transcript/{transcript_id}"
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """
        Check the transcript once with the sync hook.

        :param context: the task context.
        """
        transcript_id = validate_transcript_id(self.transcript_id)
        try:
            transcript = self.hook.get_transcript(transcript_id)
        except (AssemblyAIRateLimitError, AssemblyAIServerError, AssemblyAITransportError) as error:
            self.log.warning("Could not check transcript %s, will poke again: %s", transcript_id, error)
            return False
        status = transcript.status.value
        if status in self.target_statuses:
            self.log.info("Transcript %s is %s", transcript_id, status)
            return PokeReturnValue(is_done=True, xcom_value=self._summary(transcript))
        if status in self.failure_statuses:
            error_text = transcript.error or "the API gave no error text"
            raise self._failure(
                transcript_id,
                f"Transcript {transcript_id} ended with status {status!r}: {error_text}",
                transcript.error,
            )
        self.log.info("Transcript %s is %s; waiting for %s", transcript_id, status, self.target_statuses)
        return False

    def execute(self, context: Context) -> Any:
        """
        Poke (or reschedule) until done; in deferrable mode poke once, then defer to the triggerer.

        :param context: the task context.
        """
        if not self.deferrable:
            return super().execute(context)
        try:
            result = self.poke(context)
        except TranscriptFailedError as error:
            if self.soft_fail:
                raise AirflowSkipException(f"Skipping (soft_fail): {error}") from error
            raise
        if isinstance(result, PokeReturnValue):
            return result.xcom_value
        from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger, utc_iso

        end_time = time.time() + self.timeout
        self.log.info(
            "Deferring: waiting in the triggerer for transcript %s until %s",
            self.transcript_id,
            utc_iso(end_time),
        )
        self.defer(
            trigger=TranscriptStatusTrigger(
                transcript_id=self.transcript_id,
                assemblyai_conn_id=self.assemblyai_conn_id,
                target_statuses=self.target_statuses,
                failure_statuses=self.failure_statuses,
                poll_interval=self.poke_interval,
                end_time=end_time,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + self.poke_interval + DEFERRAL_GRACE_SECONDS),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """
        Resume after the trigger: return the summary on success, raise on anything else.

        The event carries everything needed (``transcript_status``, ``error``, ``audio_duration``):
        no request is made here.

        :param context: the task context.
        :param event: the trigger's event payload.
        """
        if not isinstance(event, dict):
            raise AssemblyAIError(f"TranscriptSensor resumed without a trigger event (got {event!r})")
        status, message = event.get("status"), str(event.get("message") or "no message")
        transcript_id = str(event.get("transcript_id") or self.transcript_id)
        if status == "success":
            self.log.info("%s", message)
            return {
                "transcript_id": transcript_id,
                "status": event.get("transcript_status"),
                "audio_duration": event.get("audio_duration"),
                "error": event.get("error"),
            }
        if status == "failure":
            raise self._failure(transcript_id, message, event.get("error"))
        if status == "timeout":
            if self.soft_fail:
                raise AirflowSkipException(f"Skipping (soft_fail): {message}")
            raise AirflowSensorTimeout(message)
        raise AssemblyAIError(f"TranscriptSensor failed ({status}): {message}")
