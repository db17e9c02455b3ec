import pytest
from pydantic import ValidationError

from crane.model.inventory import NodeInventory, parse_islands


def test_parse_islands_ranges_and_singles() -> None:
    assert parse_islands("0-3,4-7", 8) == ((0, 1, 2, 3), (4, 5, 6, 7))
    assert parse_islands(" 0-1, 2-3,4,5 ", 6) == ((0, 1), (2, 3), (4,), (5,))


def test_parse_islands_empty_is_one_island() -> None:
    assert parse_islands("", 4) == ((0, 1, 2, 3),)
    assert parse_islands("  ", 0) == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0-3,3-7", "repeated [3]"),
        ("0-2,4-7", "missing [3]"),
        ("0-8", "out of range [8]"),
        ("0-999999999999", "out of range [8]"),
        ("0-7,999999999999-999999999999", "out of range [999999999999]"),
        ("0-3", "missing [4, 5, 6, 7]"),
    ],
)
def test_parse_islands_overlaps_and_gaps_name_the_ids(text: str, problem: str) -> None:
    """Also a range far past the node's GPUs, named at once without building its ids (it was
    a MemoryError, a 500 of POST /v1/hosts, and an operator stuck on such a node annotation)."""
    with pytest.raises(ValueError) as err:
        parse_islands(text, 8)
    assert "must cover GPU ids 0..7 exactly once" in str(err.value)
    assert problem in str(err.value)


@pytest.mark.parametrize("text", ["0-3;4-7", "a-b", "3-1", "0-3,,4-7", "x"])
def test_parse_islands_bad_syntax_says_how_to_write_it(text: str) -> None:
    with pytest.raises(ValueError, match="write ranges like 0-3,4-7") as err:
        parse_islands(text, 8)
    assert "crane.io/gpu-islands" in str(err.value)


def test_node_defaults_to_one_island() -> None:
    node = NodeInventory(name="n", gpu_product="NVIDIA-H100-80GB-HBM3", gpu_count=4)
    assert node.islands == ((0, 1, 2, 3),)
    assert node.gpu_ids == (0, 1, 2, 3)
    assert node.ready and node.schedulable
    assert NodeInventory(name="cpu").islands == ()


def test_node_islands_must_cover_its_gpus() -> None:
    with pytest.raises(ValidationError, match=r"node n: islands must cover GPU ids 0\.\.7"):
        NodeInventory(name="n", gpu_count=8, islands=((0, 1, 2, 3),))


def test_node_busy_ids_in_range() -> None:
    node = NodeInventory(name="n", gpu_count=4, busy_gpu_ids=frozenset({0, 3}))
    assert node.busy_gpu_ids == {0, 3}
    with pytest.raises(ValidationError, match=r"busy GPU ids \[4, 9\] are out of range"):
        NodeInventory(name="n", gpu_count=4, busy_gpu_ids=frozenset({9, 4}))


def test_node_is_frozen_and_strict() -> None:
    node = NodeInventory(name="n", gpu_count=1)
    with pytest.raises(ValidationError):
        node.gpu_count = 2
    with pytest.raises(ValidationError, match="extra"):
        NodeInventory(name="n", gpuCount=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        NodeInventory(name="n", gpu_count=-1)
