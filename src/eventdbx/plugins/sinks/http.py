"""The http sink (plugins.md §8.1): POSTs the stored wire JSON over a keep-alive pool, classifies answers.

It only delivers: retries, attempts and the circuit belong to the dispatcher.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Mapping
from http import HTTPStatus
from urllib.parse import urlsplit

from eventdbx import __version__
from eventdbx.clock import Clock, SystemClock
from eventdbx.errors import DeliveryError, PluginError
from eventdbx.plugins.backoff import parse_retry_after
from eventdbx.plugins.sink import DeliveryJob
from eventdbx.plugins.sinks.http_client import HttpAnswer, HttpClientError, HttpPool, Target

USER_AGENT = f"eventdbx/{__version__}"
RESERVED_HEADERS = frozenset(
    {
        "idempotency-key",
        "x-eventdbx-job-id",
        "x-eventdbx-event-id",
        "x-eventdbx-attempt",
        "x-eventdbx-replay",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
BODY_EXCERPT_CHARS = 256
# after the request line and the configured headers: job id (twice), event id, attempt, optional
# replay/signature lines, Content-Length, body
_POST = (
    b"%sIdempotency-Key: %d\r\nX-EventDBX-Job-Id: %d\r\nX-EventDBX-Event-Id: %d\r\n"
    b"X-EventDBX-Attempt: %d\r\n%sContent-Length: %d\r\n\r\n%s"
)
_FORBIDDEN_IN_HEADERS = frozenset("\r\n\0")


def normalize_endpoint(endpoint: str, *, https: bool = False) -> str:
    """The URL to call: the trimmed endpoint, given a scheme if it has none; `invalid endpoint '<e>'` otherwise."""
    text = endpoint.strip()
    url = (
        text
        if text.startswith(("http://", "https://"))
        else ("https://" if https else "http://") + text
    )
    try:
        parts = urlsplit(url)
        has_other_scheme = url.count("://") > 1
        valid = bool(text) and bool(parts.hostname) and not has_other_scheme
        valid = valid and not any(c.isspace() for c in url)
        _ = parts.port
    except ValueError:
        valid = False
    if not valid:
        raise PluginError(f"invalid endpoint '{endpoint}'")
    return url


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse configured headers that EventDBX sets itself."""
    for key, value in headers.items():
        if key.strip().lower() in RESERVED_HEADERS:
            raise PluginError(f"header '{key}' is set by EventDBX and cannot be configured")
        if not key.strip() or ":" in key or _FORBIDDEN_IN_HEADERS.intersection(key + value):
            raise PluginError(f"invalid header '{key}'")


def signing_key(secret: str) -> bytes:
    """The HMAC key: base64 of the text after `whsec_`, else the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode("utf-8")


def webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _reason(status: int, reason: str | None) -> str:
    if reason:
        return reason
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def failure_text(status: int, reason: str | None, body: bytes) -> str:
    """`http plugin request failed (<code> <reason>)` plus `: <body>` (trimmed, 256 chars, `…` if cut)."""
    text = f"http plugin request failed ({status} {_reason(status, reason)})"
    excerpt = body.decode("utf-8", errors="replace").strip()
    if not excerpt:
        return text
    if len(excerpt) > BODY_EXCERPT_CHARS:
        excerpt = excerpt[:BODY_EXCERPT_CHARS] + "…"
    return f"{text}: {excerpt}"


def classify_status(status: int) -> tuple[bool, bool]:
    """(retryable, endpoint_failure) for a non-2xx status: 408/429/5xx retry; 3xx and other 4xx are permanent."""
    if status in (408, 429) or status >= 500:
        return True, True
    if 300 <= status < 500:
        return False, False
    return True, True


class HttpSink:
    """Delivers jobs as HTTP POSTs to one endpoint over a keep-alive pool of `concurrency` connections."""

    def __init__(
        self,
        *,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        https: bool = False,
        secret: str | None = None,
        timeout_secs: float = 5.0,
        concurrency: int = 8,
        clock: Clock | None = None,
    ) -> None:
        self.url = normalize_endpoint(endpoint, https=https)
        self.headers = dict(headers or {})
        check_headers(self.headers)
        self.secret = secret
        self.timeout = float(timeout_secs)
        self._limit = max(concurrency, 1)
        self._clock: Clock = clock or SystemClock()
        self._pool: HttpPool | None = None
        self._base = self._base_headers()
        self._target = Target.parse(self.url)
        lines = "".join(f"{k}: {v}\r\n" for k, v in self._base.items())
        where = f"{self._target.path} HTTP/1.1\r\nHost: {self._target.host_header}\r\n{lines}"
        self._post_head = f"POST {where}".encode("latin-1")
        self._head_request = f"HEAD {where}\r\n".encode("latin-1")

    def _base_headers(self) -> dict[str, str]:
        base = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        configured = {k.lower() for k in self.headers}
        for key in list(base):
            if key.lower() in configured:
                del base[key]
        base.update(self.headers)
        return base

    def _pool_for_use(self) -> HttpPool:
        if self._pool is None:
            self._pool = HttpPool(self._target, limit=self._limit, connect_timeout=self.timeout)
        return self._pool

    def request_bytes(self, job: DeliveryJob) -> bytes:
        """The whole POST of one attempt: request line, configured and per-attempt headers, then the
        stored wire JSON as is (one bytes formatting: this runs for every delivery)."""
        extra = b"X-EventDBX-Replay: true\r\n" if job.replay else b""
        if self.secret is not None:
            extra += self._signature_lines(job)
        jid = job.job_id
        body = job.body
        return _POST % (
            self._post_head,
            jid,
            jid,
            job.event_id,
            job.attempt,
            extra,
            len(body),
            body,
        )

    def _signature_lines(self, job: DeliveryJob) -> bytes:
        """Standard Webhooks headers for this attempt (plugins.md §8.1 signing)."""
        assert self.secret is not None
        job_id = str(job.job_id)
        stamp = int(self._clock.time())
        signature = webhook_signature(self.secret, job_id, stamp, job.body)
        lines = f"webhook-id: {job_id}\r\nwebhook-timestamp: {stamp}\r\nwebhook-signature: {signature}\r\n"
        return lines.encode("latin-1")

    async def deliver(self, job: DeliveryJob) -> int | None:
        """POST the job's wire JSON; return the 2xx status or raise a classified DeliveryError.

        A connection closed before any answer (typically a keep-alive connection the server closed while
        idle) is retried once at once by the pool, within the same timeout.
        """
        answer = await self._exchange(self.request_bytes(job), head_only=False)
        if 200 <= answer.status < 300:
            return answer.status
        raise self._status_error(answer)

    async def _exchange(self, data: bytes, *, head_only: bool) -> HttpAnswer:
        pool = self._pool_for_use()
        try:
            async with asyncio.timeout(self.timeout):
                return await pool.request(data, head_only=head_only)
        except TimeoutError as exc:
            raise DeliveryError(
                f"http plugin request timed out after {_secs(self.timeout)}s", endpoint_failure=True
            ) from exc
        except HttpClientError as exc:
            raise DeliveryError(
                f"http plugin request failed: {_cause(exc)}", endpoint_failure=True
            ) from exc

    def _status_error(self, answer: HttpAnswer) -> DeliveryError:
        retryable, endpoint = classify_status(answer.status)
        retry_after = None
        if answer.status in (429, 503):
            retry_after = parse_retry_after(
                answer.headers.get("retry-after"), now=self._clock.time()
            )
        return DeliveryError(
            failure_text(answer.status, answer.reason, answer.body),
            retryable=retryable,
            retry_after=retry_after,
            endpoint_failure=endpoint,
            http_status=answer.status,
        )

    async def check_ready(self) -> None:
        """HEAD with the configured headers: 2xx, 405 or 501 mean ready."""
        answer = await self._exchange(self._head_request, head_only=True)
        status = answer.status
        if 200 <= status < 300 or status in (405, 501):
            return
        raise DeliveryError(
            f"http plugin readiness check failed ({status} {_reason(status, answer.reason)})",
            http_status=status,
        )

    async def aclose(self) -> None:
        """Close the pooled connections."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()


def _secs(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _cause(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
