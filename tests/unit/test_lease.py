"""The driver lease (tao_automl.store.lease) on a local folder: one live driver per
experiment; a released, expired or dead-pid lease is taken over, a live one
is refused; of several drivers breaking one stale lease exactly one wins."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from tao_automl.errors import WorkspaceError
from tao_automl.store.lease import LEASE_FILE, DriverLease
from tao_automl.store.workspace import Workspace


def read_lease(ws: Workspace) -> dict:
    return json.loads(ws.read_bytes(LEASE_FILE))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def plant(ws: Workspace, **fields) -> None:
    rec = {"owner": "x", "host": socket.gethostname(), "pid": os.getpid(), "refreshed": time.time(),
           "ttl_s": 30.0, "released": False}
    rec.update(fields)
    ws.write_json(LEASE_FILE, rec)


def test_second_driver_is_refused_naming_the_holder(tmp_path):
    ws = Workspace(tmp_path / "exp")
    first = DriverLease(ws, ttl_s=30).acquire()
    try:
        with pytest.raises(WorkspaceError) as err:
            DriverLease(ws, ttl_s=30).acquire()
        msg = str(err.value)
        assert ws.path(LEASE_FILE) in msg and f"pid {os.getpid()}" in msg and socket.gethostname() in msg
        assert "tao-automl cancel" in msg
        assert read_lease(ws)["owner"] == first.owner  # the refused driver changed nothing
    finally:
        first.release()
    assert read_lease(ws)["released"] is True
    second = DriverLease(ws, ttl_s=30).acquire()  # a released lease is free
    assert read_lease(ws)["owner"] == second.owner
    second.release()


def test_heartbeat_keeps_the_lease_alive(tmp_path):
    ws = Workspace(tmp_path / "exp")
    lease = DriverLease(ws, ttl_s=0.6).acquire()
    try:
        t0 = read_lease(ws)["refreshed"]
        time.sleep(1.5)  # beats every 0.2 s; the lease never expires
        assert read_lease(ws)["refreshed"] > t0
        other = DriverLease(ws, ttl_s=0.6)
        other.host = "elsewhere"  # no dead-pid shortcut: only expiry could free it
        with pytest.raises(WorkspaceError):
            other.acquire()
    finally:
        lease.release()


def test_expired_lease_of_another_host_is_taken_over(tmp_path):
    ws = Workspace(tmp_path / "exp")
    plant(ws, host="other-host", pid=1, refreshed=time.time() - 60, ttl_s=30)
    lease = DriverLease(ws, ttl_s=30).acquire()
    assert read_lease(ws)["owner"] == lease.owner
    lease.release()


def test_live_lease_of_another_host_is_refused_until_it_expires(tmp_path):
    ws = Workspace(tmp_path / "exp")
    plant(ws, host="other-host", pid=1, refreshed=time.time(), ttl_s=1.0)
    with pytest.raises(WorkspaceError, match="other-host"):
        DriverLease(ws, ttl_s=30).acquire()
    time.sleep(1.2)
    DriverLease(ws, ttl_s=30).acquire().release()


def test_dead_pid_on_this_host_is_taken_over_at_once(tmp_path):
    ws = Workspace(tmp_path / "exp")
    plant(ws, pid=dead_pid(), refreshed=time.time(), ttl_s=3600)
    lease = DriverLease(ws).acquire()
    assert read_lease(ws)["pid"] == os.getpid()
    lease.release()


def test_killed_but_unreaped_driver_counts_as_dead(tmp_path):
    ws = Workspace(tmp_path / "exp")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        plant(ws, pid=proc.pid, refreshed=time.time(), ttl_s=3600)
        with pytest.raises(WorkspaceError):
            DriverLease(ws).acquire()
        proc.kill()
        time.sleep(0.3)  # a zombie now: not reaped yet
        DriverLease(ws).acquire().release()
    finally:
        proc.kill()
        proc.wait()


def test_recycled_pid_is_not_the_owner(tmp_path):
    ws = Workspace(tmp_path / "exp")
    plant(ws, pid=os.getpid(), pid_start="1", refreshed=time.time(), ttl_s=3600)
    DriverLease(ws).acquire().release()


def test_lost_lease_is_noticed_by_the_heartbeat(tmp_path):
    ws = Workspace(tmp_path / "exp")
    lease = DriverLease(ws, ttl_s=30).acquire()
    try:
        plant(ws, owner="thief", host="other-host")
        assert lease.refresh() is False and lease.lost
        lease.release()
        assert read_lease(ws)["owner"] == "thief"  # release never overwrites another owner's lease
    finally:
        lease.release()


@pytest.mark.parametrize("stale", ["absent", "dead"])
def test_racing_drivers_exactly_one_wins(tmp_path, stale):
    ws = Workspace(tmp_path / "exp")
    if stale == "dead":
        plant(ws, pid=dead_pid())
    won, refused = [], []
    barrier = threading.Barrier(8)

    def contend() -> None:
        lease = DriverLease(ws, ttl_s=30)
        barrier.wait()
        try:
            won.append(lease.acquire())
        except WorkspaceError:
            refused.append(lease)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 7
    assert read_lease(ws)["owner"] == won[0].owner
    won[0].release()


def test_bad_ttl_environment_value(tmp_path, monkeypatch):
    monkeypatch.setenv("TAO_AUTOML_LEASE_TTL_S", "soon")
    with pytest.raises(WorkspaceError, match="TAO_AUTOML_LEASE_TTL_S.*soon"):
        DriverLease(Workspace(tmp_path / "exp"))
