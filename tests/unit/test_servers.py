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
