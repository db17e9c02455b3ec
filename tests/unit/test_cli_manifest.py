"""YAML manifests in the CRD shape, as ``-f`` reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crane.cli.manifest import ManifestError, load_manifests, parse_manifests
from crane.model.specs import CargoSpec, MiniClusterSpec

MC = """
apiVersion: crane.io/v1alpha1
kind: MiniCluster
metadata: {name: study}
spec:
  gpuType: H100
  gpus: {min: 8, max: 16}
  topology: {level: rack, mode: Required}
"""
CARGO = """
apiVersion: crane.io/v1alpha1
kind: Cargo
metadata: {name: trial-1}
spec: {miniCluster: study, replicas: 2, gpusPerReplica: 4}
"""


def test_two_documents_in_order() -> None:
    found = parse_manifests(MC + "---" + CARGO, "x.yaml")
    assert [(m.kind, m.name) for m in found] == [("MiniCluster", "study"), ("Cargo", "trial-1")]
    assert isinstance(found[0].spec, MiniClusterSpec) and found[0].spec.gpus.max == 16
    assert isinstance(found[1].spec, CargoSpec) and found[1].spec.gpus == 8


def test_list_kind() -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [yaml.safe_load(MC), yaml.safe_load(CARGO)]}
    assert len(parse_manifests(yaml.safe_dump(doc))) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MC.replace("crane.io/v1alpha1", "v1"), "use crane.io/v1alpha1"),
        (MC.replace("MiniCluster", "Pod"), "use MiniCluster or Cargo"),
        (MC.replace("metadata: {name: study}", "metadata: {}"), "metadata.name is missing"),
        (MC.replace("min: 8", "min: 32"), "spec.gpus"),
        (MC.replace("level: rack", "level: row"), "spec.topology.level"),
        ("", "no manifest found"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_manifests_say_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message) as info:
        parse_manifests(text, "mc.yaml")
    assert str(info.value).startswith("mc.yaml")


def test_second_document_is_named() -> None:
    with pytest.raises(ManifestError, match=r"\(document 2\)"):
        parse_manifests(MC + "---" + CARGO.replace("replicas: 2", "replicas: -1"), "f.yaml")


def test_files_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "mc.yaml"
    path.write_text(MC)
    assert load_manifests([str(path)])[0].name == "study"
    with pytest.raises(FileNotFoundError):
        load_manifests([str(tmp_path / "nope.yaml")])
