"""
Admin endpoints under ``/_emulator/``, for a test driving an emulator that runs in another process.

Not part of AssemblyAI's API. Each region's port serves them (for its own region unless a body says
otherwise); they answer loopback clients only (403 otherwise, even on ``--host 0.0.0.0``), need no
API key, and are never rate limited, faulted or written to the request log (which they expose).

- ``POST /_emulator/transcripts``: create transcripts (what the CLI's ``seed`` calls). The body is
  one object (or a list of them) with :meth:`EmulatorState.create_transcript`'s arguments
  (``status``, ``created`` as ISO 8601, ``completes_in``, ``final_status``, ``audio_duration``,
  ``error``, ``deleted``), and optionally ``age_days`` (created that many days before the
  emulator's clock, instead of ``created``), ``region`` (default: this port's) and ``count``
  (default 1). Answers ``{"ids": [...]}`` in creation order.
- ``GET /_emulator/transcripts?status=&deleted=true|false``: ``{"ids": [...]}``, newest first.
- ``POST /_emulator/transcripts/{id}/finish``: ``{"in_seconds": s, "final_status": "completed"}``
  makes a queued or processing transcript reach its final status ``s`` seconds from now.
- ``GET /_emulator/requests?since=N``: ``{"requests": [...], "next": M}``, the request log of both
  regions from entry ``N`` on (pass ``next`` back to read only what is new).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_assemblyai.testing.clock import Clock
from airflow_provider_assemblyai.testing.state import EmulatorState

__all__ = ["ADMIN_PREFIX", "build_admin_app"]

ADMIN_PREFIX = "/_emulator/"
_CREATE_ARGS = frozenset(
    {"status", "created", "completes_in", "final_status", "audio_duration", "error", "deleted", "region"}
)


class _BadRequest(Exception):
    """An admin request that cannot be served: answered 400 with the message."""


def _create_specs(body: Any, clock: Clock, region: str) -> list[dict[str, Any]]:
    specs = body if isinstance(body, list) else [body]
    if not specs or not all(isinstance(spec, dict) for spec in specs):
        raise _BadRequest("expected a JSON object or a non-empty list of objects")
    out: list[dict[str, Any]] = []
    for spec in specs:
        unknown = set(spec) - _CREATE_ARGS - {"age_days", "count"}
        if unknown:
            expected = sorted(_CREATE_ARGS | {"age_days", "count"})
            raise _BadRequest(f"unknown field(s) {sorted(unknown)}; expected {expected}")
        count = spec.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _BadRequest(f"count must be an integer >= 1, got {count!r}")
        kwargs = {key: value for key, value in spec.items() if key != "count"}
        if "age_days" in kwargs:
            age = kwargs.pop("age_days")
            if isinstance(age, bool) or not isinstance(age, (int, float)) or not 0 <= age < 36_500:
                raise _BadRequest(f"age_days must be a number of days >= 0, got {age!r}")
            if kwargs.get("created") is not None:
                raise _BadRequest("give created or age_days, not both")
            kwargs["created"] = clock.now() - timedelta(days=age)
        elif kwargs.get("created") is not None:
            try:
                kwargs["created"] = datetime.fromisoformat(str(kwargs["created"]).replace("Z", "+00:00"))
            except ValueError:
                raise _BadRequest(f"created must be an ISO 8601 datetime, got {spec['created']!r}") from None
        kwargs.setdefault("region", region)
        out.extend([kwargs] * count)
    return out


def _record(record: Any) -> dict[str, Any]:
    fields = dataclasses.asdict(record)
    fields["time"] = record.time.isoformat()
    return fields


def build_admin_app(state: EmulatorState, region: str) -> Starlette:
    """
    The admin app of one region.

    :param state: the emulator's state.
    :param region: the region this port serves.
    """

    async def transcripts(request: Request) -> Response:
        if request.method == "GET":
            deleted = request.query_params.get("deleted")
            ids = state.ids(
                region,
                status=request.query_params.get("status"),
                deleted=None if deleted is None else deleted.lower() == "true",
            )
            return JSONResponse({"ids": ids})
        try:
            specs = _create_specs(await request.json(), state.clock, region)
            ids = [state.create_transcript(**kwargs) for kwargs in specs]
        except (TypeError, ValueError, KeyError) as error:  # a bad value for create_transcript
            raise _BadRequest(str(error.args[0] if error.args else error)) from None
        return JSONResponse({"ids": ids})

    async def finish(request: Request) -> Response:
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("in_seconds"), (int, float)):
            raise _BadRequest('expected {"in_seconds": <seconds>, "final_status": "completed"|"error"}')
        transcript_id = str(request.path_params["transcript_id"])
        try:
            state.finish_in(
                region, transcript_id, float(body["in_seconds"]), body.get("final_status", "completed")
            )
        except KeyError:
            return JSONResponse({"error": f"no transcript {transcript_id} in {region}"}, status_code=404)
        except ValueError as error:
            raise _BadRequest(str(error)) from None
        return JSONResponse(state.get(region, transcript_id))

    async def requests(request: Request) -> Response:
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            raise _BadRequest("since must be an integer") from None
        log = state.requests()
        return JSONResponse({"requests": [_record(r) for r in log[since:]], "next": len(log)})

    async def bad_request(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    return Starlette(
        routes=[
            Route(f"{ADMIN_PREFIX}transcripts", transcripts, methods=["GET", "POST"]),
            Route(f"{ADMIN_PREFIX}transcripts/{{transcript_id}}/finish", finish, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}requests", requests, methods=["GET"]),
        ],
        exception_handlers={_BadRequest: bad_request, ValueError: bad_request},
    )
