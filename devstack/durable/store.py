"""SQLite persistence for the local Durable runner: instances, history and every pending work item."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DB_NAME = "durable.sqlite3"

ACTIVE_STATUSES = ("Pending", "Running", "ContinuedAsNew", "Suspended")
TERMINAL_STATUSES = ("Completed", "Failed", "Terminated", "Canceled")
ALL_STATUSES = ACTIVE_STATUSES + TERMINAL_STATUSES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created REAL NOT NULL,
    last_updated REAL NOT NULL,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    next_task_id INTEGER NOT NULL DEFAULT 0,
    last_started REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE TABLE IF NOT EXISTS actions (
    instance_id TEXT NOT NULL, idx INTEGER NOT NULL, signature TEXT NOT NULL, task_id INTEGER,
    PRIMARY KEY (instance_id, idx)
);
CREATE TABLE IF NOT EXISTS tasks (
    instance_id TEXT NOT NULL, task_id INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT,
    input TEXT, retry TEXT, child_id TEXT, open INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (instance_id, task_id)
);
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT,
    kind TEXT NOT NULL, event TEXT NOT NULL, solo INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inbox_instance ON inbox (instance_id, seq);
CREATE TABLE IF NOT EXISTS activity_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL, name TEXT NOT NULL, input TEXT, solo INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL, fire_at REAL NOT NULL, fire_at_text TEXT NOT NULL,
    solo INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (fire_at);
"""


class ConflictError(Exception):
    """A start refused because an instance with that id exists in a state the start may not replace.

    DTFx's OrchestrationAlreadyExistsException, with its message; `status` is the existing instance's.
    """

    def __init__(self, instance_id: str, status: str) -> None:
        super().__init__(f"An Orchestration instance with the status {status} already exists.")
        self.instance_id = instance_id
        self.status = status


@dataclass
class Message:
    """One inbox item: a history event (or a terminate/suspend/resume request) for an instance."""

    seq: int
    instance_id: str
    execution_id: str | None
    kind: str
    event: dict
    solo: bool


@dataclass
class Commit:
    """Everything one episode changes, applied in one transaction so a kill never leaves half of it."""

    instance_id: str
    execution_id: str
    consumed: list[int] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    instance: dict[str, Any] = field(default_factory=dict)
    actions: list[tuple[int, str, int | None]] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    closed_tasks: list[int] = field(default_factory=list)
    activities: list[tuple[int, str, str | None, bool]] = field(default_factory=list)
    timers: list[tuple[int, float, str, bool]] = field(default_factory=list)
    cancelled_timers: list[int] = field(default_factory=list)
    children: list[tuple[dict, dict, bool]] = field(default_factory=list)
    messages: list[tuple[str, str | None, str, dict, bool]] = field(default_factory=list)
    reset_execution: str | None = None  # continue-as-new: the new execution id
    finished: bool = False  # terminal: drop whatever work is still queued for the instance


class Store:
    """One SQLite file in WAL mode; one connection, one lock: a single writer, as the brief asks."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ---- instances -------------------------------------------------------------------------------

    def instance(self, instance_id: str) -> dict | None:
        rows = self.query("SELECT * FROM instances WHERE instance_id = ?", (instance_id,))
        return dict(rows[0]) if rows else None

    def create_instance(
        self,
        *,
        instance_id: str,
        name: str,
        execution_id: str,
        input_json: str | None,
        now: float,
        started_event: dict,
        parent: dict | None = None,
        replaceable: tuple[str, ...] = TERMINAL_STATUSES,
    ) -> None:
        """Create an instance and queue its ExecutionStarted, or replace an existing one whose status is in
        `replaceable`; any other existing instance raises ConflictError. Check and write are one
        transaction (BEGIN IMMEDIATE), so of two concurrent starts of one id exactly one creates it."""
        with self.tx() as db:
            _create(
                db,
                instance_id=instance_id,
                name=name,
                execution_id=execution_id,
                input_json=input_json,
                now=now,
                started_event=started_event,
                parent=parent,
                replaceable=replaceable,
            )

    def history(self, instance_id: str) -> list[dict]:
        rows = self.query("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
        return [json.loads(r["event"]) for r in rows]

    def actions(self, instance_id: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM actions WHERE instance_id = ? ORDER BY idx", (instance_id,))

    def tasks(self, instance_id: str) -> dict[int, dict]:
        rows = self.query("SELECT * FROM tasks WHERE instance_id = ?", (instance_id,))
        return {r["task_id"]: dict(r) for r in rows}

    def list_instances(
        self,
        *,
        created_from: float | None = None,
        created_to: float | None = None,
        statuses: list[str] | None = None,
        prefix: str | None = None,
    ) -> list[dict]:
        sql, args = "SELECT * FROM instances WHERE 1=1", []
        if created_from is not None:
            sql += " AND created >= ?"
            args.append(created_from)
        if created_to is not None:
            sql += " AND created <= ?"
            args.append(created_to)
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        if prefix:
            sql += " AND substr(instance_id, 1, ?) = ?"
            args.extend([len(prefix), prefix])
        return [dict(r) for r in self.query(sql + " ORDER BY created, instance_id", tuple(args))]

    def purge(self, instance_ids: list[str], statuses: tuple[str, ...] = TERMINAL_STATUSES) -> int:
        """Delete the instances (and all they own) whose status is still in `statuses` when the transaction
        runs: one started again meanwhile is kept. Returns how many were deleted."""
        deleted = 0
        with self.tx() as db:
            for iid in instance_ids:
                row = db.execute("SELECT status FROM instances WHERE instance_id = ?", (iid,)).fetchone()
                if row is None or row["status"] not in statuses:
                    continue
                _wipe(db, iid)
                db.execute("DELETE FROM instances WHERE instance_id = ?", (iid,))
                deleted += 1
        return deleted

    # ---- inbox and work items ------------------------------------------------------------------

    def post(self, instance_id: str, execution_id: str | None, kind: str, event: dict, solo: bool = False) -> None:
        with self.tx() as db:
            _post(db, instance_id, execution_id, kind, event, solo=solo)

    def inbox(self, instance_id: str) -> list[Message]:
        rows = self.query("SELECT * FROM inbox WHERE instance_id = ? ORDER BY seq", (instance_id,))
        return [
            Message(r["seq"], r["instance_id"], r["execution_id"], r["kind"], json.loads(r["event"]), bool(r["solo"]))
            for r in rows
        ]

    def runnable_instances(self) -> list[str]:
        """Instances with inbox items they can act on (a suspended one only hears resume/terminate)."""
        rows = self.query(
            "SELECT i.instance_id, MIN(i.seq) AS first FROM inbox i JOIN instances s USING (instance_id) "
            "WHERE s.status != 'Suspended' OR i.kind IN ('resume', 'terminate') "
            "GROUP BY i.instance_id ORDER BY first"
        )
        return [r["instance_id"] for r in rows]

    def drop_messages(self, seqs: list[int]) -> None:
        with self.tx() as db:
            db.executemany("DELETE FROM inbox WHERE seq = ?", [(s,) for s in seqs])

    def queued_activities(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM activity_queue ORDER BY id")

    def complete_activity(self, row_id: int, event: dict, solo: bool) -> bool:
        """Swap a queued activity for its completion message; False when the work was withdrawn."""
        with self.tx() as db:
            row = db.execute("SELECT * FROM activity_queue WHERE id = ?", (row_id,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM activity_queue WHERE id = ?", (row_id,))
            _post(db, row["instance_id"], row["execution_id"], "event", event, solo=solo)
            return True

    def quiet(self, now: float) -> bool:
        """One consistent look (under the writer's lock): no queued work and no timer due at `now`."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM activity_queue LIMIT 1").fetchone():
                return False
            if self.runnable_instances():
                return False
            due = self.next_timer()
            return due is None or due > now

    def next_timer(self) -> float | None:
        rows = self.query("SELECT MIN(fire_at) AS t FROM timers")
        return rows[0]["t"] if rows and rows[0]["t"] is not None else None

    def fire_due_timers(self, now: float, make_event: Any) -> int:
        """Turn every timer due at `now` into a TimerFired message, atomically per batch."""
        with self.tx() as db:
            rows = db.execute("SELECT * FROM timers WHERE fire_at <= ? ORDER BY fire_at, id", (now,)).fetchall()
            for row in rows:
                db.execute("DELETE FROM timers WHERE id = ?", (row["id"],))
                _post(
                    db,
                    row["instance_id"],
                    row["execution_id"],
                    "event",
                    make_event(row["task_id"], row["fire_at"], row["fire_at_text"]),
                    solo=bool(row["solo"]),
                )
        return len(rows)

    # ---- episode commit ------------------------------------------------------------------------

    def apply(self, commit: Commit) -> None:
        with self.tx() as db:
            apply_commit(db, commit)


def _post(
    db: sqlite3.Connection, instance_id: str, execution_id: str | None, kind: str, event: dict, *, solo: bool
) -> None:
    db.execute(
        "INSERT INTO inbox (instance_id, execution_id, kind, event, solo) VALUES (?, ?, ?, ?, ?)",
        (instance_id, execution_id, kind, json.dumps(event), int(solo)),
    )


def _wipe(db: sqlite3.Connection, instance_id: str) -> None:
    for table in ("history", "actions", "tasks", "inbox", "activity_queue", "timers"):
        db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))  # noqa: S608


def _create(
    db: sqlite3.Connection,
    *,
    instance_id: str,
    name: str,
    execution_id: str,
    input_json: str | None,
    now: float,
    started_event: dict,
    parent: dict | None,
    replaceable: tuple[str, ...] = TERMINAL_STATUSES,
) -> None:
    row = db.execute("SELECT status FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
    if row is not None and row["status"] not in replaceable:
        raise ConflictError(instance_id, row["status"])
    _wipe(db, instance_id)
    db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,))
    parent = parent or {}
    db.execute(
        "INSERT INTO instances (instance_id, name, execution_id, status, input, created, last_updated, "
        "parent_instance_id, parent_execution_id, parent_task_id) "
        "VALUES (?, ?, ?, 'Pending', ?, ?, ?, ?, ?, ?)",
        (
            instance_id,
            name,
            execution_id,
            input_json,
            now,
            now,
            parent.get("instance_id"),
            parent.get("execution_id"),
            parent.get("task_id"),
        ),
    )
    _post(db, instance_id, execution_id, "event", started_event, solo=False)


def apply_commit(db: sqlite3.Connection, c: Commit) -> None:
    iid = c.instance_id
    current = db.execute("SELECT execution_id FROM instances WHERE instance_id = ?", (iid,)).fetchone()
    if current is None or current["execution_id"] != c.execution_id:
        # The instance was purged or replaced (a start under AnyState) while this episode ran: what the
        # episode decided belongs to an execution that no longer exists, as its stale messages do.
        return
    db.executemany("DELETE FROM inbox WHERE seq = ?", [(s,) for s in c.consumed])
    if c.reset_execution is not None or c.finished:
        for table in ("activity_queue", "timers"):
            db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (iid,))  # noqa: S608
    if c.reset_execution is not None:
        for table in ("history", "actions", "tasks", "inbox"):
            db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (iid,))  # noqa: S608
    else:
        start = db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM history WHERE instance_id = ?", (iid,)).fetchone()[0]
        db.executemany(
            "INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
            [(iid, start + n, json.dumps(e)) for n, e in enumerate(c.events)],
        )
        db.executemany(
            "INSERT INTO actions (instance_id, idx, signature, task_id) VALUES (?, ?, ?, ?)",
            [(iid, idx, sig, tid) for idx, sig, tid in c.actions],
        )
        db.executemany(
            "INSERT OR REPLACE INTO tasks (instance_id, task_id, kind, name, input, retry, child_id, open) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            [
                (
                    iid,
                    t["task_id"],
                    t["kind"],
                    t.get("name"),
                    t.get("input"),
                    json.dumps(t["retry"]) if t.get("retry") else None,
                    t.get("child_id"),
                )
                for t in c.tasks
            ],
        )
        db.executemany(
            "UPDATE tasks SET open = 0 WHERE instance_id = ? AND task_id = ?", [(iid, t) for t in c.closed_tasks]
        )
        db.executemany(
            "INSERT INTO activity_queue (instance_id, execution_id, task_id, name, input, solo) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(iid, c.execution_id, tid, name, inp, int(solo)) for tid, name, inp, solo in c.activities],
        )
        db.executemany(
            "INSERT INTO timers (instance_id, execution_id, task_id, fire_at, fire_at_text, solo) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(iid, c.execution_id, tid, at, text, int(solo)) for tid, at, text, solo in c.timers],
        )
        db.executemany(
            "DELETE FROM timers WHERE instance_id = ? AND task_id = ?", [(iid, t) for t in c.cancelled_timers]
        )
        if c.finished:
            db.execute("UPDATE tasks SET open = 0 WHERE instance_id = ?", (iid,))
    for create, failed_event, solo in c.children:
        try:
            _create(db, **create)
        except ConflictError as exc:
            # The parent's task fails when the child id belongs to a live instance, as on the host.
            _post(db, iid, c.execution_id, "event", {**failed_event, "Reason": str(exc)}, solo=solo)
    for target, execution_id, kind, event, solo in c.messages:
        _post(db, target, execution_id, kind, event, solo=solo)
    if c.instance:
        cols = ", ".join(f"{k} = ?" for k in c.instance)
        db.execute(
            f"UPDATE instances SET {cols} WHERE instance_id = ?",  # noqa: S608
            (*c.instance.values(), iid),
        )
