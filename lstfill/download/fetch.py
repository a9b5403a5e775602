"""The one fetcher every provider uses for file transfers.

A transfer streams into a hidden ``.<name>.part`` next to its target, resumes an interrupted GET
with an HTTP Range request, retries what is worth retrying (429, 5xx, timeouts, broken bodies)
with back-off, verifies size, checksum and that the file opens (:mod:`~lstfill.download.verify`),
and only then renames it into place: a target that exists is always complete. Messages and logs
name the URL without its query string (which may carry a signature) and never show headers, auth
or cookies (:mod:`~lstfill.download.http`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3.exceptions
from tqdm import tqdm

from lstfill.download.base import AuthError, DownloadError, FileRef
from lstfill.download.http import (
    body_excerpt,
    content_length,
    content_range_start,
    describe,
    guard_urllib3_logs,
    is_html,
    public_url,
    server_wait,
    user_agent,
)
from lstfill.download.verify import (
    KIND_LABELS,
    integrity_problem,
    is_complete,
    open_problem,
    resolve_kind,
)
from lstfill.io import write_fault

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt: rate limits and temporary server trouble."""

# Process-wide limits per provider name, shared by every Fetcher of that provider.
_LIMITS_LOCK = threading.Lock()
_SEMAPHORES: dict[str, threading.BoundedSemaphore] = {}
_LAST_START: dict[str, float] = {}


@dataclass(frozen=True)
class FetchPolicy:
    """How hard and how fast to fetch from one provider.

    `retries` further attempts after the first, waiting ``backoff_s * 2**attempt`` (at most
    `max_backoff_s`) between them; `timeout_s` for connecting and for each read; at most
    `concurrency` transfers at once and `min_interval_s` between request starts, per provider
    and process-wide (the first policy seen for a provider fixes its concurrency).
    """

    retries: int = 5
    backoff_s: float = 2.0
    max_backoff_s: float = 300.0
    timeout_s: float = 60.0
    concurrency: int = 4
    min_interval_s: float = 0.0
    progress: bool = True
    chunk_bytes: int = 1 << 20


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix.

    `wait` is the server's own wait (Retry-After), `keep_part` says the bytes written so far are
    good to resume from.
    """

    def __init__(self, reason: str, *, wait: float | None = None, keep_part: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.keep_part = keep_part


class _Restart(Exception):
    """The server cannot continue the partial file: start it over without Range."""


@dataclass(frozen=True)
class _Job:
    """One file's transfer: its reference, where it goes and how it is named in messages."""

    ref: FileRef
    target: Path
    part: Path
    url: str
    kind: str

    @property
    def resumable(self) -> bool:
        return self.ref.method.upper() == "GET"


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# --- the fetcher -------------------------------------------------------------------------------


class Fetcher:
    """Fetch FileRefs from one provider through one session (see the module docstring)."""

    def __init__(
        self,
        provider: str,
        session: requests.Session | None = None,
        policy: FetchPolicy | None = None,
        credential_hint: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        self.session = session if session is not None else requests.Session()
        self.policy = policy if policy is not None else FetchPolicy()
        self.credential_hint = credential_hint
        self._sleep = sleep
        agent = self.session.headers.get("User-Agent")
        if not (isinstance(agent, str) and agent.startswith("lstfill")):
            self.session.headers["User-Agent"] = user_agent()
        guard_urllib3_logs()

    # public ------------------------------------------------------------------------------------

    def fetch(self, ref: FileRef, dest: Path) -> Path:
        """Download `ref` to ``dest / ref.name`` unless it is already complete; return the path."""
        target = Path(dest) / ref.name
        if is_complete(target, ref):
            log.debug("%s: %s is already complete", self.provider, target)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        job = _Job(
            ref=ref,
            target=target,
            part=target.with_name(f".{target.name}.part"),
            url=public_url(ref.url),
            kind=resolve_kind(ref.kind, target.name),
        )
        started = time.monotonic()
        received = self._download(job)
        self._finish(job)
        self._log_done(job, received, time.monotonic() - started)
        return target

    def fetch_all(self, refs: Sequence[FileRef], dest: Path) -> list[Path]:
        """Fetch all `refs` concurrently; paths in the order of `refs`. If any fails, the others
        still finish (their files stay) and the first error, in order of `refs`, is raised."""
        refs = list(refs)
        if not refs:
            return []
        unique: dict[str, FileRef] = {}
        for ref in refs:  # one transfer per target: two would share one .part file
            unique.setdefault(ref.name, ref)
        workers = max(1, min(self.policy.concurrency, len(unique)))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"fetch-{self.provider}") as pool:
            futures = {name: pool.submit(self.fetch, ref, dest) for name, ref in unique.items()}
            wait_all(futures.values())
        errors = [exc for fut in futures.values() if (exc := fut.exception()) is not None]
        if errors:
            log.error("%s: %d of %d files failed", self.provider, len(errors), len(unique))
            raise errors[0]
        return [futures[ref.name].result() for ref in refs]

    # attempts ----------------------------------------------------------------------------------

    def _download(self, job: _Job) -> int:
        """Run attempts until the part holds an intact file; return the bytes received."""
        attempts = self.policy.retries + 1
        received = 0
        mismatched = False
        last, keep_part = "", False
        for attempt in range(attempts):
            try:
                received += self._attempt(job)
            except _Retryable as exc:
                last, keep_part = exc.reason, exc.keep_part and job.resumable
                self._before_retry(job, attempt, attempts, exc)
                continue
            except DownloadError:
                job.part.unlink(missing_ok=True)
                raise
            problem = integrity_problem(job.part, job.ref)
            if problem is None:
                return received
            job.part.unlink(missing_ok=True)
            if mismatched or attempt + 1 == attempts:
                raise DownloadError(f"{self._where(job)}: {problem}")
            mismatched, last, keep_part = True, problem, False
            log.warning("%s: %s; fetching it again from scratch", job.target.name, problem)
        if not keep_part:
            job.part.unlink(missing_ok=True)
        raise DownloadError(
            f"{self._where(job)}: failed after {attempts} attempt{'s' * (attempts != 1)}; "
            f"last error: {last}"
        )

    def _before_retry(self, job: _Job, attempt: int, attempts: int, exc: _Retryable) -> None:
        """Log and wait before the next attempt, if there is one."""
        if attempt + 1 >= attempts:
            return
        wait = exc.wait
        if wait is None:
            wait = self.policy.backoff_s * 2 ** min(attempt, 60)
        wait = min(wait, self.policy.max_backoff_s)
        log.warning(
            "%s: %s: %s; retry %d of %d in %.1f s",
            self.provider,
            job.target.name,
            exc.reason,
            attempt + 1,
            attempts - 1,
            wait,
        )
        self._sleep(wait)

    def _attempt(self, job: _Job) -> int:
        """One attempt: resume the part if possible, else start over; return bytes received."""
        part, ref = job.part, job.ref
        if not job.resumable:
            part.unlink(missing_ok=True)
        elif part.exists() and ref.size is not None:
            have = part.stat().st_size
            if have == ref.size:
                return 0  # a previous run got every byte but stopped before the rename
            if have > ref.size:
                part.unlink()
        try:
            return self._transfer(job, resume=job.resumable)
        except _Restart:
            part.unlink(missing_ok=True)
            return self._transfer(job, resume=False)

    def _transfer(self, job: _Job, resume: bool) -> int:
        """Send the request (with Range when resuming) and stream the body into the part."""
        offset = job.part.stat().st_size if resume and job.part.exists() else 0
        headers = {"Accept-Encoding": "identity", **(job.ref.headers or {})}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        with self._slot():
            response = self._send(job, headers)
            with response:
                offset = self._accept(job, response, offset)
                return self._stream(job, response, offset)

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        """Hold one of the provider's transfer slots and keep its request starts spaced."""
        with _LIMITS_LOCK:
            semaphore = _SEMAPHORES.setdefault(
                self.provider, threading.BoundedSemaphore(max(1, self.policy.concurrency))
            )
        with semaphore:
            self._throttle()
            yield

    def _throttle(self) -> None:
        """Wait until `min_interval_s` has passed since the provider's last request start."""
        interval = self.policy.min_interval_s
        if interval <= 0:
            return
        with _LIMITS_LOCK:
            now = time.monotonic()
            start = max(now, _LAST_START.get(self.provider, now - interval) + interval)
            _LAST_START[self.provider] = start
        if start > now:
            self._sleep(start - now)

    def _send(self, job: _Job, headers: dict[str, str]) -> requests.Response:
        timeout = self.policy.timeout_s
        log.debug("%s: %s %s", self.provider, job.ref.method, job.url)
        try:
            return self.session.request(
                job.ref.method,
                job.ref.url,
                json=job.ref.json,
                headers=headers,
                stream=True,
                timeout=(timeout, timeout),
                allow_redirects=True,
            )
        except requests.Timeout as exc:
            msg = f"timed out after {timeout:g} s ({describe(exc)})"
            raise _Retryable(msg, keep_part=True) from None
        except requests.ConnectionError as exc:
            raise _Retryable(f"connection failed ({describe(exc)})", keep_part=True) from None
        except requests.RequestException as exc:
            raise DownloadError(f"{self._where(job)}: request failed: {describe(exc)}") from None

    def _accept(self, job: _Job, response: requests.Response, offset: int) -> int:
        """Check the response's status and type; return the offset its body starts at."""
        status = response.status_code
        if status == 206:
            start = content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                if offset:
                    raise _Restart
                raise DownloadError(f"{self._where(job)}: unexpected partial content (HTTP 206)")
        elif 200 <= status < 300:
            if offset:
                log.debug("%s: server ignored Range; starting over", job.target.name)
            offset = 0
        elif status == 416 and offset:
            raise _Restart
        else:
            self._refuse(job, response)
        if is_html(response) and job.ref.kind != "none":
            raise DownloadError(
                f"{self._where(job)}: the server sent an HTML page instead of "
                f"{KIND_LABELS[job.kind]} (login or error page?)" + self._hint()
            )
        return offset

    def _refuse(self, job: _Job, response: requests.Response) -> None:
        """Raise the right error for a non-success status."""
        status = response.status_code
        what = f"HTTP {status} {response.reason or ''}".rstrip()
        if status in (401, 403):
            raise AuthError(
                f"{self.provider}: server refused the credentials (HTTP {status}) for "
                f"{job.url}; {self.credential_hint}".rstrip("; ")
            )
        if status in RETRY_STATUSES:
            raise _Retryable(what, wait=server_wait(response))
        body = body_excerpt(response, job.ref.url)
        raise DownloadError(f"{self._where(job)}: {what}" + (f": {body}" if body else ""))

    def _stream(self, job: _Job, response: requests.Response, offset: int) -> int:
        """Write the body to the part (appending after `offset`); return the bytes written."""
        length = content_length(response)
        written = 0
        bar = tqdm(
            total=None if length is None else offset + length,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=job.target.name,
            disable=None if self.policy.progress else True,
            leave=False,
        )
        try:
            with bar, job.part.open("ab" if offset else "wb") as fh:
                for chunk in response.iter_content(chunk_size=self.policy.chunk_bytes):
                    fh.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            msg = f"transfer broke after {offset + written} bytes ({describe(exc)})"
            raise _Retryable(msg, keep_part=True) from None
        except OSError as exc:
            fault = write_fault(exc, job.part)
            problem = fault.problem if fault else f"cannot write: {exc}"
            raise DownloadError(f"{self._where(job)}: {job.part}: {problem}") from None
        if length is not None and written < length:
            msg = f"body cut short: got {offset + written} of {offset + length} bytes"
            raise _Retryable(msg, keep_part=True)
        return written

    # finishing ---------------------------------------------------------------------------------

    def _finish(self, job: _Job) -> None:
        """Check the part opens as its kind, then rename it into place atomically."""
        problem = open_problem(job.part, job.kind)
        if problem:
            job.part.unlink(missing_ok=True)
            raise DownloadError(f"{self._where(job)}: {job.target.name} {problem}")
        os.replace(job.part, job.target)

    def _log_done(self, job: _Job, received: int, seconds: float) -> None:
        size = job.target.stat().st_size
        speed = received / seconds if seconds > 0 else 0.0
        log.info(
            "%s: fetched %s (%s in %.1f s, %s/s)",
            self.provider,
            job.target,
            _human(size),
            seconds,
            _human(speed),
        )

    def _where(self, job: _Job) -> str:
        return f"{self.provider}: {job.url} -> {job.target}"

    def _hint(self) -> str:
        return f"; {self.credential_hint}" if self.credential_hint else ""
