"""``VendorHTTP``: the one way a plugin talks to its vendor.

It wraps an ``httpx.Client`` and, for every request: spends the connection's rate budget
(deferring the job instead of sleeping when a worker is over it), opens the audit span with
the write id, dedup key and redacted payload, maps transport failures and HTTP statuses to the
typed errors of ``gateway.errors`` (the one place that decides what is retryable), and turns a
429's Retry-After into a pause of the whole connection.
"""

from __future__ import annotations

import email.utils
import functools
import json
import ssl
import time
from collections.abc import Callable
from typing import Any

import certifi
import httpx
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from gateway import context, events, metrics
from gateway.errors import (
    VendorAmbiguous,
    VendorError,
    VendorRateLimited,
    VendorUnavailable,
    VendorUnreachable,
    error_for_status,
)
from gateway.models import Connection
from gateway.redact import MASK, sent_credentials

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_RETRY_AFTER = 30.0
# An API read waits at most this long for rate budget before answering 503.
MAX_READ_WAIT = 10.0
# A hook's second and later calls wait at most this long for budget, rather than waste the first.
MAX_FOLLOW_UP_WAIT = 2.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every vendor client: loading the CA bundle costs ~0.2 s a client."""
    return ssl.create_default_context(cafile=certifi.where())


def parse_retry_after(value: str | None, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is None:
            return default
        return max(0.0, parsed.timestamp() - time.time())


def default_error_detail(response: httpx.Response) -> str:
    """The vendor's message from a JSON error body, else the start of the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail", "title"):
            if isinstance(body.get(key), str):
                return body[key]
        if isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0]
            return first if isinstance(first, str) else str(first.get("message", first))
    return response.text[:500]


class VendorHTTP:
    """An audited, rate-limited HTTP client for one connection.

    :param connection: the connection (its runtime supplies limiter, redactor and tracer).
    :param base_url: the vendor API root; relative paths are joined to it.
    :param auth: an ``httpx.Auth`` for the vendor's scheme (token refresh lives there).
    :param error_detail: pulls the vendor's message out of an error response.
    :param retry_after: seconds to wait after a 429 when the vendor's answer does not say
        (no Retry-After header); the default is 30 s.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        base_url: str | None = None,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        error_detail: Callable[[httpx.Response], str] = default_error_detail,
        retry_after: Callable[[httpx.Response], float | None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.connection = connection
        self.runtime = connection.runtime
        self.error_detail = error_detail
        self.retry_after = retry_after
        self.client = httpx.Client(
            base_url=base_url or connection.base_url,
            auth=auth,
            headers=headers,
            timeout=httpx.Timeout(connection.timeout_seconds, connect=min(5.0, connection.timeout_seconds)),
            transport=transport,
            verify=_tls_context(),
        )

    def close(self) -> None:
        self.client.close()

    # -- the budget -----------------------------------------------------------------------

    def _spend_budget(self) -> str | None:
        runtime = self.runtime
        if runtime is None:
            return None
        ctx = context.get()
        policy = self.connection.rate_limit
        if ctx.prepaid:
            # A slot booked before a 429 paused the connection must not jump the pause.
            paused = runtime.limiter.paused_for(self.connection.id)
            if paused > 0:
                raise VendorRateLimited(
                    f"{self.connection.id} is paused by the vendor's Retry-After",
                    connection=self.connection.id,
                    retry_after=paused,
                )
            ctx.prepaid = False
        else:
            # A hook whose first call went out books its later ones and waits briefly for them:
            # deferring now would throw away the calls it already made (ConnectWise's ticket
            # read is two calls).
            follow_up = ctx.requests > 0
            if ctx.defer_on_limit and not follow_up:
                limit = None if ctx.book_ahead else 0.0  # a worker defers to its booked slot
            else:
                limit = MAX_FOLLOW_UP_WAIT if follow_up and ctx.defer_on_limit else MAX_READ_WAIT
            wait = runtime.limiter.reserve(self.connection.id, policy, max_wait=limit, read=ctx.write_id is None)
            if wait > 0:
                if limit is None or wait > limit:
                    raise VendorRateLimited(
                        f"{self.connection.id} is at its rate limit",
                        connection=self.connection.id,
                        retry_after=wait,
                        booked=limit is None,
                    )
                time.sleep(wait)  # an API read, or a hook's later call: booked, and short
        if policy.concurrency:
            token = runtime.limiter.acquire_slot(
                self.connection.id, policy.concurrency, self.connection.timeout_seconds + 5
            )
            if token is None:
                ctx.prepaid = True  # the booked slot is still ours for the next try
                raise VendorRateLimited(
                    f"{self.connection.id} has {policy.concurrency} calls in flight",
                    connection=self.connection.id,
                    retry_after=0.05,
                    booked=True,
                )
            return token
        return None

    # -- the call -------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; return the response, or raise a ``gateway.errors.VendorError``."""
        method = method.upper()
        runtime = self.runtime
        ctx = context.get()
        slot = self._spend_budget()
        tracer = runtime.tracer if runtime is not None else trace.get_tracer("msp-gateway")
        url = self.client.build_request(method, path, params=kwargs.get("params")).url
        attributes: dict[str, Any] = {
            "gateway.kind": "vendor_call",
            "gateway.vendor": self.connection.vendor,
            "gateway.connection": self.connection.id,
            "gateway.workspace": self.connection.workspace,
            "http.request.method": method,
            "url.path": url.path,
        }
        for name, value in (
            ("gateway.write_id", ctx.write_id),
            ("gateway.dedup_key", ctx.dedup_key),
            ("gateway.ticket", ctx.ticket_ref),
            ("gateway.purpose", ctx.purpose),
        ):
            if value:
                attributes[name] = value
        payload = self._describe_payload(kwargs)
        if payload:
            attributes["gateway.request_payload"] = payload
        with tracer.start_as_current_span(
            f"{self.connection.vendor} {method} {url.path}",
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
        ) as span:
            try:
                ctx.requests += 1
                response = self._send(method, path, kwargs)
                metrics.vendor_request(self.connection, response.status_code)
            except VendorError as exc:
                metrics.vendor_request(self.connection, None)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.set_attribute("gateway.outcome", type(exc).__name__)
                raise
            finally:
                if slot and runtime is not None:
                    runtime.limiter.release_slot(self.connection.id, slot)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                error = self._error(response)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                span.set_attribute("gateway.outcome", type(error).__name__)
                raise error
            ctx.calls.append(response.status_code)
            events.connection_ok(runtime, self.connection)
            return response

    def _send(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        try:
            return self.client.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise VendorUnreachable(
                f"{self.connection.id}: could not reach the vendor ({type(exc).__name__})",
                connection=self.connection.id,
            ) from None
        except httpx.TransportError as exc:
            # Sent, but no complete answer: a write may have been applied.
            cls = VendorUnavailable if method in SAFE_METHODS else VendorAmbiguous
            raise cls(
                f"{self.connection.id}: no answer from the vendor ({type(exc).__name__})",
                connection=self.connection.id,
            ) from None

    def _error(self, response: httpx.Response) -> VendorError:
        known = self.runtime.redactor.scrub if self.runtime is not None else (lambda s: s)
        try:
            sent = sent_credentials(response.request.headers)
        except RuntimeError:  # a response built without its request (unit tests)
            sent = []

        def scrub(text: str) -> str:
            # A vendor may echo the request (with its Authorization header) in an error body.
            text = known(text)
            for value in sent:
                text = text.replace(value, MASK)
            return text

        detail = scrub(self.error_detail(response))
        retry_after = None
        if response.status_code == 429:
            header = response.headers.get("Retry-After")
            fallback = self.retry_after(response) if self.retry_after and not header else None
            retry_after = fallback if fallback is not None else parse_retry_after(header)
            if self.runtime is not None:
                self.runtime.limiter.pause(self.connection.id, retry_after)
                events.connection_paused(self.runtime, self.connection, retry_after)
                metrics.vendor_paused(self.connection)
        events.connection_refused(self.runtime, self.connection, response.status_code, detail)
        return error_for_status(
            response.status_code,
            f"{self.connection.vendor} answered {response.status_code}: {detail}",
            connection=self.connection.id,
            body=scrub(response.text[:2000]),
            retry_after=retry_after,
        )

    def _describe_payload(self, kwargs: dict[str, Any]) -> str | None:
        redactor = self.runtime.redactor if self.runtime is not None else None
        if kwargs.get("json") is not None:
            value = kwargs["json"]
            clean = redactor.payload(value) if redactor else value
            return json.dumps(clean, default=str)[:4096]
        if kwargs.get("files"):
            files = kwargs["files"]
            names = [f"{k}: {v[0]} ({len(v[1])} bytes)" for k, v in dict(files).items()]
            return "multipart " + ", ".join(names)
        return None

    # -- shorthands -----------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)
