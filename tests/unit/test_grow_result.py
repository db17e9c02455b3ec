"""The one rule for a grow's outcome, as both backends answer it."""

from __future__ import annotations

import pytest

from crane.api.schemas import CargoGrant, GrowOutcome, GrowResult


def _grant(added: bool) -> CargoGrant:
    if added:
        return CargoGrant(name="mc-0", gpus=2, added=True, phase="Running")
    return CargoGrant(name=None, gpus=2, added=False, phase="Denied", reason="over gpus.max")


@pytest.mark.parametrize(
    ("added", "outcome"),
    [
        ([True, True], GrowOutcome.GRANTED),
        ([True, False], GrowOutcome.PARTIAL),
        ([False, False], GrowOutcome.DENIED),
    ],
)
def test_outcome_follows_how_many_cargos_were_added(
    added: list[bool], outcome: GrowOutcome
) -> None:
    grants = [_grant(a) for a in added]
    reasons = ["over gpus.max"] * added.count(False)
    result = GrowResult.of(grants, reasons, timed_out=True)
    assert result.model_dump(by_alias=True) == {
        "result": outcome,
        "requested": 2,
        "added": added.count(True),
        "cargos": [g.model_dump(by_alias=True) for g in grants],
        "reasons": reasons,
        "timedOut": True,
    }
