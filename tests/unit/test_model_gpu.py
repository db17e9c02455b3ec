import pytest

from crane.model.gpu import (
    UnknownGpuTypeError,
    family_of,
    gpu_type_matches,
    gpu_types,
    normalize_gpu_type,
)

H100 = "NVIDIA-H100-80GB-HBM3"
H200 = "NVIDIA-H200-141GB-HBM3e"


@pytest.mark.parametrize(
    ("product", "family"),
    [
        (H100, "H100"),
        (H200, "H200"),
        ("NVIDIA-A100-SXM4-80GB", "A100"),
        ("NVIDIA-L40S", "L40S"),
        ("NVIDIA-L40", "L40"),
        ("NVIDIA-A10G", "A10G"),
        ("NVIDIA-A10", "A10"),
        ("NVIDIA-GH200-480GB", "GH200"),
        ("NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", "RTX-PRO-6000"),
        ("NVIDIA-RTX-6000-Ada-Generation", "RTX-6000"),
        ("Tesla-T4", "T4"),
        ("NVIDIA-Quadro-9000", "9000"),
        ("Tesla-P40", "P40"),
        ("AMD-Instinct-MI300X", "MI300X"),
        ("NVIDIA-GeForce-RTX-4090", "RTX-4090"),
        ("", None),
    ],
)
def test_family_of_products(product: str, family: str | None) -> None:
    assert family_of(product) == family


def test_family_matches_its_products_only() -> None:
    assert gpu_type_matches("H100", H100)
    assert gpu_type_matches("h100", H100)
    assert not gpu_type_matches("H100", H200)
    assert not gpu_type_matches("H200", H100)


@pytest.mark.parametrize(
    ("family", "matches", "not_matches"),
    [
        ("L40", "NVIDIA-L40", "NVIDIA-L40S"),
        ("L40S", "NVIDIA-L40S", "NVIDIA-L40"),
        ("A10", "NVIDIA-A10", "NVIDIA-A10G"),
        ("A10G", "NVIDIA-A10G", "NVIDIA-A10"),
    ],
)
def test_family_prefixes_do_not_leak(family: str, matches: str, not_matches: str) -> None:
    assert gpu_type_matches(family, matches)
    assert not gpu_type_matches(family, not_matches)


def test_full_product_matches_exactly() -> None:
    assert gpu_type_matches(H100, H100)
    assert not gpu_type_matches(H100, "NVIDIA-H100-80GB-PCIe")
    assert not gpu_type_matches("NVIDIA-H100-80GB-PCIe", H100)


def test_full_product_ignores_case() -> None:
    assert gpu_type_matches(H100.lower(), H100)
    assert not gpu_type_matches("nvidia-h100-80gb-pcie", H100)


def test_normalize_family_upper_product_as_given() -> None:
    assert normalize_gpu_type(" h100 ") == "H100"
    assert normalize_gpu_type("a10g") == "A10G"
    assert normalize_gpu_type(H100) == H100


@pytest.mark.parametrize("bad", ["H100;rm", "-H100", "H100/80GB"])
def test_names_no_label_can_hold_are_refused_with_a_remedy(bad: str) -> None:
    with pytest.raises(UnknownGpuTypeError) as err:
        normalize_gpu_type(bad)
    message = str(err.value)
    assert repr(bad) in message
    assert "nvidia.com/gpu.product" in message
    assert "H100" in message


@pytest.mark.parametrize(
    ("request_", "product"),
    [
        ("Tesla-P40", "Tesla-P40"),
        ("P40", "Tesla-P40"),
        ("p40", "Tesla P40"),
        ("NVIDIA-RTX-A6000", "NVIDIA-RTX-A6000"),
        ("RTX-A6000", "NVIDIA-RTX-A6000"),
        ("NVIDIA-GeForce-RTX-4090", "NVIDIA-GeForce-RTX-4090"),
        ("RTX-4090", "NVIDIA GeForce RTX 4090"),
        ("Tesla-K80", "Tesla-K80"),
        ("K80", "Tesla-K80"),
        ("AMD-Instinct-MI300X", "AMD-Instinct-MI300X"),
        ("MI300X", "AMD-Instinct-MI300X"),
        ("mi300x", "AMD Instinct MI300X"),
        ("H100-80GB", "NVIDIA-H100-80GB-HBM3"),
        ("A100-80GB", "NVIDIA-A100-SXM4-80GB"),
        ("A100-SXM4", "NVIDIA-A100-SXM4-80GB"),
        ("RTX-6000", "NVIDIA-RTX-6000-Ada-Generation"),
        ("V100M16", "V100M16"),
        ("G2", "G2"),
    ],
)
def test_any_product_a_node_advertises_can_be_requested(request_: str, product: str) -> None:
    assert normalize_gpu_type(request_)
    assert gpu_type_matches(normalize_gpu_type(request_), product)


@pytest.mark.parametrize(
    ("request_", "product"),
    [
        ("A100-40GB", "NVIDIA-A100-SXM4-80GB"),
        ("RTX-6000", "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition"),
        ("A10", "NVIDIA-A100-SXM4-80GB"),
        ("MI300X", "AMD-Instinct-MI300A"),
        ("V100", "V100M16"),
        ("P40", "Tesla-P4"),
    ],
)
def test_family_rule_does_not_leak(request_: str, product: str) -> None:
    assert not gpu_type_matches(request_, product)


def test_ordered_list_keeps_order_and_drops_repeats() -> None:
    assert normalize_gpu_type("h100, A100,H100") == "H100,A100"
    assert normalize_gpu_type(["h100", "NVIDIA-A100-SXM4-80GB"]) == "H100,NVIDIA-A100-SXM4-80GB"
    assert gpu_types("H100,A100") == ("H100", "A100")
    assert gpu_type_matches("H100,A100", "NVIDIA-A100-SXM4-80GB")
    assert not gpu_type_matches("H100,A100", "NVIDIA-L40S")


def test_too_long_a_list_is_an_error() -> None:
    with pytest.raises(UnknownGpuTypeError, match="at most 8"):
        normalize_gpu_type([f"T{i}" for i in range(9)])


def test_empty_type_is_an_error() -> None:
    with pytest.raises(UnknownGpuTypeError, match="gpuType is empty"):
        normalize_gpu_type("  ")
    assert issubclass(UnknownGpuTypeError, ValueError)
