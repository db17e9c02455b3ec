"""``crane tenant share set|get|remove``, the shares column of ``crane tenant list`` and the
tenants under ``crane nodes``' GPU map, against a live Docker-mode server; bad input is one line
and exit 2."""

from __future__ import annotations

import json

from tests.cli.conftest import Crane


def test_tenant_shares_are_set_shown_and_removed(logged_in: Crane) -> None:
    crane = logged_in
    created = crane("tenant", "create", "share-cli")
    assert created.returncode == 0, created.stderr
    try:
        done = crane(
            "tenant", "share", "set", "share-cli", "--gpu-type", "H100", "--nominal", "4",
            "--borrowing-limit", "2", "--weight", "2", "-o", "json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "tenant/share-cli share of H100 set" in done.stderr
        (share,) = json.loads(done.stdout)
        assert (share["gpuType"], share["nominal"], share["borrowingLimit"]) == ("H100", 4, 2)
        assert (share["weight"], share["inUse"], share["borrowing"]) == (2.0, 0, 0)

        listed = crane("tenant", "list")
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if "share-cli" in line)
        assert "H100 4/0" in row

        gpu_map = crane("nodes")
        assert gpu_map.returncode == 0, gpu_map.stderr
        line = next(line for line in gpu_map.stdout.splitlines() if "share-cli" in line)
        assert line.split()[1:] == ["H100", "4", "0", "0"]  # guaranteed, in use, borrowing

        shown = crane("tenant", "share", "get", "share-cli")
        assert shown.returncode == 0, shown.stderr
        assert "GUARANTEED" in shown.stdout.upper()

        bad = crane(
            "tenant", "share", "set", "share-cli", "--gpu-type", "H100", "--nominal", "2",
            "--lending-limit", "4",
        )  # fmt: skip
        assert bad.returncode == 2
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert "lendingLimit 4 is more than nominal 2" in bad.stderr

        missing = crane("tenant", "share", "remove", "share-cli", "--gpu-type", "A100")
        assert missing.returncode != 0
        assert "tenant 'share-cli' has no share of A100" in missing.stderr

        removed = crane("tenant", "share", "remove", "share-cli", "--gpu-type", "H100")
        assert removed.returncode == 0, removed.stderr
        after = crane("tenant", "share", "get", "share-cli", "-o", "json")
        assert json.loads(after.stdout) == []
    finally:
        crane("tenant", "delete", "share-cli", "--yes")
