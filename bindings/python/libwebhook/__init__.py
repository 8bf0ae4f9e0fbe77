"""libwebhook — signed, retried webhook delivery from Python.

The engine is the C library (``libwebhook._native`` links it in): events
emitted here are routed to every subscribed endpoint, signed, sent over HTTP
by libcurl, retried on failure and reported as :class:`Outcome` s.

Drive it one of three ways:

* explicitly: ``engine.poll(timeout_ms)`` from your own loop, ``engine.flush()``
  at the end;
* with asyncio: ``await engine.attach()`` puts the engine's file descriptor
  on the running loop, so deliveries progress with no polling task;
  ``await engine.aflush()`` waits for them;
* at shutdown: ``with Engine(...) as e:`` flushes and frees.

Errors are exceptions: every failing call raises a subclass of :class:`Error`
carrying the library's status name (``err.name == "WH_E_URL"``) and the
detail of ``wh_last_error()`` (``str(err)``).
"""
from __future__ import annotations

import asyncio
import json as _json
import logging
import os
import time as _time
from collections import deque
from typing import (Any, AsyncIterator, Callable, Deque, Dict, Iterator, List,
                    Mapping, Optional, Sequence, Union)

from . import _native
from ._native import Outcome, status_name, strerror

__all__ = [
    "Engine", "Endpoint", "Outcome", "Error", "InvalidArgument", "OutOfMemory",
    "QueueFull", "URLError", "JSONError", "TooLarge", "HeaderError",
    "NotFound", "AlreadyExists", "ConfigError", "SecretError",
    "TransportError", "TimeoutError", "Cancelled", "RecursiveCall", "IOError_",
    "VersionError", "ConnectError", "HTTPStatusError", "SignatureError",
    "TimestampError", "QueueError", "Unsupported", "Forbidden", "Unavailable", "Duplicate", "verify_standard",
    "verify_hmac_hex", "verify_rsa_sha256", "sign_standard", "status_name",
    "strerror", "library_version",
]

library_version: str = _native.library_version

# ---- exceptions ---------------------------------------------------------------


class Error(Exception):
    """Base of every libwebhook exception.

    Attributes: ``status`` (the negative wh_status number), ``name`` (its
    symbolic name, e.g. ``"WH_E_CONFIG"``) and ``message`` (the library's
    detail, e.g. ``"endpoints[0].timeout_ms: expected a positive integer"``).
    """

    status: int
    name: str
    message: str

    def __init__(self, message: str, status: int = -1, name: str = "WH_E_INVAL") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.name = name

    def __str__(self) -> str:
        if self.message.startswith(self.name):
            return self.message
        return f"{self.name}: {self.message}"


class InvalidArgument(Error, ValueError):
    """WH_E_INVAL: an argument is missing or invalid."""


class OutOfMemory(Error, MemoryError):
    """WH_E_NOMEM."""


class QueueFull(Error):
    """WH_E_FULL: the queue is at capacity; back off and emit again."""


class URLError(Error, ValueError):
    """WH_E_URL: an endpoint URL is invalid."""


class JSONError(Error, ValueError):
    """WH_E_JSON: malformed JSON (payload or configuration)."""


class TooLarge(Error, ValueError):
    """WH_E_TOO_LARGE: payload over max_payload_bytes (or nesting too deep)."""


class HeaderError(Error, ValueError):
    """WH_E_HEADER: an invalid header name or value."""


class NotFound(Error, LookupError):
    """WH_E_NOT_FOUND."""


class AlreadyExists(Error):
    """WH_E_EXISTS: an endpoint id already in use."""


class ConfigError(Error, ValueError):
    """WH_E_CONFIG: the configuration names an unknown key or a bad value."""


class SecretError(Error, ValueError):
    """WH_E_SECRET: an unusable secret or key."""


class TransportError(Error):
    """WH_E_TRANSPORT."""


class TimeoutError(Error):  # noqa: A001 - the library's name
    """WH_E_TIMEOUT."""


class Cancelled(Error):
    """WH_E_CANCELLED."""


class RecursiveCall(Error):
    """WH_E_RECURSIVE: an engine call made from inside a callback."""


class IOError_(Error, OSError):
    """WH_E_IO: a file could not be read."""


class VersionError(Error):
    """WH_E_VERSION."""


class ConnectError(Error):
    """WH_E_CONNECT."""


class HTTPStatusError(Error):
    """WH_E_HTTP_STATUS."""


class SignatureError(Error):
    """WH_E_SIGNATURE: a signature does not verify."""


class TimestampError(Error):
    """WH_E_TIMESTAMP: the timestamp is outside the tolerance."""


class QueueError(Error):
    """WH_E_QUEUE: the queue backend failed."""


class Unsupported(Error):
    """WH_E_UNSUPPORTED: a backend this build of the library left out."""


class Forbidden(Error):
    """WH_E_FORBIDDEN: the address was refused by the SSRF guard."""


class Unavailable(Error):
    """WH_E_UNAVAILABLE: the queue backend is unreachable and its local
    buffer is full; back off and emit again."""


class Duplicate(Error):
    """WH_E_DUPLICATE: an event with this id was accepted within the
    engine's dedupe_window_ms; it is not delivered again."""


_CLASSES: Dict[int, type] = {
    _native.WH_E_INVAL: InvalidArgument, _native.WH_E_NOMEM: OutOfMemory,
    _native.WH_E_FULL: QueueFull, _native.WH_E_URL: URLError,
    _native.WH_E_JSON: JSONError, _native.WH_E_TOO_LARGE: TooLarge,
    _native.WH_E_HEADER: HeaderError, _native.WH_E_NOT_FOUND: NotFound,
    _native.WH_E_EXISTS: AlreadyExists, _native.WH_E_CONFIG: ConfigError,
    _native.WH_E_SECRET: SecretError, _native.WH_E_TRANSPORT: TransportError,
    _native.WH_E_TIMEOUT: TimeoutError, _native.WH_E_CANCELLED: Cancelled,
    _native.WH_E_RECURSIVE: RecursiveCall, _native.WH_E_IO: IOError_,
    _native.WH_E_VERSION: VersionError, _native.WH_E_CONNECT: ConnectError,
    _native.WH_E_HTTP_STATUS: HTTPStatusError,
    _native.WH_E_SIGNATURE: SignatureError,
    _native.WH_E_TIMESTAMP: TimestampError, _native.WH_E_QUEUE: QueueError,
    _native.WH_E_UNSUPPORTED: Unsupported,
}
for _name, _cls in (("WH_E_FORBIDDEN", Forbidden), ("WH_E_UNAVAILABLE", Unavailable),
                    ("WH_E_DUPLICATE", Duplicate)):
    if hasattr(_native, _name):
        _CLASSES[getattr(_native, _name)] = _cls
# emit() serialises non-bytes/str data with this encoder's C fast path
_native._set_errors(Error, _CLASSES, _json.JSONEncoder(separators=(",", ":")).iterencode)


def _raise(status: int, message: str) -> "NoReturn":  # type: ignore[name-defined]
    raise _CLASSES.get(status, Error)(message, status, status_name(status))


# ---- endpoints ------------------------------------------------------------------

_ENGINE_OPTIONS = ("max_queued_events", "max_queued_bytes", "max_payload_bytes",
                   "validate_json", "seed", "log_level")


class Endpoint:
    """An endpoint of an :class:`Engine` (returned by ``add_endpoint``).

    ``handle`` is the library's endpoint handle (``Outcome.endpoint``), ``id``
    its stable id (``Outcome.endpoint_id``).
    """

    __slots__ = ("_engine", "handle", "id", "url")

    def __init__(self, engine: "Engine", handle: int, id: str, url: str) -> None:
        self._engine = engine
        self.handle = handle
        self.id = id
        self.url = url

    @property
    def state(self) -> str:
        """'active', 'paused', 'probing' or 'disabled'."""
        return ("active", "paused", "probing", "disabled")[self._engine._endpoint_state(self.handle)]

    def enable(self, on: bool = True) -> None:
        """Enable (or, with ``on=False``, disable) the endpoint."""
        self._engine._endpoint_enable(self.handle, on)
        self._engine._dispatch()

    def __repr__(self) -> str:
        return f"<Endpoint {self.id!r} {self.url!r} handle={self.handle}>"


OutcomeCallback = Callable[[Outcome], Any]
_logger = logging.getLogger("libwebhook")
_LEVELS = (logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)


def _log_to_logging(level: int, message: str) -> None:
    _logger.log(_LEVELS[level] if 0 <= level < 4 else logging.DEBUG, message)

ConfigArg = Union[None, Mapping[str, Any], str, bytes, "os.PathLike[str]"]


class Engine(_native.Engine):
    """A webhook delivery engine.

    ``Engine(config=None, *, on_outcome=None, keep_outcomes=True, **options)``

    ``config`` is a configuration document as a dict, a JSON string (or
    bytes), or a path to a JSON file: its ``endpoints`` (and ``webhooks``)
    are added with ``wh_config_load`` and its ``queue`` member selects the
    queue backend.  Keyword ``options`` are the engine options:
    ``max_queued_events``, ``max_queued_bytes``, ``max_payload_bytes``,
    ``validate_json`` (bool), ``seed``, ``log_level`` (0-3).

    Outcomes: set ``on_outcome`` (keyword or attribute) to a callable taking
    an :class:`Outcome`; it runs after the engine call that produced the
    outcome (``poll``, ``flush``, ``aflush``, the asyncio reader, ...), and an
    exception it raises is re-raised from that call (under asyncio: from the
    next ``aflush``/``aoutcomes``/``poll``/``flush``).  Without a callback the
    outcomes are kept for :meth:`outcomes` / :meth:`aoutcomes`
    (``keep_outcomes=False`` drops them instead).

    Diagnostics: ``on_log(level, message)`` (0 error .. 3 debug, up to
    ``log_level``) receives the library's log lines; by default they go to
    the ``logging`` logger ``"libwebhook"``.

    Use it as a context manager: ``with Engine(cfg) as e: ...`` flushes (up
    to ``close_timeout_ms``, default 30 s) and frees it on exit.

    One engine belongs to one thread at a time.
    """

    close_timeout_ms: int = 30000

    def __init__(self, config: ConfigArg = None, *, on_outcome: Optional[OutcomeCallback] = None,
                 keep_outcomes: bool = True, on_log: Optional[Callable[[int, str], Any]] = None,
                 **options: Any) -> None:
        for k in options:
            if k not in _ENGINE_OPTIONS:
                raise TypeError(f"Engine(): unknown option {k!r} (options: {', '.join(_ENGINE_OPTIONS)})")
        doc: Optional[bytes] = None
        path: Optional[str] = None
        if config is None:
            pass
        elif isinstance(config, Mapping):
            doc = _json.dumps(config).encode()
        elif isinstance(config, bytes):
            doc = config
        elif isinstance(config, str) and config.lstrip().startswith("{"):
            doc = config.encode()
        elif isinstance(config, (str, os.PathLike)):
            path = os.fspath(config)
        else:
            raise TypeError("Engine(): config must be a dict, a JSON string or a path")
        queue: Optional[bytes] = None
        if path is not None:
            try:
                with open(path, "rb") as f:
                    doc = f.read()
            except OSError as exc:
                raise IOError_(f"{path}: {exc.strerror}", _native.WH_E_IO, "WH_E_IO") from exc
        if doc is not None:
            try:
                parsed: Any = _json.loads(doc)
            except ValueError:
                parsed = None  # the library names the error below
            if isinstance(parsed, dict) and "queue" in parsed:
                queue = doc
        opts = dict(options)
        if "validate_json" in opts:
            opts["validate_json"] = 1 if opts["validate_json"] else 0
        super().__init__(queue=queue, keep_outcomes=keep_outcomes,
                         on_log=on_log if on_log is not None else _log_to_logging, **opts)
        self.on_outcome: Optional[OutcomeCallback] = on_outcome
        self._kept: Deque[Outcome] = deque()
        self._front: List[Outcome] = []
        self._error: Optional[BaseException] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._fdno = -1
        self._timer: Optional[asyncio.TimerHandle] = None
        self._waiters: List[asyncio.Future] = []
        self._outcome_waiters: List[asyncio.Future] = []
        self._endpoints: Dict[int, Endpoint] = {}
        if doc is not None:
            self._config_load(doc)
            if isinstance(parsed, dict):
                for entry in parsed.get("endpoints", []) + parsed.get("webhooks", []):
                    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                        h = self._endpoint_find(entry["id"])
                        if h > 0:
                            self._endpoints[h] = Endpoint(self, h, entry["id"], entry.get("url", ""))

    # -- endpoints
    def add_endpoint(self, url: str, **options: Any) -> Endpoint:
        """Add an endpoint; returns its :class:`Endpoint`.

        Every keyword is a key of an endpoint object of the JSON configuration
        with the same name and value: ``id``, ``event_types=["*"]``,
        ``secret="whsec_..."`` (or a list), ``headers={"X-K": "v"}``,
        ``filter={"channel_name_starts_with": "room-"}``, ``timeout_ms``,
        ``max_attempts``, ``max_in_flight``, ``retry={"initial_ms": 100}``
        or ``retry="stream"``, ``mode="batch"``, ``batch={...}``,
        ``body``, ``preset``, ``signing``, ``limits``, ``health``, ...  An
        unknown key raises :class:`ConfigError` naming it.
        """
        if not isinstance(url, str):
            raise TypeError("add_endpoint(): url must be a str")
        ep: Dict[str, Any] = {"url": url}
        for k, v in options.items():
            if v is not None:
                ep[k] = v
        if "id" not in ep:
            n = len(self._endpoints) + 1
            while self._endpoint_find(f"ep-{n}") > 0:
                n += 1
            ep["id"] = f"ep-{n}"
        try:
            doc = _json.dumps({"endpoints": [ep]})
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"add_endpoint(): {exc}", _native.WH_E_INVAL, "WH_E_INVAL") from None
        try:
            self._config_load(doc)
        except Error as exc:
            # name the keyword, not the position in the synthetic document
            exc.message = exc.message.replace("endpoints[0].", "").replace("endpoints[0]", "endpoint")
            raise
        handle = self._endpoint_find(ep["id"])
        e = Endpoint(self, handle, ep["id"], url)
        self._endpoints[handle] = e
        return e

    def remove_endpoint(self, endpoint: Union[Endpoint, int, str]) -> None:
        """Remove an endpoint (an :class:`Endpoint`, a handle or an id); its
        pending deliveries are reported as 'dead' with WH_E_CANCELLED."""
        if isinstance(endpoint, Endpoint):
            handle = endpoint.handle
        elif isinstance(endpoint, str):
            handle = self._endpoint_find(endpoint)
            if handle < 0:
                _raise(handle, f"no endpoint with id {endpoint!r}")
        else:
            handle = int(endpoint)
        self._endpoint_remove(handle)
        self._endpoints.pop(handle, None)
        self._dispatch()

    def endpoint(self, id: str) -> Endpoint:
        """The endpoint with stable id ``id`` (also those loaded from config)."""
        h = self._endpoint_find(id)
        if h < 0:
            _raise(h, f"no endpoint with id {id!r}")
        return self._endpoints.get(h) or Endpoint(self, h, id, "")

    # -- driving
    def poll(self, timeout_ms: int = 0) -> int:
        """Do the work that is due, waiting up to ``timeout_ms`` for network
        activity; report outcomes; return how many were reported."""
        self._raise_pending()
        n = self._poll(timeout_ms)
        self._dispatch()
        return n

    def flush(self, timeout_ms: int = 30000) -> bool:
        """Deliver everything queued (blocking, up to ``timeout_ms``).
        Returns True when drained, False when work remains."""
        self._raise_pending()
        ok = self._flush(timeout_ms)
        self._dispatch()
        return ok

    def outcomes(self) -> Iterator[Outcome]:
        """Iterate over the outcomes reported so far (the pull API); does not
        wait.  Only when no ``on_outcome`` is set."""
        self._raise_pending()
        self._dispatch()
        while self._kept:
            yield self._kept.popleft()
            self._dispatch()

    def close(self, timeout_ms: Optional[int] = None) -> None:
        """Flush (``timeout_ms``, default none: drop at once) and free the
        engine; what is still queued is reported as cancelled."""
        if self.closed:
            return
        self.detach()
        if timeout_ms:
            self._flush(timeout_ms)
        self._close()
        self._dispatch()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if self.closed:
            return
        try:
            self.detach()
            self._flush(self.close_timeout_ms)
            self._close()
            if et is None:
                self._dispatch()
        finally:
            if not self.closed:
                self._close()

    def _dispatch(self) -> None:
        got = self._take()
        if self._front:
            got = self._front + got
            self._front = []
        if got:
            cb = self.on_outcome
            if cb is None:
                self._kept.extend(got)
            else:
                for i, o in enumerate(got):
                    try:
                        cb(o)
                    except BaseException:
                        # the rest are reported on the next call
                        self._front = got[i + 1:]
                        raise
        if self._outcome_waiters and self._kept:
            self._wake(self._outcome_waiters)

    def _raise_pending(self) -> None:
        if self._error is not None:
            e, self._error = self._error, None
            raise e

    # -- asyncio
    async def attach(self) -> None:
        """Put the engine on the running asyncio loop: its file descriptor
        (``wh_fd``) with ``add_reader`` and a timer from ``wh_timeout_ms``,
        so deliveries progress with no polling task and no call of yours."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self.detach()
        self._loop = loop
        self._fdno = self._fd()
        loop.add_reader(self._fdno, self._service)
        self._set_kick(self._kick)
        self._service()

    def detach(self) -> None:
        """Take the engine off the asyncio loop (``close`` does it too)."""
        if self._loop is None:
            return
        self._set_kick(None)
        if self._timer:
            self._timer.cancel()
            self._timer = None
        try:
            self._loop.remove_reader(self._fdno)
        except Exception:
            pass
        self._loop = None

    def _kick(self) -> None:
        assert self._loop is not None
        self._loop.call_soon(self._service)

    def _service(self) -> None:
        if self.closed or self._loop is None:
            return
        try:
            self._poll(0)
            self._dispatch()
        except BaseException as exc:
            if self._error is None:
                self._error = exc
            self._wake(self._waiters)
            self._wake(self._outcome_waiters)
        if self.closed or self._loop is None:
            return
        t = self.timeout_ms()
        if self._timer:
            self._timer.cancel()
            self._timer = None
        if t >= 0:
            self._timer = self._loop.call_later(t / 1000.0, self._service)
        if self._waiters:
            s = self.stats()
            if s["queued"] == 0 and s["in_flight"] == 0:
                self._wake(self._waiters)

    @staticmethod
    def _wake(waiters: List[asyncio.Future]) -> None:
        for f in waiters:
            if not f.done():
                f.set_result(True)
        waiters.clear()

    async def aflush(self, timeout_ms: int = 30000) -> bool:
        """Wait (without blocking the loop) until nothing is queued or in
        flight, or ``timeout_ms`` passed.  Attaches first if needed.
        Returns True when drained; raises what an ``on_outcome`` raised."""
        await self.attach()
        deadline = _time.monotonic() + timeout_ms / 1000.0
        while True:
            self._raise_pending()
            s = self.stats()
            if s["queued"] == 0 and s["in_flight"] == 0:
                self._dispatch()
                self._raise_pending()
                return True
            left = deadline - _time.monotonic()
            if left <= 0:
                return False
            f = asyncio.get_running_loop().create_future()
            self._waiters.append(f)
            try:
                await asyncio.wait_for(f, left)
            except asyncio.TimeoutError:
                pass

    async def aoutcomes(self) -> AsyncIterator[Outcome]:
        """``async for o in engine.aoutcomes():`` each outcome as it comes
        (waits for the next one; attaches first if needed)."""
        await self.attach()
        while True:
            self._raise_pending()
            self._dispatch()
            while self._kept:
                yield self._kept.popleft()
            f = asyncio.get_running_loop().create_future()
            self._outcome_waiters.append(f)
            await f


# ---- receiver side -------------------------------------------------------------

def _header(headers: Any, *names: str) -> Optional[str]:
    get = getattr(headers, "get", None)
    if get is None:
        headers = dict(headers)
        get = headers.get
    for n in names:
        for cand in (n, n.lower(), n.title()):
            v = get(cand)
            if v is not None:
                return v if isinstance(v, str) else v.decode()
    if isinstance(headers, Mapping):
        low = {str(k).lower(): v for k, v in headers.items()}
        for n in names:
            if n.lower() in low:
                v = low[n.lower()]
                return v if isinstance(v, str) else v.decode()
    return None


def _check(st: int, what: str) -> None:
    if st != 0:
        _raise(st, f"{what}: {strerror(st)}")


def verify_standard(secrets: Union[str, Sequence[str]], headers: Any, body: Union[bytes, str],
                    tolerance: int = 300, *, now: Optional[int] = None) -> None:
    """Verify a Standard Webhooks request (``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature``; ``svix-*`` also accepted) against one or more
    ``whsec_...`` secrets.  ``headers`` is any mapping (case-insensitive
    lookup: aiohttp's ``request.headers``, Flask's, a dict).  Returns None;
    raises :class:`SignatureError`, :class:`TimestampError` (outside
    ``tolerance`` seconds) or :class:`InvalidArgument` (headers missing)."""
    if isinstance(secrets, str):
        secrets = [secrets]
    mid = _header(headers, "webhook-id", "svix-id")
    ts = _header(headers, "webhook-timestamp", "svix-timestamp")
    sig = _header(headers, "webhook-signature", "svix-signature")
    if mid is None or ts is None or sig is None:
        raise InvalidArgument("missing webhook-id, webhook-timestamp or webhook-signature header",
                              _native.WH_E_INVAL, "WH_E_INVAL")
    st = _native._verify_standard(list(secrets), mid, ts, body, sig,
                                  int(_time.time()) if now is None else now, tolerance)
    _check(st, f"webhook-id {mid}")


def verify_hmac_hex(secret: str, body: Union[bytes, str], signature_hex: str) -> None:
    """Verify a hex HMAC-SHA256 of ``body`` (Pusher's X-Pusher-Signature,
    Stream's X-SIGNATURE, Sendbird's x-sendbird-signature).  Raises
    :class:`SignatureError` when it does not verify."""
    _check(_native._verify_hmac_hex(secret, body, signature_hex), "hmac")


def verify_rsa_sha256(public_key_pem: str, body: Union[bytes, str], signature_b64: str) -> None:
    """Verify a base64 RSA-SHA256 signature (Dyte's dyte-signature) with a
    PEM public key.  Raises :class:`SignatureError` / :class:`SecretError`."""
    _check(_native._verify_rsa_sha256(public_key_pem, body, signature_b64), "rsa-sha256")


def sign_standard(secrets: Union[str, Sequence[str]], id: str, timestamp: int,
                  body: Union[bytes, str]) -> str:
    """The ``webhook-signature`` value the engine sends for this message."""
    if isinstance(secrets, str):
        secrets = [secrets]
    return _native._sign_standard(list(secrets), id, timestamp, body)
