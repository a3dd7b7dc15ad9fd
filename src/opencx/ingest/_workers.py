"""Validation in worker processes: the write path's per-event Python off the server's GIL.

One Python process validates, hashes and builds Arrow columns at about 10 µs an event
while it also serves HTTP and resolves identities, so a single process tops out on one
core. A batch body from a server-side SDK is therefore validated by a small pool of
worker processes (`ingest_workers`; by default one per core beyond the first) and comes
back as a `PreparedBatch` — Arrow columns, hashes, failures — for the single writer.

Workers are pure: they hold the validators and the PII rules, never the database.
They are started with `spawn` (never `fork` a process that runs DuckDB's threads).
When a worker dies, its batches are validated in the server's own process instead and
another worker is started: a lost worker costs speed, never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import multiprocessing
import os
import pickle
import struct
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import numpy as np
import pyarrow as pa

from opencx.config import IdentitySettings
from opencx.identity import IdentifierExtractor
from opencx.ingest._fast import FastValidator, decode_envelope
from opencx.ingest._privacy import FieldRedactor
from opencx.ingest._validate import Failure, MessageValidator, SourceContext
from opencx.ingest._writer import PreparedBatch, prepare

log = logging.getLogger("opencx.ingest")
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux: a pipe's buffer size
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


@dataclass(frozen=True)
class WorkerConfig:
    """Everything validation depends on: the same in a worker as in the server."""

    identity: IdentitySettings
    default_region: str
    max_event_bytes: int
    max_batch_events: int
    salt: bytes
    hash_fields: tuple[str, ...]
    drop_fields: tuple[str, ...]


class BodyValidator:
    """Validates a `/v1/batch` body into a `PreparedBatch` (in a worker or in-process)."""

    def __init__(self, config: WorkerConfig, fast: FastValidator | None = None) -> None:
        self.config = config
        if fast is None:  # a worker builds its own; the server passes the one it has
            extractor = IdentifierExtractor(config.identity, config.default_region)
            fast = FastValidator(MessageValidator(extractor, config.max_event_bytes))
        self.fast = fast
        self.redactor = FieldRedactor(config.salt, config.hash_fields, config.drop_fields)

    def __call__(
        self, body: bytes, source: SourceContext, received_us: int
    ) -> PreparedBatch | None:
        """The prepared batch, or None when the body needs the tolerant path to explain it."""
        envelope = decode_envelope(body)
        if envelope is None or len(envelope.batch) > self.config.max_batch_events:
            return None
        batch = self.fast.validate_all(envelope.batch, source, received_us, envelope.sentAt)
        return prepare(batch, self.redactor)


_Packed = tuple[list[str], list[list[str]], list[Failure], bytes, bytes]


def _pack(prepared: PreparedBatch) -> _Packed:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, prepared.record.schema) as writer:
        writer.write_batch(prepared.record)
    return (
        prepared.message_id,
        prepared.identifiers,
        prepared.failures,
        prepared.hashes.tobytes(),
        sink.getvalue().to_pybytes(),
    )


def _unpack(packed: _Packed) -> PreparedBatch:
    message_id, identifiers, failures, hashes, ipc = packed
    record = pa.ipc.open_stream(ipc).read_next_batch()
    return PreparedBatch(
        message_id, identifiers, failures, np.frombuffer(hashes, dtype="<u8"), record
    )


_HEADER = struct.Struct("!I")  # each frame: its length, then a pickle


def _send_frame(fd: int, payload: bytes) -> None:
    """Write one whole frame to a blocking descriptor."""
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes:
    parts: list[bytes] = []
    while size:
        part = os.read(fd, size)
        if not part:
            raise EOFError("the other end closed the pipe")
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _serve(requests: Connection, replies: Connection, config: WorkerConfig) -> None:
    """A worker's life: validate each body sent, answer with Arrow IPC, stop at EOF."""
    validator = BodyValidator(config)
    inbox, outbox = requests.fileno(), replies.fileno()
    _send_frame(outbox, b"ready")
    while True:
        try:
            (size,) = _HEADER.unpack(_read_exactly(inbox, _HEADER.size))
            rid, body, source, received = pickle.loads(_read_exactly(inbox, size))
        except (EOFError, OSError):  # the server is gone: so is this worker
            return
        try:
            prepared = validator(body, source, received)
            reply = (rid, None, None if prepared is None else _pack(prepared))
        except Exception as exc:  # reported; the server validates this body itself
            reply = (rid, f"{type(exc).__name__}: {exc}", None)
        try:
            _send_frame(outbox, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            return


class _Frames:
    """Whole frames out of a non-blocking descriptor's reads."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        start = 0
        while len(buffer) - start >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            frames.append(bytes(buffer[start + _HEADER.size : end]))
            start = end
        del buffer[:start]
        return frames


def default_workers() -> int:
    """One validation worker per core beyond the first (none on a single core), at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))  # the CPUs this process may use (cpusets)
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(0, min(4, cores - 1))


class WorkerGone(RuntimeError):
    """A validation worker stopped while it held a request (the request is re-validated)."""


class _Worker:
    def __init__(self, process: BaseProcess, send: Connection, receive: Connection) -> None:
        self.process = process
        self.send = send  # blocking: the server writes requests
        self.receive = receive  # read by the event loop (which makes it non-blocking)
        self.frames = _Frames()
        self.pending: dict[int, tuple[asyncio.Future[PreparedBatch | None], int]] = {}
        self.watched = False
        self.queued = 0  # bytes sent and not yet answered: never more than the pipe holds,
        try:  # so a write to a slow or hung worker can never block the event loop
            room = fcntl.fcntl(send.fileno(), _F_GETPIPE_SZ)
        except OSError:
            room = 1 << 16
        self.capacity = room * 3 // 4


class ValidationPool:
    """Worker processes that validate batch bodies, talked to from the server's event loop.

    No threads on the server's side: each worker has a pipe each way; the event loop
    reads replies when they arrive. A request goes to the least busy worker; when every
    worker already holds as many bytes as its pipe can (so that a write never blocks
    the event loop), it is validated in the server's own process: a slow worker slows
    nothing down.
    """

    timeout_s = 10.0  # a validation takes about a millisecond; past this, redo it here

    def __init__(
        self, config: WorkerConfig, workers: int, here: BodyValidator | None = None
    ) -> None:
        self.config = config
        self.workers = workers
        self.here = here or BodyValidator(config)  # for bodies no worker takes
        self._live: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stopping = False
        self.restarts = 0
        self.sent = 0  # bodies validated by a worker (the rest: in this process)

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> ValidationPool:
        """Start the workers together; each is ready once it has built its validators."""
        self._stopping = False
        launched = [self._launch() for _ in range(self.workers - len(self._live))]
        try:
            for started in launched:
                self._live.append(self._ready(*started))
        except BaseException:
            for process, *_ in launched:
                process.kill()
            self.stop()
            raise
        return self

    def _spawn(self) -> _Worker:
        return self._ready(*self._launch())

    def _launch(self) -> tuple[BaseProcess, Connection, Connection]:
        context = multiprocessing.get_context("spawn")  # never fork DuckDB's threads
        requests_in, requests_out = context.Pipe(duplex=False)
        replies_in, replies_out = context.Pipe(duplex=False)
        for end in (requests_out, replies_out):  # room for many bodies without blocking
            with contextlib.suppress(OSError):
                fcntl.fcntl(end.fileno(), _F_SETPIPE_SZ, 1 << 20)
        process = context.Process(
            target=_serve, args=(requests_in, replies_out, self.config),
            name="opencx-validate", daemon=True,
        )  # fmt: skip
        process.start()
        requests_in.close()
        replies_out.close()
        return process, requests_out, replies_in

    def _ready(
        self, process: BaseProcess, requests_out: Connection, replies_in: Connection
    ) -> _Worker:
        if not replies_in.poll(120):
            process.kill()
            raise RuntimeError("a validation worker did not start")
        fd = replies_in.fileno()
        (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
        if _read_exactly(fd, size) != b"ready":
            process.kill()
            raise RuntimeError("a validation worker did not start")
        return _Worker(process, requests_out, replies_in)

    def stop(self) -> None:
        self._stopping = True
        live, self._live = self._live, []
        for worker in live:
            self._forget(worker)
            worker.send.close()  # EOF: the worker returns
            worker.receive.close()
        for worker in live:
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.kill()

    # -- validating --------------------------------------------------------------
    async def validate(
        self, body: bytes, source: SourceContext, received_us: int
    ) -> PreparedBatch | None:
        """The prepared batch (None: the tolerant path must explain this body)."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        if loop is not self._loop:  # another event loop (tests): validate here
            return self.here(body, source, received_us)
        rid = next(self._ids)
        frame = pickle.dumps((rid, body, source, received_us), protocol=5)
        size = len(frame) + _HEADER.size
        live = [w for w in self._live if w.queued + size <= w.capacity]
        if not live:  # every worker is full (or gone): this process validates
            return self.here(body, source, received_us)
        worker = min(live, key=lambda w: w.queued)
        if not worker.watched:
            loop.add_reader(worker.receive.fileno(), self._on_reply, worker)
            worker.watched = True
        future: asyncio.Future[PreparedBatch | None] = loop.create_future()
        worker.pending[rid] = (future, size)
        worker.queued += size
        try:
            _send_frame(worker.send.fileno(), frame)
        except OSError:
            worker.pending.pop(rid, None)
            self._lost(worker)
            return self.here(body, source, received_us)
        self.sent += 1
        done, _ = await asyncio.wait({future}, timeout=self.timeout_s)
        if not done:  # a hung worker: validation is pure, so this process redoes it
            future.cancel()  # its late reply, if any, is dropped
            log.warning("a validation worker took over %.0f s; validating here", self.timeout_s)
            return self.here(body, source, received_us)
        return future.result()

    def _forget(self, worker: _Worker) -> None:
        if worker.watched and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(worker.receive.fileno())
        worker.watched = False

    def _on_reply(self, worker: _Worker) -> None:
        try:
            data = os.read(worker.receive.fileno(), 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # EOF: the worker died
            self._lost(worker)
            return
        for frame in worker.frames.feed(data):
            try:
                rid, error, packed = pickle.loads(frame)
            except Exception:  # cannot happen between two copies of this code; if it does,
                log.exception("unreadable reply from a validation worker")
                self._lost(worker)  # its requests are redone by the regular route
                return
            future, size = worker.pending.pop(rid, (None, 0))
            worker.queued -= size
            if future is None or future.done():  # timed out and redone meanwhile
                continue
            try:
                if error is not None:
                    raise RuntimeError(f"validation worker failed: {error}")
                future.set_result(None if packed is None else _unpack(packed))
            except Exception as exc:  # the request takes the regular route
                future.set_exception(exc)

    def _lost(self, worker: _Worker) -> None:
        """A worker died: its requests are re-validated here, and it is replaced."""
        self._forget(worker)
        if worker not in self._live:
            return
        self._live.remove(worker)
        log.error("a validation worker stopped; starting another")
        for future, _ in worker.pending.values():
            if not future.done():
                future.set_exception(WorkerGone("validation worker stopped"))
        worker.pending.clear()
        for end in (worker.send, worker.receive):
            with contextlib.suppress(OSError):
                end.close()
        if not self._stopping:
            self.restarts += 1
            threading.Thread(target=self._replace, name="opencx-validate", daemon=True).start()

    def _replace(self) -> None:
        try:
            worker = self._spawn()
        except Exception:
            log.exception("a validation worker could not be started; validating in-process")
            return
        with self._lock:
            if self._stopping:
                worker.send.close()
                worker.receive.close()
                return
            self._live.append(worker)
