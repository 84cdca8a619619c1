"""The private servers' start-up: where a Postgres cluster's data may live."""

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from localaws import servers


@pytest.fixture
def private_folder():
    folder = Path(tempfile.mkdtemp(dir="/tmp"))  # 0700, owned by whoever runs the tests
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_private_parent_stops_another_user_but_not_its_owner(private_folder):
    me = pwd.getpwuid(os.geteuid())
    other = next(u for u in pwd.getpwall() if u.pw_uid != me.pw_uid and u.pw_name == "nobody")
    inside = private_folder / "data" / "postgres"
    assert servers._reachable(inside, me)
    assert not servers._reachable(inside, other)
    private_folder.chmod(0o755)
    assert servers._reachable(inside, other)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to another user")
def test_as_root_a_data_dir_postgres_cannot_reach_moves_to_a_stable_one(private_folder):
    data_dir = private_folder / "postgres"
    moved = servers._reachable_data_dir(data_dir)
    assert moved != data_dir and moved.parent == Path(tempfile.gettempdir())
    assert servers._reachable_data_dir(data_dir) == moved  # the same folder every run
    private_folder.chmod(0o755)
    assert servers._reachable_data_dir(data_dir) == data_dir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_tethered_server_stops_when_the_pipe_to_its_starter_closes(tmp_path):
    """A starter killed outright closes the pipe too: the server must not outlive it."""
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "pid"
    child = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    tether = subprocess.Popen(
        [sys.executable, "-m", "localaws.tethered", sys.executable, "-c", child],
        stdin=subprocess.PIPE, cwd=servers.PROJECT_DIR,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    server = int(pidfile.read_text())
    assert _alive(server) and tether.poll() is None

    tether.stdin.close()

    assert tether.wait(15) == 128 + 15  # the server was stopped by SIGTERM, and said so
    assert not _alive(server)


def test_sqs_server_is_moto_unless_localstack_is_asked_for(monkeypatch):
    monkeypatch.delenv("LOCALAWS_SQS", raising=False)
    assert isinstance(servers.sqs_server(), servers.SqsServer)
    monkeypatch.setenv("LOCALAWS_SQS", "localstack")
    monkeypatch.setenv("LOCALSTACK_VENV", "/nonexistent")
    with pytest.raises(servers.ServerFailed, match="make localstack"):
        servers.sqs_server()
    with pytest.raises(servers.ServerFailed, match="unknown SQS server 'sqlite'"):
        servers.sqs_server("sqlite")
