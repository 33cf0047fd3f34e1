"""In-memory emulator state: transcripts per region, list index, seeding, knobs and request log.

Pure logic, no I/O. Every public method is thread-safe (one re-entrant lock).
"""

from __future__ import annotations

import random
import threading
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from airflow_provider_assemblyai.testing.clock import Clock, RealClock, to_utc
from airflow_provider_assemblyai.testing.config import EmulatorConfig
from airflow_provider_assemblyai.testing.faults import FaultBook
from airflow_provider_assemblyai.testing.rate_limit import TokenBucket
from airflow_provider_assemblyai.testing.records import (
    STATUSES,
    TranscriptRecord,
    download_error,
    micros,
    render_list_item,
    render_transcript,
    validate_options,
)

__all__ = [
    "LOOKUP_ERROR",
    "REGIONS",
    "ApiError",
    "EmulatorConfig",
    "EmulatorState",
    "RequestRecord",
]

REGIONS: tuple[str, ...] = ("us", "eu")
LOOKUP_ERROR = "Transcript lookup error, transcript id not found"
_SEED_STATUSES: frozenset[str] = frozenset({*STATUSES, "deleted"})


class ApiError(Exception):
    """An API-level error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RequestRecord:
    """One served request. The API key itself is never stored."""

    time: datetime
    region: str
    method: str
    path: str
    query: str
    status: int | None
    key_matched: bool
    fault: str | None
    elapsed_ms: float


@dataclass
class _RegionStore:
    """Transcripts of one region plus a sorted (oldest-first) index and a position map."""

    records: dict[str, TranscriptRecord] = field(default_factory=dict)
    keys: list[tuple[int, int]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    pos: dict[str, int] = field(default_factory=dict)
    dirty: bool = False

    def insert(self, rec: TranscriptRecord) -> None:
        self.records[rec.id] = rec
        key = rec.sort_key
        if not self.keys or key > self.keys[-1]:
            self.keys.append(key)
            self.order.append(rec.id)
            if not self.dirty:
                self.pos[rec.id] = len(self.order) - 1
            return
        idx = bisect_left(self.keys, key)
        self.keys.insert(idx, key)
        self.order.insert(idx, rec.id)
        self.dirty = True

    def bulk_insert(self, recs: Sequence[TranscriptRecord]) -> None:
        for rec in recs:
            self.records[rec.id] = rec
        pairs = sorted([*zip(self.keys, self.order, strict=True), *((r.sort_key, r.id) for r in recs)])
        self.keys = [k for k, _ in pairs]
        self.order = [i for _, i in pairs]
        self.dirty = True

    def position(self, transcript_id: str) -> int:
        if self.dirty:
            self.pos = {tid: i for i, tid in enumerate(self.order)}
            self.dirty = False
        return self.pos[transcript_id]


class EmulatorState:
    """All emulator state shared by the regional apps."""

    def __init__(
        self,
        api_keys: Sequence[str] = ("test-key",),
        config: EmulatorConfig | None = None,
        clock: Clock | None = None,
        regions: Sequence[str] = REGIONS,
    ) -> None:
        if isinstance(api_keys, str):
            api_keys = (api_keys,)
        self._lock = threading.RLock()
        self._keys: frozenset[str] = frozenset(api_keys)
        self.clock: Clock = clock if clock is not None else RealClock()
        self.regions: tuple[str, ...] = tuple(regions)
        self._defaults = replace(config) if config is not None else EmulatorConfig()
        self.faults = FaultBook(self._defaults.seed)
        self._generation = 0
        self._init_runtime()

    # ----------------------------------------------------------------- setup / knobs
    def _init_runtime(self) -> None:
        cfg = replace(self._defaults)
        self.config = cfg
        self._stores: dict[str, _RegionStore] = {r: _RegionStore() for r in self.regions}
        self._rng = random.Random(cfg.seed)
        self._latency_rng = random.Random(cfg.seed)
        self._seq = 0
        self._log: list[RequestRecord] = []
        self._counters: Counter[str] = Counter()
        self._bucket: TokenBucket | None = None
        self._set_bucket(cfg.rate_limit)

    def _set_bucket(self, rate_limit: tuple[int, float] | None) -> None:
        self.config.rate_limit = rate_limit
        if rate_limit is None:
            self._bucket = None
        else:
            self._bucket = TokenBucket(rate_limit[0], rate_limit[1], self._seconds())

    def _seconds(self) -> float:
        return self.clock.now().timestamp()

    def reset(self) -> None:
        """Forget transcripts, log, counters and faults; restore the constructor's knobs."""
        with self._lock:
            self._generation += 1
            self._init_runtime()
            self.faults.clear(seed=self._defaults.seed)

    def configure(self, **changes: Any) -> None:
        """Change knobs at runtime, e.g. ``configure(error_rate=0.2, latency_ms=50)``."""
        with self._lock:
            unknown = set(changes) - (set(EmulatorConfig.__dataclass_fields__) - {"seed"})
            if unknown:
                raise TypeError(f"unknown setting(s): {sorted(unknown)}")
            has_rate_limit = "rate_limit" in changes
            rate_limit = changes.pop("rate_limit", None)
            self.config = replace(self.config, **changes)
            if has_rate_limit:
                self._set_bucket(rate_limit)

    def set_rate_limit(self, requests: int | None, per_seconds: float = 300.0) -> None:
        """Install a fresh token bucket (``None`` disables rate limiting)."""
        with self._lock:
            self._set_bucket(None if requests is None else (requests, per_seconds))

    # ----------------------------------------------------------------- per-request checks
    def key_matches(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header value is one of the configured keys."""
        return header is not None and header in self._keys

    def take_rate_token(self) -> int | None:
        """None if the request may proceed, else the Retry-After seconds for a 429."""
        with self._lock:
            bucket = self._bucket
        return None if bucket is None else bucket.take(self._seconds())

    def latency_seconds(self) -> float:
        """A per-request delay drawn from the latency knobs."""
        with self._lock:
            base, jitter = self.config.latency_ms, self.config.latency_jitter_ms
            if jitter:
                base += self._latency_rng.uniform(-jitter, jitter)
        return max(0.0, base) / 1000.0

    # ----------------------------------------------------------------- helpers
    def _store(self, region: str) -> _RegionStore:
        try:
            return self._stores[region]
        except KeyError:
            raise KeyError(f"unknown region {region!r}; expected one of {self.regions}") from None

    def _new_id(self, rng: random.Random) -> str:
        while True:
            tid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if all(tid not in s.records for s in self._stores.values()):
                return tid

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _lookup(self, region: str, transcript_id: str) -> TranscriptRecord:
        rec = self._store(region).records.get(transcript_id)
        if rec is None:
            raise ApiError(400, LOOKUP_ERROR)
        return rec

    # ----------------------------------------------------------------- API operations
    def api_create(self, region: str, body: Any) -> dict[str, Any]:
        """``POST /v2/transcript``."""
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        audio_url = body.get("audio_url")
        if not isinstance(audio_url, str) or not audio_url.strip():
            raise ApiError(400, "audio_url must be a String")
        try:
            options = validate_options(body)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        with self._lock:
            cfg = self.config
            now = self.clock.now()
            failed = cfg.error_rate > 0 and self._rng.random() < cfg.error_rate
            processing_at = now + timedelta(seconds=cfg.queued_seconds)
            rec = TranscriptRecord(
                id=self._new_id(self._rng),
                region=region,
                seq=self._next_seq(),
                created=now,
                audio_url=audio_url,
                processing_at=processing_at,
                done_at=processing_at + timedelta(seconds=cfg.processing_seconds),
                final_status="error" if failed else "completed",
                error=download_error(audio_url) if failed else None,
                audio_duration=None if failed else self._rng.randint(5, 1800),
                options=options,
            )
            self._store(region).insert(rec)
            self._counters["created"] += 1
            return render_transcript(rec, now)

    def api_get(self, region: str, transcript_id: str) -> dict[str, Any]:
        """``GET /v2/transcript/{id}``."""
        with self._lock:
            return render_transcript(self._lookup(region, transcript_id), self.clock.now())

    def api_delete(self, region: str, transcript_id: str) -> dict[str, Any]:
        """``DELETE /v2/transcript/{id}``."""
        with self._lock:
            rec = self._lookup(region, transcript_id)
            now = self.clock.now()
            if rec.deleted_at is None:
                status = rec.status_at(now)
                if status in ("queued", "processing") and not self.config.allow_delete_in_progress:
                    raise ApiError(
                        400,
                        f"Transcript {transcript_id} is still {status}; "
                        "it can only be deleted once completed or error",
                    )
                rec.deleted_at = now
                self._counters["deleted"] += 1
            return render_transcript(rec, now)

    def api_list(self, region: str, params: Mapping[str, str], base_url: str) -> dict[str, Any]:
        """``GET /v2/transcript``: newest first, filtered, paged with before_id/after_id.

        Absolute links name ``base_url`` (the serving region's), or ``config.link_base_url``.
        """
        raw_limit = params.get("limit", "10")
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ApiError(400, "limit must be an Integer") from None
        if not 1 <= limit <= 200:
            raise ApiError(400, "limit must be between 1 and 200")
        status = params.get("status")
        if status is not None and status not in STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
        created_on_raw = params.get("created_on")
        created_on: date | None = None
        if created_on_raw is not None:
            try:
                created_on = date.fromisoformat(created_on_raw)
            except ValueError:
                raise ApiError(400, "created_on must be a date formatted as YYYY-MM-DD") from None
        before_id, after_id = params.get("before_id"), params.get("after_id")
        with self._lock:
            base_url = self.config.link_base_url or base_url
            store = self._store(region)
            now = self.clock.now()
            lo_bound = 0
            retention = self.config.list_retention_days
            if retention is not None:
                lo_bound = bisect_left(store.keys, (micros(now - timedelta(days=retention)), -1))
            if created_on is not None:
                day = datetime(created_on.year, created_on.month, created_on.day, tzinfo=timezone.utc)
                lo_bound = max(lo_bound, bisect_left(store.keys, (micros(day), -1)))
                hi_bound = bisect_left(store.keys, (micros(day + timedelta(days=1)), -1))
            else:
                hi_bound = len(store.order)
            before_pos = self._cursor(store, before_id)
            after_pos = self._cursor(store, after_id)
            if before_pos is not None and after_pos is not None and after_pos <= before_pos:
                raise ApiError(400, "'after_id' must be a newer transcript than 'before_id'")
            hi = hi_bound if before_pos is None else min(hi_bound, before_pos)
            lo = lo_bound if after_pos is None else max(lo_bound, after_pos + 1)

            def matches(i: int) -> bool:
                return status is None or store.records[store.order[i]].status_at(now) == status

            picked: list[int] = []
            if after_pos is not None and before_pos is None:
                i = lo
                while i < hi and len(picked) < limit:
                    if matches(i):
                        picked.append(i)
                    i += 1
                picked.reverse()
            else:
                i = hi - 1
                while i >= lo and len(picked) < limit:
                    if matches(i):
                        picked.append(i)
                    i -= 1
            has_older = bool(picked) and any(matches(j) for j in range(picked[-1] - 1, lo_bound - 1, -1))
            items = [render_list_item(store.records[store.order[i]], now, base_url) for i in picked]

        common: list[tuple[str, str]] = [("limit", str(limit))]
        if status is not None:
            common.append(("status", status))
        if created_on_raw is not None:
            common.append(("created_on", created_on_raw))
        current = list(common)
        if before_id is not None:
            current.append(("before_id", before_id))
        if after_id is not None:
            current.append(("after_id", after_id))

        def url(query: list[tuple[str, str]]) -> str:
            return f"{base_url}/v2/transcript?{urlencode(query)}"

        page_details = {
            "limit": limit,
            "result_count": len(items),
            "current_url": url(current),
            "prev_url": url([*common, ("before_id", items[-1]["id"])]) if has_older else None,
            "next_url": url([*common, ("after_id", items[0]["id"])]) if items else None,
        }
        return {"page_details": page_details, "transcripts": items}

    @staticmethod
    def _cursor(store: _RegionStore, transcript_id: str | None) -> int | None:
        if transcript_id is None:
            return None
        if transcript_id not in store.records:
            raise ApiError(400, LOOKUP_ERROR)
        return store.position(transcript_id)

    # ----------------------------------------------------------------- admin endpoint
    # ----------------------------------------------------------------- Python-side setup
    def create_transcript(
        self,
        region: str = "us",
        *,
        status: str = "completed",
        created: datetime | None = None,
        audio_url: str | None = None,
        audio_duration: int | None = None,
        completes_in: float | None = None,
        final_status: str = "completed",
        error: str | None = None,
        deleted: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> str:
        """Insert one transcript in a given state; return its id.

        ``status`` queued/processing stays put unless ``completes_in`` seconds are given, after which
        it turns ``final_status``. ``deleted=True`` stores it already deleted.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        if final_status not in ("completed", "error"):
            raise ValueError("final_status must be 'completed' or 'error'")
        with self._lock:
            now = self.clock.now()
            created_at = to_utc(created) if created is not None else now
            rec = self._make_record(self._rng, region, status, created_at, now, audio_url, audio_duration)
            if status in ("queued", "processing") and completes_in is not None:
                rec.done_at = now + timedelta(seconds=completes_in)
                rec.final_status = final_status
                if status == "queued":
                    rec.processing_at = now + timedelta(seconds=completes_in / 2)
            if rec.final_status == "error":
                rec.error = error or download_error(rec.audio_url)
                rec.audio_duration = None
            rec.options = dict(options or {})
            if deleted:
                rec.deleted_at = max(now, created_at)
            self._store(region).insert(rec)
            return rec.id

    def _make_record(
        self,
        rng: random.Random,
        region: str,
        status: str,
        created: datetime,
        now: datetime,
        audio_url: str | None,
        audio_duration: int | None,
    ) -> TranscriptRecord:
        seq = self._next_seq()
        url = audio_url or f"https://assembly.ai/emulator/audio-{seq:06d}.mp3"
        if status in ("completed", "error"):
            done = created + timedelta(seconds=rng.uniform(3.0, 90.0))
            done = max(created, min(done, now))
            processing_at: datetime | None = created
            done_at: datetime | None = done
        else:
            processing_at = created if status == "processing" else None
            done_at = None
        return TranscriptRecord(
            id=self._new_id(rng),
            region=region,
            seq=seq,
            created=created,
            audio_url=url,
            processing_at=processing_at,
            done_at=done_at,
            final_status="error" if status == "error" else "completed",
            audio_duration=audio_duration if audio_duration is not None else rng.randint(5, 3600),
        )

    def seed(
        self,
        n: int,
        region: str = "us",
        *,
        statuses: Mapping[str, float] | Sequence[str] | None = None,
        span: timedelta = timedelta(days=60),
        now: datetime | None = None,
        random_seed: int | None = None,
    ) -> list[str]:
        """Insert ``n`` transcripts created over the last ``span``; return their ids (newest first).

        ``statuses`` is a weight map (e.g. ``{"completed": 0.8, "error": 0.1, "deleted": 0.1}``) or a
        list cycled in order. Deterministic for a given ``random_seed`` (or the emulator seed).
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        pattern = self._status_pattern(statuses)
        with self._lock:
            rng = random.Random(random_seed) if random_seed is not None else self._rng
            clock_now = self.clock.now()
            anchor = to_utc(now) if now is not None else clock_now
            span_s = span.total_seconds()
            recs: list[TranscriptRecord] = []
            for i in range(n):
                st = pattern(rng, i)
                created = anchor - timedelta(seconds=rng.uniform(0.0, span_s))
                rec = self._make_record(
                    rng, region, "completed" if st == "deleted" else st, created, anchor, None, None
                )
                if rec.final_status == "error":
                    rec.error = download_error(rec.audio_url)
                    rec.audio_duration = None
                if st == "deleted":
                    rec.deleted_at = rec.done_at
                recs.append(rec)
            self._store(region).bulk_insert(recs)
            recs.sort(key=lambda r: r.sort_key, reverse=True)
            return [r.id for r in recs]

    @staticmethod
    def _status_pattern(
        statuses: Mapping[str, float] | Sequence[str] | None,
    ) -> Callable[[random.Random, int], str]:
        if statuses is None:
            statuses = {"completed": 0.9, "error": 0.1}
        if isinstance(statuses, str):
            statuses = [statuses]
        names = list(statuses)
        bad = set(names) - _SEED_STATUSES
        if bad or not names:
            raise ValueError(f"statuses must be taken from {sorted(_SEED_STATUSES)}")
        if isinstance(statuses, Mapping):
            weights = [float(statuses[s]) for s in names]
            if any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError("status weights must be >= 0 with a positive sum")

            def weighted(rng: random.Random, _i: int) -> str:
                return rng.choices(names, weights)[0]

            return weighted

        def cycled(_rng: random.Random, i: int) -> str:
            return names[i % len(names)]

        return cycled

    # ----------------------------------------------------------------- inspection
    def get(self, region: str, transcript_id: str) -> dict[str, Any]:
        """The transcript body as GET would return it now (KeyError if unknown)."""
        with self._lock:
            rec = self._store(region).records.get(transcript_id)
            if rec is None:
                raise KeyError(transcript_id)
            return render_transcript(rec, self.clock.now())

    def is_deleted(self, region: str, transcript_id: str) -> bool:
        """Whether the transcript was deleted (KeyError if unknown in that region)."""
        with self._lock:
            rec = self._store(region).records.get(transcript_id)
            if rec is None:
                raise KeyError(transcript_id)
            return rec.deleted_at is not None

    def ids(self, region: str = "us", status: str | None = None, deleted: bool | None = None) -> list[str]:
        """Ids in a region, newest first, optionally filtered by current status / deletion."""
        with self._lock:
            store = self._store(region)
            now = self.clock.now()
            out: list[str] = []
            for tid in reversed(store.order):
                rec = store.records[tid]
                if status is not None and rec.status_at(now) != status:
                    continue
                if deleted is not None and (rec.deleted_at is not None) != deleted:
                    continue
                out.append(tid)
            return out

    # ----------------------------------------------------------------- request log
    @property
    def generation(self) -> int:
        """Bumped by every reset(); requests that started before a reset are not logged."""
        return self._generation

    def record_request(self, record: RequestRecord, generation: int | None = None) -> None:
        """Append a request to the log and update the counters."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            self._log.append(record)
            self._counters["requests"] += 1
            if record.status is not None:
                self._counters[f"status_{record.status}"] += 1
            if not record.key_matched and record.status == 401:
                self._counters["unauthorized"] += 1
            if record.fault is not None:
                self._counters["faults"] += 1
            elif record.status == 429:
                self._counters["rate_limited"] += 1

    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log."""
        with self._lock:
            return list(self._log)

    def counters(self) -> dict[str, int]:
        """A snapshot of the counters."""
        with self._lock:
            return dict(self._counters)

    # ----------------------------------------------------------------- admin (testing/admin.py)
    def finish_in(
        self, region: str, transcript_id: str, seconds: float, final_status: str = "completed"
    ) -> None:
        """Make a queued or processing transcript end in ``final_status`` ``seconds`` from now.

        Raises KeyError for an unknown id and ValueError for a finished one or a bad argument.
        """
        if final_status not in ("completed", "error"):
            raise ValueError("final_status must be 'completed' or 'error'")
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            rec = self._store(region).records.get(transcript_id)
            if rec is None:
                raise KeyError(transcript_id)
            now = self.clock.now()
            status = rec.status_at(now)
            if rec.deleted_at is not None or status not in ("queued", "processing"):
                raise ValueError(f"transcript {transcript_id} is already {status}")
            rec.processing_at = rec.processing_at if status == "processing" else now
            rec.done_at = now + timedelta(seconds=seconds)
            rec.final_status = final_status
            if final_status == "error":
                rec.error = rec.error or download_error(rec.audio_url)
                rec.audio_duration = None
