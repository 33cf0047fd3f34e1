"""
Operators for AssemblyAI transcripts: DeleteTranscriptOperator and PurgeTranscriptsOperator.

DAG files import this module, and the scheduler parses DAG files all day: keep module-level imports
to Airflow's base classes. The hook, the trigger and the purge machinery are imported where used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_assemblyai.validation import (
    check_audit_path,
    check_conn_id,
    check_positive_int,
    check_positive_seconds,
    check_purge_selection,
    check_rate_limit,
    is_rendered_nothing,
    is_template,
    nothing_rendered_error,
    parse_created_before,
    parse_dry_run,
    parse_max_deletions,
    parse_older_than,
    parse_purge_statuses,
    parse_transcript_ids,
    parse_when_known,
    validate_transcript_id,
)

if TYPE_CHECKING:
    from datetime import date, datetime, timedelta

    from airflow.providers.common.compat.sdk import Context, XComArg

    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
    from airflow_provider_assemblyai.models import Transcript

#: The most deletions in flight at once; the hook's async pool is sized to the concurrency asked for.
PURGE_MAX_CONCURRENCY = 100


class DeleteTranscriptOperator(BaseOperator):
    """
    Delete one AssemblyAI transcript, waiting first until it is terminal (completed or error).

    The deleted transcript, exactly as the API returned it, is pushed to XCom as ``return_value``.

    .. seealso:: README section "Operators and sensor".

    :param transcript_id: the transcript to delete (templated; surrounding whitespace is ignored).
        A render of nothing (``None``, ``'None'``, ``'null'``, blank: an upstream task that
        returned nothing) fails the task before any request, whatever ``missing_ok`` says.
    :param assemblyai_conn_id: the AssemblyAI connection id (templated).
    :param missing_ok: succeed with a warning (returning None) when the transcript does not exist
        in the connection's region, instead of failing with TranscriptNotFoundError.
    :param wait_for_completion: wait until a queued or processing transcript is terminal, then delete
        it; when False, try at once and fail with the API's error if it is still in progress.
    :param poll_interval: seconds between status checks while waiting.
    :param deferrable: wait in the triggerer (TranscriptStatusTrigger) instead of a worker slot.
    """

    template_fields: Sequence[str] = ("transcript_id", "assemblyai_conn_id")
    ui_color = "#f6e7ff"

    def __init__(
        self,
        *,
        transcript_id: str,
        assemblyai_conn_id: str = "assemblyai_default",
        missing_ok: bool = False,
        wait_for_completion: bool = True,
        poll_interval: float = 5.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.poll_interval = check_positive_seconds(poll_interval)
        if isinstance(transcript_id, str) and not is_template(transcript_id):
            validate_transcript_id(transcript_id)
        self.transcript_id = transcript_id
        self.assemblyai_conn_id = assemblyai_conn_id
        self.missing_ok = missing_ok
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> AssemblyAIHook:
        """The AssemblyAI hook of :attr:`assemblyai_conn_id`."""
        from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

        return AssemblyAIHook(assemblyai_conn_id=self.assemblyai_conn_id)

    def execute(self, context: Context) -> dict[str, Any] | None:
        """Check the rendered id, wait until the transcript is terminal if asked, then delete it."""
        from airflow_provider_assemblyai.exceptions import TranscriptNotFoundError

        transcript_id = self._checked_arguments()
        started = time.time()
        status: str | None = None
        try:
            if self.wait_for_completion:
                transcript = self.hook.get_transcript(transcript_id)
                if not transcript.status.is_terminal:
                    if self.deferrable:
                        self._defer(transcript_id, transcript.status.value, started)
                    transcript = self._poll_until_terminal(transcript)
                status = transcript.status.value
            return self._delete(transcript_id, status, started)
        except TranscriptNotFoundError as error:
            self._missing(transcript_id, error)
            return None

    def execute_complete(
        self, context: Context, event: dict[str, Any], started_at: float | None = None
    ) -> dict[str, Any] | None:
        """
        Resume after TranscriptStatusTrigger: delete on ``success``, raise on anything else.

        :param context: the task context.
        :param event: the trigger's payload: ``status``, ``transcript_id``, ``transcript_status``,
            ``error``, ``audio_duration``, ``message``; nothing is read back from the API to resume.
        :param started_at: when the task started (Unix time), for the duration in the log line.
        """
        from airflow_provider_assemblyai.exceptions import AssemblyAIError, TranscriptNotFoundError

        transcript_id = self._checked_arguments()
        if not isinstance(event, dict):
            raise AssemblyAIError(f"Transcript {transcript_id}: unexpected trigger event {event!r}")
        status, message = event.get("status"), event.get("message") or "no message"
        if status == "timeout":
            raise AssemblyAIError(
                f"Transcript {transcript_id} was not deleted: it was still "
                f"{event.get('transcript_status') or 'in progress'} when the task's execution_timeout "
                f"ran out ({message})"
            )
        if status != "success":
            raise AssemblyAIError(
                f"Transcript {transcript_id} was not deleted: the wait ended with {status!r} ({message})"
            )
        try:
            return self._delete(transcript_id, event.get("transcript_status"), started_at or time.time())
        except TranscriptNotFoundError as error:
            self._missing(transcript_id, error)
            return None

    def _checked_arguments(self) -> str:
        """Validate the rendered template fields before any request is sent."""
        check_conn_id(self.assemblyai_conn_id)
        return validate_transcript_id(self.transcript_id)

    def _defer(self, transcript_id: str, status: str, started: float) -> None:
        from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger

        timeout = self.execution_timeout
        end_time = started + timeout.total_seconds() if timeout is not None else None
        self.log.info(
            "Transcript %s is %s; deferring until it is completed or error (polling every %.1fs)",
            transcript_id,
            status,
            self.poll_interval,
        )
        self.defer(
            trigger=TranscriptStatusTrigger(
                transcript_id=transcript_id,
                assemblyai_conn_id=self.assemblyai_conn_id,
                target_statuses=("completed", "error"),
                failure_statuses=(),
                poll_interval=self.poll_interval,
                end_time=end_time,
            ),
            method_name="execute_complete",
            kwargs={"started_at": started},
        )

    def _poll_until_terminal(self, transcript: Transcript) -> Transcript:
        """Re-read the transcript every :attr:`poll_interval` until it is completed or error."""
        self.log.info(
            "Transcript %s is %s; waiting until it is completed or error (polling every %.1fs)",
            transcript.id,
            transcript.status.value,
            self.poll_interval,
        )
        while not transcript.status.is_terminal:
            time.sleep(self.poll_interval)
            transcript = self.hook.get_transcript(transcript.id)
        return transcript

    def _delete(self, transcript_id: str, status: str | None, started: float) -> dict[str, Any]:
        """Delete, log one line, and return the API's body verbatim."""
        deleted = self._delete_or_confirm(transcript_id)
        self.log.info(
            "Deleted transcript %s (region %s, status %s) in %.2fs",
            transcript_id,
            self.hook.region,
            status or deleted.status.value,
            time.time() - started,
        )
        return deleted.raw

    def _delete_or_confirm(self, transcript_id: str) -> Transcript:
        """
        Delete; if the answer was lost or unusable after every retry, check with a GET whether it worked.

        A DELETE that took effect but whose answer never arrived intact (5xx, a dropped connection, a
        truncated body) is reported as done, with the transcript as GET returns it (the same deleted
        shape), instead of as a failure. A definite refusal (4xx) is raised as it is.
        """
        from airflow_provider_assemblyai.exceptions import AssemblyAIError

        try:
            return self.hook.delete_transcript(transcript_id)
        except AssemblyAIError as error:
            if not _may_have_taken_effect(error):
                raise
            self.log.warning(
                "DELETE of transcript %s got no usable answer (%s); checking whether it took effect",
                transcript_id,
                error,
            )
            try:
                transcript = self.hook.get_transcript(transcript_id)
            except AssemblyAIError:
                raise error from None
            if not transcript.is_deleted:
                raise
            self.log.warning("Transcript %s is deleted: the DELETE did take effect", transcript_id)
            return transcript

    def _missing(self, transcript_id: str, error: Exception) -> None:
        """Apply ``missing_ok`` to a TranscriptNotFoundError."""
        if not self.missing_ok:
            raise error
        # The error names the connection and its region, and that transcripts live in one region.
        self.log.warning(
            "Transcript %s not found; nothing to delete (missing_ok=True): %s", transcript_id, error
        )
        return None


def _may_have_taken_effect(error: Exception) -> bool:
    """Whether a failed DELETE may still have deleted the transcript (no definite 4xx refusal)."""
    from airflow_provider_assemblyai.exceptions import AssemblyAIConfigError, AssemblyAITransportError

    if isinstance(error, AssemblyAIConfigError):
        return False
    if isinstance(error, AssemblyAITransportError):
        return error.request_sent
    status_code = getattr(error, "status_code", None)
    return status_code is None or status_code >= 500 or 200 <= status_code < 300


class PurgeTranscriptsOperator(BaseOperator):
    """
    Delete many transcripts concurrently: explicit ids, or every transcript older than a cutoff.

    A scan streams ``GET /v2/transcript`` (newest first) and deletes the transcripts created before
    the cutoff whose status is in ``statuses``. **The API only lists the last 90 days**: transcripts
    older than that are never found by a scan; delete them by id with ``transcript_ids``. Queued and
    processing transcripts are never deleted. Already-deleted ones are counted, not deleted again
    (the list shows them; explicit ids are read with one GET before their DELETE), so re-running
    after a crash finishes the job. Deletes run on the hook's shared async client with at most
    ``concurrency`` in flight, behind its rate limiter and its pool-wide pause on a 429.

    Returns (XCom ``return_value``) the summary: ``scanned``, ``matched``, ``deleted``,
    ``would_delete``, ``already_deleted``, ``not_found``, ``failed``, ``dry_run``, ``deleted_ids``,
    ``would_delete_ids``, ``failed_ids`` ({id: reason}), ``limit_reached``, ``scan_complete``,
    ``ids_truncated``, ``recovered``, ``recovered_ids``, ``audit_path``, ``audit_anchor``, ``error``.
    Counts are exact and ``matched`` = ``deleted`` + ``would_delete`` + ``already_deleted`` +
    ``not_found`` + ``failed``; the id lists keep the
    first 10,000. In a dry run nothing is deleted: the transcripts a real run would delete are
    counted in ``would_delete`` (``deleted`` is 0), the rest exactly as in a real run. When the
    task fails (a failed deletion with ``fail_on_error``, a bad key, a listing that failed), the
    same summary is pushed first under the XCom key ``purge_summary``.

    ``recovered`` counts apart from ``matched``: transcripts that an earlier attempt with the same
    ``audit_path`` (a killed try) deleted without recording it, found when this run checked that
    attempt's announced deletions with a GET, and recorded in the audit as that attempt's deletions.
    A scan that lists them again also counts them in ``already_deleted``, as any re-run does.
    ``audit_path`` is this attempt's folder; ``audit_anchor`` names its last part and SHA-256.

    The arguments a run may change are templated (``transcript_ids``, ``older_than``,
    ``created_before``, ``statuses``, ``max_deletions``, ``dry_run``): they are checked when the
    task is defined if they are plain values, and again once rendered, before any request. So one
    DAG can be triggered with ``{"dry_run": true}`` first and then for real, e.g.
    ``dry_run="{{ dag_run.conf.get('dry_run', False) }}"``. A template renders text: ``'True'`` and
    ``'False'`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``, any case) become a bool;
    ``'None'`` (and ``'null'``, or blank for the cutoffs) means "not given" for ``older_than``,
    ``created_before`` and ``max_deletions``; anything else that does not fit is refused, naming
    the argument and the value.

    .. seealso:: README section "Operators and sensor" (retention purges).

    :param assemblyai_conn_id: the AssemblyAI connection id (templated).
    :param transcript_ids: the ids to delete (templated; a list, e.g. an upstream task's XCom).
        Cannot be combined with ``older_than``/``created_before`` (GET gives no creation time). If
        it renders to nothing (``None``: an upstream task returned nothing), the task fails.
    :param older_than: scan, and delete transcripts created more than this long before the task
        runs (templated): a ``timedelta``, or an ISO 8601 duration such as ``'P30D'`` (30 days) or
        ``'PT12H'``; ``timedelta(0)`` or ``'P0D'``: all of them. Bare numbers are refused (days or
        seconds?), and so are months and years (no fixed length).
    :param created_before: scan, and delete transcripts created before this datetime or ISO 8601
        string (templated; naive values are UTC).
    :param statuses: the statuses to delete: ``completed`` and/or ``error`` (templated; a list, or
        text such as ``'completed,error'`` or ``"['error']"``).
    :param max_deletions: delete at most this many transcripts in one run; the rest is left for
        the next run (``limit_reached`` in the summary). Templated: a rendered ``'500'`` is 500,
        ``'None'`` is no cap.
    :param concurrency: requests in flight at most, 1 to 100.
    :param max_requests_per_second: client-side rate limit (the account allows about 66/s).
    :param dry_run: report what would be deleted, delete nothing (templated; stored as
        ``is_dry_run``, since ``dry_run`` is BaseOperator's own method).
    :param fail_on_error: fail the task (after finishing the rest) if any deletion failed for
        good; when False the task succeeds and the failures are in the summary.
    :param audit_path: an ObjectStoragePath URI (``file://``, ``s3://conn_id@bucket/...``,
        ``gs://``...) naming the audit folder (templated); a ``.jsonl`` suffix is dropped, so
        ``.../{{ ds }}.jsonl`` keeps the day's audit in ``.../<ds>/``. Each attempt writes its own
        folder of small JSON-lines parts, stored within seconds and never overwritten; every DELETE
        is announced in a stored part before it is sent, and a retry first settles the announced
        deletions a killed attempt could not record. Read and verify it with
        ``airflow_provider_assemblyai.audit.read_audit`` (README "PurgeTranscriptsOperator").
    """

    template_fields: Sequence[str] = (
        "transcript_ids",
        "older_than",
        "created_before",
        "statuses",
        "max_deletions",
        "is_dry_run",
        "audit_path",
        "assemblyai_conn_id",
    )
    ui_color = "#ffe9e3"

    #: Seconds between progress log lines.
    progress_interval: float = 10.0

    def __init__(
        self,
        *,
        assemblyai_conn_id: str = "assemblyai_default",
        transcript_ids: Sequence[str] | str | XComArg | None = None,
        older_than: timedelta | str | None = None,
        created_before: datetime | date | str | None = None,
        statuses: Sequence[str] | AbstractSet[str] | str = ("completed", "error"),
        max_deletions: int | str | None = None,
        concurrency: int = 8,
        max_requests_per_second: float | None = None,
        dry_run: bool | str = False,
        fail_on_error: bool = True,
        audit_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.assemblyai_conn_id = assemblyai_conn_id
        # Plain values are checked (and normalised) now; templates and XComArgs once rendered.
        self._by_ids = transcript_ids is not None
        self.older_than = parse_when_known(older_than, parse_older_than)
        check_purge_selection(transcript_ids, older_than, created_before)
        self.created_before = parse_when_known(created_before, parse_created_before)
        self.transcript_ids = (
            None if transcript_ids is None else parse_when_known(transcript_ids, parse_transcript_ids)
        )
        self.statuses = parse_when_known(statuses, parse_purge_statuses)
        self.max_deletions = parse_when_known(max_deletions, parse_max_deletions)
        # Not ``self.dry_run``: that is BaseOperator's own method (``airflow tasks test --dry-run``).
        self.is_dry_run = parse_when_known(dry_run, parse_dry_run)
        self.concurrency = check_positive_int(
            concurrency, argument="concurrency", maximum=PURGE_MAX_CONCURRENCY
        )
        self.max_requests_per_second = check_rate_limit(max_requests_per_second)
        self.fail_on_error = bool(fail_on_error)
        self.audit_path = audit_path

    @cached_property
    def hook(self) -> AssemblyAIHook:
        """The AssemblyAI hook of :attr:`assemblyai_conn_id`, with the rate limit."""
        from airflow_provider_assemblyai.hooks.assemblyai import ASYNC_POOL_SIZE, AssemblyAIHook

        return AssemblyAIHook(
            self.assemblyai_conn_id,
            max_requests_per_second=self.max_requests_per_second,
            async_pool_size=max(ASYNC_POOL_SIZE, self.concurrency),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate the rendered fields, run the purge, push the summary; fail if asked to."""
        from airflow_provider_assemblyai.exceptions import AssemblyAIError
        from airflow_provider_assemblyai.purge import PurgePlan, run_purge

        run = self._rendered_arguments()
        plan = PurgePlan(
            transcript_ids=run.transcript_ids,
            created_before=run.created_before,
            statuses=frozenset(run.statuses),  # type: ignore[arg-type]
            max_deletions=run.max_deletions,
            concurrency=self.concurrency,
            dry_run=run.dry_run,
            audit_path=check_audit_path(self.audit_path),
            audit_fields=_purge_audit_fields(context),
            progress_interval=self.progress_interval,
        )
        self.log.info(
            "Purging %s (statuses %s, concurrency %d, max %s/s%s)",
            f"{len(plan.transcript_ids)} transcript ids"
            if plan.transcript_ids is not None
            else f"transcripts created before {plan.created_before:%Y-%m-%dT%H:%M:%SZ}",
            "/".join(run.statuses),
            self.concurrency,
            self.max_requests_per_second or "unlimited",
            ", dry run" if plan.dry_run else "",
        )
        summary = run_purge(self.hook, plan, self.log)
        result = summary.to_dict()
        if summary.error is None and not (summary.failed and self.fail_on_error):
            return result
        context["ti"].xcom_push(key="purge_summary", value=result)
        examples = "; ".join(f"{tid}: {why}" for tid, why in list(summary.failed_ids.items())[:3])
        raise AssemblyAIError(
            f"Purge incomplete: {summary.error or 'some deletions failed'}. {summary.failed} of "
            f"{summary.matched} transcripts failed, {summary.deleted} deleted"
            + (f" (e.g. {examples})" if examples else "")
            + ". The summary is in XCom under 'purge_summary'; a re-run finishes the job."
        )

    def _rendered_arguments(self) -> _PurgeRun:
        """Check every rendered per-run argument (before any request) and resolve the cutoff."""
        from datetime import datetime, timezone

        transcript_ids = None
        if self._by_ids:
            if is_rendered_nothing(self.transcript_ids):
                raise nothing_rendered_error("transcript_ids", self.transcript_ids, "list of transcript ids")
            transcript_ids = parse_transcript_ids(self.transcript_ids)
        older_than = parse_older_than(self.older_than)
        created_before = parse_created_before(self.created_before)
        check_purge_selection(transcript_ids, older_than, created_before, rendered=True)
        if older_than is not None:
            created_before = datetime.now(timezone.utc) - older_than
        return _PurgeRun(
            transcript_ids=transcript_ids,
            created_before=created_before,
            statuses=parse_purge_statuses(self.statuses),
            max_deletions=parse_max_deletions(self.max_deletions),
            dry_run=parse_dry_run(self.is_dry_run),
        )


class _PurgeRun(NamedTuple):
    """The per-run arguments of a purge, rendered and checked."""

    transcript_ids: tuple[str, ...] | None
    created_before: datetime | None
    statuses: tuple[str, ...]
    max_deletions: int | None
    dry_run: bool


def _purge_audit_fields(context: Context) -> dict[str, str | int]:
    """dag_id, task_id and run_id (strings) and try_number (an integer) of the running task."""
    ti = context.get("ti")
    fields = {"dag_id": getattr(ti, "dag_id", None), "task_id": getattr(ti, "task_id", None)}
    fields["run_id"] = context.get("run_id") or getattr(ti, "run_id", None)
    audit: dict[str, str | int] = {key: str(value) for key, value in fields.items() if value is not None}
    try_number = getattr(ti, "try_number", None)
    if isinstance(try_number, int) and not isinstance(try_number, bool):
        audit["try_number"] = try_number
    return audit
