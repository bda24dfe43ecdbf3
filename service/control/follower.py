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

Every worker runs a follower thread, but one replica moves once: a follower acts only
while holding the replica's follow lock (the local activation path holds it too), and
only if neither its own worker nor the master's last reload already serves the active
version. A version that failed to load here is not retried until ``ACTIVE`` moves on:
the replica keeps serving what it served, says so in its log and in
``model_reloads_total{result="failure"}``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from service.control import candidate
from service.control.controller import Control, read_status, replica_lock
from service.errors import ServiceError

log = logging.getLogger("service.control.follower")


class Follower:
    """Moves this replica to the store's active version when another replica changed it."""

    def __init__(self, control: Control, master: int, trigger: Callable[[], int]) -> None:
        self.control = control
        self.master = master
        self.trigger = trigger
        """What a local activation does too: HUP to the master (``hup_master``)."""
        self._failed: str | None = None

    def master_serves(self) -> str | None:
        """The version the master's last reload loaded, None before any (or a failed one)."""
        status = read_status(self.master)
        return status.get("sha256") if status.get("ok") else None

    def behind(self) -> str | None:
        """The active version if this replica does not serve it yet (and did not fail to
        load it), else None."""
        active = self.control.store.active()
        if active != self._failed:
            self._failed = None
        served = {self.control.runtime.model.sha256, self.master_serves(), self._failed}
        return None if active is None or active in served else active

    def step(self) -> str | None:
        """One look at the store; the version this replica moved to, if it moved."""
        if self.behind() is None:
            return None
        with replica_lock(self.master, wait=False) as taken:
            active = self.behind() if taken else None  # again: the lock's holder may have moved
            if active is None:
                return None
            settings = self.control.settings
            try:
                candidate.check(
                    self.control.store.path(active),
                    timeout=settings.candidate_timeout_s,
                    memory_mb=settings.candidate_memory_mb,
                    fast_path=settings.fast_path,
                )
                if self.behind() != active:  # ACTIVE moved on while the check ran
                    return None
                self.control.reload_master(active, self.trigger, self.master)
            except ServiceError as exc:
                log.error("not following the store to version %s: %s", active, exc.message)
                self._failed = active
                return None
        log.info("followed the store to version %s", active)
        return active

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
