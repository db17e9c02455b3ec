import pytest
from pydantic import ValidationError

from crane.model.topology import (
    ALIASES,
    DEFAULT_LEVEL_KEYS,
    TopologyLevel,
    TopologyLevels,
    TopologyMode,
    TopologySpec,
)


def levels(*aliases: str) -> TopologyLevels:
    return TopologyLevels(levels=tuple(TopologyLevel(alias=a, key=f"k/{a}") for a in aliases))


def test_defaults_are_widest_first() -> None:
    lv = TopologyLevels()
    assert lv.aliases == ALIASES == ("zone", "block", "rack", "nvlink", "node")
    assert lv.key("zone") == "topology.kubernetes.io/zone"
    assert lv.key("rack") == "crane.io/rack"
    assert lv.key("nvlink") == "nvidia.com/gpu.clique"
    assert lv.key("node") == "kubernetes.io/hostname"
    assert [lv.index(a) for a in ALIASES] == [0, 1, 2, 3, 4]


def test_spec_defaults_and_unknown_alias() -> None:
    spec = TopologySpec()
    assert (spec.level, spec.mode) == ("node", TopologyMode.PREFERRED)
    assert TopologySpec.model_validate({"level": "rack", "mode": "Required"}).mode is (
        TopologyMode.REQUIRED
    )
    with pytest.raises(ValidationError, match="unknown topology level 'pod': use one of zone"):
        TopologySpec(level="pod")
    with pytest.raises(ValidationError, match="mode"):
        TopologySpec.model_validate({"level": "rack", "mode": "Always"})


def test_a_subset_of_levels_is_fine() -> None:
    lv = levels("block", "node")
    assert lv.aliases == ("block", "node")
    assert lv.key("block") == "k/block"


@pytest.mark.parametrize(
    ("aliases", "message"),
    [
        (("rack", "zone", "node"), "ordered widest first"),
        (("zone", "rack"), "last topology level must be 'node'"),
        ((), "last topology level must be 'node'"),
        (("rack", "rack", "node"), "repeat an alias"),
        (("row", "node"), "unknown topology level 'row'"),
    ],
)
def test_level_order_is_validated(aliases: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        levels(*aliases)


def test_with_keys_overrides_provider_keys() -> None:
    gke = "cloud.google.com/gce-topology-block"
    aws = "topology.k8s.aws/network-node-layer-3"
    lv = TopologyLevels.with_keys({"block": gke, "rack": aws})
    assert lv.key("block") == gke
    assert lv.key("rack") == aws
    assert lv.key("zone") == DEFAULT_LEVEL_KEYS["zone"]
    assert lv.aliases == ALIASES
    with pytest.raises(ValueError, match="unknown topology level 'row'"):
        TopologyLevels.with_keys({"row": "x"})


def test_index_of_unconfigured_level_names_the_configured_ones() -> None:
    with pytest.raises(ValueError, match="'rack' is not configured: use one of block, node"):
        levels("block", "node").index("rack")


def test_domain_paths_are_cumulative_and_missing_labels_share_a_domain() -> None:
    lv = TopologyLevels()
    labels = {
        "topology.kubernetes.io/zone": "z1",
        "crane.io/block": "b2",
        "crane.io/rack": "r3",
        "nvidia.com/gpu.clique": "c4",
    }
    assert lv.domain_path("n1", labels) == (
        "z1",
        "z1/b2",
        "z1/b2/r3",
        "z1/b2/r3/c4",
        "z1/b2/r3/c4/n1",
    )
    bare = lv.domain_path("n2", {"crane.io/rack": "r3"})
    assert bare == ("-", "-/-", "-/-/r3", "-/-/r3/-", "-/-/r3/-/n2")
    assert lv.domain_path("n3", {})[:4] == ("-", "-/-", "-/-/-", "-/-/-/-")


def test_domain_path_uses_overridden_keys() -> None:
    lv = TopologyLevels.with_keys({"rack": "example.com/rack"})
    path = lv.domain_path("n1", {"example.com/rack": "r9", "crane.io/rack": "ignored"})
    assert path[2] == "-/-/r9"
