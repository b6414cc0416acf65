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

A record also lists the runs its holder has open (:class:`OpenRun`: the run that took the lock,
and each step a nightly runs under it, from before the run's START event to after its end
event). A process killed mid-run never ends them; the command that takes its lock over reports
each as aborted (:func:`run_lock`, through
:func:`~neurolake_spark.lineage.abandoned.report_abandoned`), so lineage does not show them
running forever.
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
from typing import TYPE_CHECKING, Any

from neurolake_spark.atomic_files import write_atomic
from neurolake_spark.errors import BusyError, NeuroLakeError

if TYPE_CHECKING:  # for annotations only
    from neurolake_spark.runs import JobRun

log = logging.getLogger(__name__)

EXCLUSIVE = "exclusive"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,120}")
_RECORD = re.compile(r"[0-9]{12}\.json")
_ATTEMPTS = 20
_RUN_TEXT = re.compile(r"[A-Za-z0-9._:-]{1,200}")


class LockHeldError(BusyError):
    """Another live run holds a lock this command needs; ``holder`` says who."""

    def __init__(self, holder: LockRecord):
        super().__init__(holder.describe())
        self.holder = holder


class LockError(NeuroLakeError):
    """The lock folder cannot be used (e.g. the filesystem has no hard links)."""


@dataclass(frozen=True)
class OpenRun:
    """A run a lock holder has open (started, not yet ended), as its lock record lists it."""

    run_id: str
    job: str
    parent: str | None = None
    run_date: str | None = None

    @classmethod
    def of(cls, run: JobRun) -> OpenRun:
        return cls(run.run_id, run.job_name, run.parent.run_id if run.parent else None, run.run_date)

    @classmethod
    def from_dict(cls, data: Any) -> OpenRun:
        """Read one entry of a record; anything but short plain strings is a ``ValueError``."""
        if not isinstance(data, dict) or set(data) - set(cls.__dataclass_fields__):
            raise ValueError(f"not an open run: {data!r}")
        run = cls(**data)
        for value in (run.run_id, run.job, run.parent, run.run_date):
            if value is not None and not (isinstance(value, str) and _RUN_TEXT.fullmatch(value)):
                raise ValueError(f"not an open run: {data!r}")
        return run


@dataclass(frozen=True)
class LockRecord:
    """Who holds (or held) a lock, as written in its record, and the runs it has open."""

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
    runs: tuple[OpenRun, ...] = ()

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
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["runs"] = tuple(OpenRun.from_dict(run) for run in data.get("runs") or ())
        return cls(**fields)


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


@contextmanager
def run_lock(
    settings,
    what: str,
    owner: JobRun | str,
    *,
    dates: Sequence[str] = (),
    tables: Sequence[str | os.PathLike] = (),
    exclusive: bool = False,
) -> Iterator[HeldLocks]:
    """Hold the locks of batch ``dates`` and of the table folders ``tables`` in the settings'
    warehouse while the block runs (see :meth:`LockRegistry.hold`)::

        run = lh.run("table_restore")
        with run_lock(lh.settings, "a restore of silver.orders", run, tables=[path]), run:
            ...

    ``owner`` is the run that holds them (or, from a notebook, any run id): given the
    :class:`~neurolake_spark.runs.JobRun`, the records list it as open. When a lock is taken
    over from a holder whose process died, every run that holder left open is reported as
    aborted (an OpenLineage ABORT event) before the block starts.
    """
    names = [date_lock_name(d) for d in dates] + [table_lock_name(t) for t in tables]
    run_id, runs = (owner, ()) if isinstance(owner, str) else (owner.run_id, (OpenRun.of(owner),))
    with LockRegistry.for_settings(settings).hold(names, what, run_id, exclusive, runs) as held:
        _report_abandoned(settings, held.taken_over, run_id)
        yield held


def _report_abandoned(settings, dead: list[LockRecord], successor: str) -> None:
    """Report the runs that dead lock holders left open, each run once."""
    dead = [record for record in dead if record.runs]
    if not dead:
        return
    # lazy: lineage (OpenLineage, pyspark) stays out of the commands that take no lock over
    from neurolake_spark.lineage.abandoned import report_abandoned

    last_beats: dict[tuple[int, str], float] = {}
    for record in dead:
        holder = (record.pid, record.host)
        last_beats[holder] = max(last_beats.get(holder, 0.0), record.heartbeat_at)
    holders = "; ".join(
        f"pid {pid} on host {host}, last heartbeat "
        f"{datetime.fromtimestamp(beat, UTC).isoformat(timespec='seconds')}"
        for (pid, host), beat in last_beats.items()
    )
    names = sorted({record.name for record in dead})
    locks = f"lock {names[0]}" if len(names) == 1 else f"{len(names)} locks ({names[0]}, ...)"
    report_abandoned(
        settings,
        list({run.run_id: run for record in dead for run in record.runs}.values()),
        f"abandoned: its process ({holders}) is gone or stopped beating and never ended the run; "
        f"run {successor} took over {locks}",
    )


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

    def acquire(
        self, name: str, what: str, owner: str, exclusive: bool = False, runs: Sequence[OpenRun] = ()
    ) -> HeldLock:
        """Take lock ``name`` or raise :class:`LockHeldError` naming its live holder.

        ``what`` describes this holder to others (``a nightly for 2026-11-24``); ``owner`` is
        its run id, ``runs`` the runs it has open. Release the lock with :meth:`HeldLock.release`
        (or use :meth:`hold`). When the lock is taken over from a holder that never released it,
        :attr:`HeldLock.taken_over` is that holder's last record."""
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
                runs=tuple(runs),
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
            abandoned = previous if previous is not None and not previous.released else None
            if abandoned is not None:
                log.warning("lock %s: took over from a stale holder: %s", name, abandoned.describe())
            return HeldLock(path, record, abandoned)
        raise LockError(f"lock {name}: too many processes are racing for it; try again")

    @contextmanager
    def hold(
        self,
        names: Sequence[str],
        what: str,
        owner: str,
        exclusive: bool = False,
        runs: Sequence[OpenRun] = (),
    ) -> Iterator[HeldLocks]:
        """Hold the locks ``names`` while the block runs, with a heartbeat thread refreshing them.

        With ``exclusive``, also take the ``exclusive`` lock and fail if anybody else holds any
        lock; without, fail if an exclusive holder is live. Either failure releases everything
        taken and raises :class:`LockHeldError`. ``runs`` are the holder's open runs."""
        held: list[HeldLock] = []
        try:
            for name in ([EXCLUSIVE] if exclusive else []) + sorted(set(names)):
                held.append(self.acquire(name, what, owner, exclusive, runs))
            self._check_alone(held) if exclusive else self._check_no_exclusive()
        except BaseException:
            for lock in held:
                lock.release()
            raise
        heartbeat = _Heartbeat(held, self.heartbeat_every)
        heartbeat.start()
        try:
            yield HeldLocks(held, runs)
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
    """A lock this process holds; its record file is the only one it ever rewrites.

    ``taken_over``: the last record of the holder this lock was taken over from, when that
    holder never released it (it died, or stopped beating), else None."""

    def __init__(self, path: Path, record: LockRecord, taken_over: LockRecord | None = None):
        self.path = path
        self.record = record
        self.taken_over = taken_over
        self.lost = False
        self._writing = threading.Lock()  # the heartbeat thread and the holder both rewrite

    def _still_ours(self) -> bool:
        numbers = LockRegistry._numbers(self.path.parent)
        return self.path.exists() and bool(numbers) and numbers[-1] == int(self.path.name[:12])

    def _rewrite(self, **changes: Any) -> None:
        """Rewrite the record with ``changes`` and a fresh heartbeat, unless the lock was taken over."""
        with self._writing:
            if self.lost:
                return
            if not self._still_ours():
                self.lost = True
                log.error(
                    "lock %s was taken over by another process while this one held it", self.record.name
                )
                return
            self.record = replace(self.record, heartbeat_at=time.time(), **changes)
            write_atomic(self.path, self.record.to_json())

    def beat(self) -> None:
        """Refresh the heartbeat; if another process took the lock over, remember it was lost."""
        self._rewrite()

    def set_runs(self, runs: Sequence[OpenRun]) -> None:
        """Record ``runs`` as the runs this holder has open."""
        self._rewrite(runs=tuple(runs))

    def release(self) -> None:
        """Mark the record released (the number stays, so numbers are never reused)."""
        self._rewrite(released=True)


class HeldLocks:
    """The locks one holder took (what :meth:`LockRegistry.hold` yields) and its open runs."""

    def __init__(self, locks: list[HeldLock], runs: Sequence[OpenRun] = ()):
        self.locks = locks
        self._runs = list(runs)

    @property
    def taken_over(self) -> list[LockRecord]:
        """The last records of the holders these locks were taken over from (see :class:`HeldLock`)."""
        return [lock.taken_over for lock in self.locks if lock.taken_over is not None]

    @contextmanager
    def running(self, run: JobRun) -> Iterator[None]:
        """List ``run`` as open in the records while the block runs (put the run's ``with`` inside)::

        with locks.running(step_run), step_run:
            ...
        """
        entry = OpenRun.of(run)
        self._set([*self._runs, entry])
        try:
            yield
        finally:
            self._set([r for r in self._runs if r != entry])

    def _set(self, runs: list[OpenRun]) -> None:
        self._runs = runs
        for lock in self.locks:
            try:
                lock.set_runs(runs)
            except OSError as exc:  # as for the heartbeat: a full disk must not kill the run
                log.error("lock %s: cannot record the open runs: %s", lock.record.name, exc)


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
