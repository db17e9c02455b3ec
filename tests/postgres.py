"""A throwaway PostgreSQL cluster of the tests' own (the Debian server binaries), and fresh
databases in it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port, unavailable


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster on a free port; yields a URL without a database name."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    initdb = shutil.which("initdb") or (bins and f"{bins[-1]}/initdb")
    if not initdb or not Path(initdb).exists():
        unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    bindir = Path(str(initdb)).resolve().parent
    root = Path(
        tempfile.mkdtemp(prefix="crane-pg-")
    )  # pytest's tmp dirs are 0700: not for postgres
    root.chmod(0o777)
    data = root / "data"
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    port = free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "crane", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data)]
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"
    subprocess.run([*ctl, "-o", opts, "-l", str(root / "log"), "-w", "start"], check=True)
    try:
        yield f"postgresql://crane@127.0.0.1:{port}"
    finally:
        subprocess.run([*ctl, "-m", "fast", "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def new_database(base: str) -> str:
    """A fresh, empty database in the cluster at ``base``; its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"
