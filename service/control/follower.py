"""Following the store's ``ACTIVE`` pointer: how an activation on one replica reaches the fleet.

Replicas may share one store folder (a compose named volume, a ReadWriteMany volume,
NFS). The replica whose admin API activates a version swaps itself at once
(``Control.activate``); every other replica notices within ``STORE_POLL_S``, by
polling, since inotify does not see writes made over a network filesystem, and takes
the path an upload takes: the artifact is checked in an isolated process
(``candidate.check``: signature before unpickling, then loading and a warm-up), then
the master reloads it on HUP and forks fresh workers, so in-flight requests finish on
the old version. The follower waits for the master's verdict, not for the old workers
to leave: one of them may be a local activation waiting for the follow lock.

The check costs seconds (a fresh Python loading the model), so a replica runs it when
a version appears in the store, not when it is activated: an activation then costs the
fleet one poll and a reload. Each replica remembers its verdicts (a file of its own).

Every worker runs a follower thread, but one replica moves once: a follower acts only
while holding the replica's follow lock (the local activation path holds it too), and
only if neither its own worker nor the master's last reload already serves the active
version. A version that failed the check here is never loaded here: the replica keeps
serving what it served and says so in its log and in
``model_candidate_checks_total{outcome="rejected"}``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from service.control.controller import Control, read_status, replica_lock
from service.errors import ServiceError

log = logging.getLogger("service.control.follower")


class Follower:
    """Moves this replica to the store's active version when another replica changed it."""

    def __init__(self, control: Control, trigger: Callable[[], int]) -> None:
        assert control.master is not None, "a follower belongs to a gunicorn master"
        self.control = control
        self.master = control.master
        self.trigger = trigger
        """What a local activation does too: HUP to the master (``hup_master``)."""

    def served(self) -> set[str]:
        """What this worker serves and what the master's last reload loaded."""
        status = read_status(self.master)
        loaded = {status["sha256"]} if status.get("ok") else set()
        return {self.control.runtime.model.sha256, *loaded}

    def behind(self) -> str | None:
        """The active version if this replica does not serve it yet and may load it."""
        active = self.control.store.active()
        if active is None or active in self.served():
            return None
        return None if self.control.verdicts().get(active) is False else active

    def unchecked(self) -> str | None:
        """The newest stored version this replica has neither checked nor served."""
        known = {*self.control.verdicts(), *self.served()}
        for record in self.control.store.versions():
            if record["sha256"] not in known:
                return str(record["sha256"])
        return None

    def step(self) -> str | None:
        """One look at the store; the version this replica moved to, if it moved."""
        if self.behind() is None and self.unchecked() is None:
            return None
        with replica_lock(self.master, wait=False) as taken:
            if not taken:
                return None
            active = self.behind()  # again: the lock's holder may have moved the replica
            if active is None:
                if (new := self.unchecked()) is not None:
                    self.check(new)
                return None
            if not self.check(active) or self.behind() != active:
                return None
            try:
                self.control.reload_master(active, self.trigger, self.master)
            except ServiceError as exc:
                log.error("not following the store to version %s: %s", active, exc.message)
                return None
        log.info("followed the store to version %s", active)
        return active

    def check(self, sha256: str) -> bool:
        """The isolated check, once per version and replica (the verdict is remembered)."""
        known = self.control.verdicts().get(sha256)
        if known is not None:
            return known
        try:
            self.control.check_candidate(self.control.store.path(sha256), sha256)
        except ServiceError as exc:
            log.error("version %s may not load here: %s", sha256, exc.message)
            return False
        log.info("checked version %s: it may load here", sha256)
        return True

    def run(self, interval: float) -> None:
        """Poll forever; the first look comes after a random part of ``interval``, so the
        workers of a fleet do not all read the store at the same moment."""
        time.sleep(random.uniform(0, interval))
        while True:
            try:
                self.step()
            except Exception:  # the thread must outlive a bad moment (a store briefly away)
                log.exception("following the store failed; trying again")
            time.sleep(interval)

    def start(self, interval: float) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(interval,), name="follower", daemon=True)
        thread.start()
        return thread
