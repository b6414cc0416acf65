"""Run locks: one nightly per warehouse and date, one command per table, forced vacuums alone.

Example::

    registry = LockRegistry.for_settings(settings)
    with registry.hold([date_lock_name("2026-11-24")], "a nightly for 2026-11-24", run.run_id):
        ...   # another holder fails fast with LockHeldError:
              # a nightly for 2026-11-24 is running (run 5d0c..., pid 4242 on host x, since 02:00:13 UTC)

A lock is a folder ``<warehouse>/_locks/<name>/`` of numbered records, ``000000000007.json``;
the highest number is the current record: who holds it (run id, pid, host, start) and the
holder's heartbeat, which a background thread refreshes every ``locks.heartbeat_seconds``.
The lock is free when that record says ``released``, or is stale: its heartbeat is older than
``locks.stale_after_seconds``, or its pid is gone on this host (a crashed holder never keeps a
lock). To take a lock, a process creates the next number with a hard link, which fails if
another process created it first, so of several racing processes exactly one wins; it then
checks that no higher number exists and deletes the older ones. A holder only ever rewrites
its own record, so a holder that was paused past the timeout and taken over cannot overwrite
its successor (its heartbeat thread notices and logs that it lost the lock).

Filesystem: a POSIX filesystem shared by every process that runs commands on the warehouse
(local, or NFS): ``link`` must be atomic and fail on an existing name, and a folder listing
must show files other processes created before. Hosts' clocks must agree to well within
``stale_after_seconds``.

Exclusive holders (a forced vacuum, an erasure, a table restore) also take the lock named
``exclusive``, then check that nobody else holds any lock; everybody else, once holding their
locks, checks that no exclusive holder is live. Of two such processes at least one sees the
other, so an exclusive command never runs beside another command that holds a lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from neurolake_spark.atomic_files import write_atomic
from neurolake_spark.errors import BusyError, NeuroLakeError

log = logging.getLogger(__name__)

EXCLUSIVE = "exclusive"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,120}")
_RECORD = re.compile(r"[0-9]{12}\.json")
_ATTEMPTS = 20


class LockHeldError(BusyError):
    """Another live run holds a lock this command needs; ``holder`` says who."""

    def __init__(self, holder: LockRecord):
        super().__init__(holder.describe())
        self.holder = holder


class LockError(NeuroLakeError):
    """The lock folder cannot be used (e.g. the filesystem has no hard links)."""


@dataclass(frozen=True)
class LockRecord:
    """Who holds (or held) a lock, as written in its record."""

    name: str
    what: str
    owner: str
    pid: int
    host: str
    started_at: float
    heartbeat_at: float
    token: str
    exclusive: bool = False
    released: bool = False

    def live(self, stale_after: float, now: float | None = None) -> bool:
        """Whether the holder still holds it: not released, heartbeat recent, pid present here."""
        if self.released:
            return False
        if self.host == socket.gethostname() and not _pid_running(self.pid):
            return False
        return (time.time() if now is None else now) - self.heartbeat_at <= stale_after

    def describe(self) -> str:
        """``a nightly for 2026-11-24 is running (run 5d0c..., pid 4242 on host x, since 02:00:13 UTC)``."""
        started = datetime.fromtimestamp(self.started_at, UTC)
        since = started.strftime(
            "%H:%M:%S" if started.date() == datetime.now(UTC).date() else "%Y-%m-%d %H:%M:%S"
        )
        holder = f"run {self.owner}, pid {self.pid} on host {self.host}, since {since} UTC"
        return f"{self.what} is running ({holder})"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LockRecord:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _pid_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def date_lock_name(batch_date: str) -> str:
    """The lock of a warehouse's runs for one batch date (nightly, steps, bulk fixes)."""
    return f"nightly-{batch_date}"


def date_lock_holders(settings) -> list[LockRecord]:
    """The live holders of any batch date's lock: nightlies and steps running on the warehouse."""
    prefix = date_lock_name("")
    return [record for record in LockRegistry.for_settings(settings).live() if record.name.startswith(prefix)]


def table_lock_name(table_path: str | os.PathLike) -> str:
    """The lock of one table, named after its resolved folder, so a logical name
    (``silver.events``) and the table's path take the same lock."""
    text = str(table_path)
    local = text[len("file:") :].lstrip("/") if text.startswith("file:") else None
    path = Path("/" + local if local is not None else text).expanduser().resolve()
    digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:16]
    readable = re.sub(r"[^a-z0-9_]", "_", path.name.lower())[:40] or "table"
    return f"table-{readable}-{digest}"


def run_lock(
    settings,
    what: str,
    owner: str,
    *,
    dates: Sequence[str] = (),
    tables: Sequence[str | os.PathLike] = (),
    exclusive: bool = False,
):
    """Hold the locks of batch ``dates`` and of the table folders ``tables`` in the settings'
    warehouse while the block runs (see :meth:`LockRegistry.hold`)::

        run = lh.run("table_restore")
        with run_lock(lh.settings, "a restore of silver.orders", run.run_id, tables=[path]), run:
            ...
    """
    names = [date_lock_name(d) for d in dates] + [table_lock_name(t) for t in tables]
    return LockRegistry.for_settings(settings).hold(names, what, owner, exclusive)


class LockRegistry:
    """The locks of one warehouse: ``<lock dir>/<name>/<number>.json``."""

    def __init__(self, directory: Path, stale_after: float = 300.0, heartbeat_every: float = 15.0):
        if not 0 < heartbeat_every < stale_after:
            raise LockError(
                f"lock heartbeat ({heartbeat_every}s) must be shorter than the stale timeout ({stale_after}s)"
            )
        self.directory = Path(directory)
        self.stale_after = stale_after
        self.heartbeat_every = heartbeat_every

    @classmethod
    def for_settings(cls, settings) -> LockRegistry:
        """The registry of the settings' warehouse (``locks.*`` settings)."""
        locks = settings.locks
        return cls(settings.locks_dir, locks.stale_after_seconds, locks.heartbeat_seconds)

    # reading -------------------------------------------------------------------------------

    def current(self, name: str) -> LockRecord | None:
        """The newest record of lock ``name`` (live or not), or None if it was never taken."""
        return self._top(self._folder(name))[1]

    def holder(self, name: str) -> LockRecord | None:
        """The live holder of lock ``name``, or None when it is free."""
        record = self.current(name)
        return record if record is not None and record.live(self.stale_after) else None

    def live(self) -> list[LockRecord]:
        """Every live holder of any lock of this registry."""
        if not self.directory.is_dir():
            return []
        holders = (
            self.holder(folder.name)
            for folder in sorted(self.directory.iterdir())
            if _NAME.fullmatch(folder.name)
        )
        return [h for h in holders if h is not None]

    def _folder(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise LockError(f"invalid lock name {name!r}")
        return self.directory / name

    @staticmethod
    def _numbers(folder: Path) -> list[int]:
        try:
            return sorted(int(p[:12]) for p in os.listdir(folder) if _RECORD.fullmatch(p))
        except FileNotFoundError:
            return []

    def _top(self, folder: Path) -> tuple[int, LockRecord | None]:
        """The highest record number of ``folder`` and its record (0, None when empty)."""
        for _ in range(_ATTEMPTS):
            numbers = self._numbers(folder)
            if not numbers:
                return 0, None
            try:
                text = (folder / f"{numbers[-1]:012d}.json").read_text(encoding="utf-8")
            except FileNotFoundError:
                continue  # a new holder deleted it after taking a higher number: list again
            try:
                return numbers[-1], LockRecord.from_json(text)
            except (ValueError, TypeError, KeyError):
                log.warning(
                    "lock %s: unreadable record %012d.json, treated as stale", folder.name, numbers[-1]
                )
                return numbers[-1], None
        raise LockError(f"lock {folder.name}: its records keep changing; try again")

    # taking --------------------------------------------------------------------------------

    def acquire(self, name: str, what: str, owner: str, exclusive: bool = False) -> HeldLock:
        """Take lock ``name`` or raise :class:`LockHeldError` naming its live holder.

        ``what`` describes this holder to others (``a nightly for 2026-11-24``); ``owner`` is
        its run id. Release the lock with :meth:`HeldLock.release` (or use :meth:`hold`)."""
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(_ATTEMPTS):
            number, previous = self._top(folder)
            if previous is not None and previous.live(self.stale_after):
                raise LockHeldError(previous)
            now = time.time()
            record = LockRecord(
                name=name,
                what=what,
                owner=owner,
                pid=os.getpid(),
                host=socket.gethostname(),
                started_at=now,
                heartbeat_at=now,
                token=uuid.uuid4().hex,
                exclusive=exclusive,
            )
            path = folder / f"{number + 1:012d}.json"
            if not _create(path, record.to_json()):
                continue  # another process took this number first: look again
            if self._numbers(folder)[-1] != number + 1:
                path.unlink(missing_ok=True)  # someone went higher meanwhile: theirs wins
                continue
            for older in self._numbers(folder):
                if older <= number:
                    (folder / f"{older:012d}.json").unlink(missing_ok=True)
            if previous is not None and not previous.released:
                log.warning("lock %s: took over from a stale holder: %s", name, previous.describe())
            return HeldLock(path, record)
        raise LockError(f"lock {name}: too many processes are racing for it; try again")

    @contextmanager
    def hold(
        self, names: Sequence[str], what: str, owner: str, exclusive: bool = False
    ) -> Iterator[list[HeldLock]]:
        """Hold the locks ``names`` while the block runs, with a heartbeat thread refreshing them.

        With ``exclusive``, also take the ``exclusive`` lock and fail if anybody else holds any
        lock; without, fail if an exclusive holder is live. Either failure releases everything
        taken and raises :class:`LockHeldError`."""
        held: list[HeldLock] = []
        try:
            for name in ([EXCLUSIVE] if exclusive else []) + sorted(set(names)):
                held.append(self.acquire(name, what, owner, exclusive))
            self._check_alone(held) if exclusive else self._check_no_exclusive()
        except BaseException:
            for lock in held:
                lock.release()
            raise
        heartbeat = _Heartbeat(held, self.heartbeat_every)
        heartbeat.start()
        try:
            yield held
        finally:
            heartbeat.stop()
            for lock in held:
                lock.release()

    def _check_alone(self, held: list[HeldLock]) -> None:
        own = {lock.record.token for lock in held}
        for record in self.live():
            if record.token not in own:
                raise LockHeldError(record)

    def _check_no_exclusive(self) -> None:
        holder = self.holder(EXCLUSIVE)
        if holder is not None:
            raise LockHeldError(holder)


def _create(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` in one step; False if it exists already."""
    temporary = path.with_name(f".{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise LockError(
                f"cannot create lock {path}: {exc.strerror} (locks need a POSIX filesystem with hard links)"
            ) from None
        return True
    finally:
        temporary.unlink(missing_ok=True)


class HeldLock:
    """A lock this process holds; its record file is the only one it ever rewrites."""

    def __init__(self, path: Path, record: LockRecord):
        self.path = path
        self.record = record
        self.lost = False

    def _still_ours(self) -> bool:
        numbers = LockRegistry._numbers(self.path.parent)
        return self.path.exists() and bool(numbers) and numbers[-1] == int(self.path.name[:12])

    def beat(self) -> None:
        """Refresh the heartbeat; if another process took the lock over, remember it was lost."""
        if self.lost:
            return
        if not self._still_ours():
            self.lost = True
            log.error("lock %s was taken over by another process while this one held it", self.record.name)
            return
        self.record = replace(self.record, heartbeat_at=time.time())
        write_atomic(self.path, self.record.to_json())

    def release(self) -> None:
        """Mark the record released (the number stays, so numbers are never reused)."""
        if self.lost or not self._still_ours():
            return
        self.record = replace(self.record, released=True, heartbeat_at=time.time())
        write_atomic(self.path, self.record.to_json())


class _Heartbeat:
    """A daemon thread that refreshes the heartbeats of ``locks`` until stopped."""

    def __init__(self, locks: list[HeldLock], every: float):
        self.locks = locks
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="neurolake-lock-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for lock in self.locks:
                try:
                    lock.beat()
                except OSError as exc:  # a full disk must not kill the run; the lock may go stale
                    log.error("lock %s: heartbeat failed: %s", lock.record.name, exc)
