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
        # YAML reads these names as a date, a boolean and a number: saying "missing" misled
        (MC.replace("name: study", "name: 2030-01-01"), r"metadata.name 2030-01-01 is a date"),
        (MC.replace("name: study", "name: yes"), "metadata.name True is a bool, not text"),
        (MC.replace("name: study", "name: 0x1f"), "metadata.name 31 is a int, not text: quote it"),
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


def _bomb(levels: int) -> str:
    """A billion-laughs document: a few hundred bytes that alias into 10**levels strings."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    junk = f"template: {{spec: {{junk: *l{levels - 1}}}}}, "
    return "\n".join(lines) + CARGO.replace("spec: {", "spec: {" + junk)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (_bomb(8), "expands to more than 1000000 values"),
        ("a: &a [*a]\n", "an alias refers to itself"),
        ("[" * 5000 + "]" * 5000, "nested deeper than 100 levels"),
        (MC + "spec: {gpuType: A100}\n", "found the key 'spec' twice"),
        (MC.replace("min: 8", "min: " + "9" * 5000), "the number is too long"),
    ],
)
def test_hostile_yaml_is_refused_at_once_naming_the_file(text: str, says: str) -> None:
    """A YAML bomb, a self-referring alias, absurd nesting and a key given twice are refused
    as invalid YAML in the named file: no minutes of validation, no RecursionError, and never
    a manifest built from the last of two keys."""
    with pytest.raises(yaml.YAMLError, match=says) as info:
        parse_manifests(text, "evil.yaml")
    assert "evil.yaml" in str(info.value)


def test_aliases_and_merge_keys_within_reason_still_work() -> None:
    text = "base: &gpus {min: 1, max: 2}\n" + MC.replace("gpus: {min: 8, max: 16}", "gpus: *gpus")
    text += "\n---\n" + CARGO.replace("spec: {", "spec: {<<: {replicas: 5}, ")
    found = parse_manifests(text)
    assert isinstance(found[0].spec, MiniClusterSpec) and found[0].spec.gpus.max == 2
    assert isinstance(found[1].spec, CargoSpec) and found[1].spec.replicas == 2


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (MC.replace("metadata: {name: study}", "metadata: [study]"), "metadata must be a mapping"),
        ("apiVersion: v1\nkind: List\nitems: 5\n", "items of a List must be a list"),
    ],
)
def test_wrong_shapes_are_named(text: str, says: str) -> None:
    with pytest.raises(ManifestError, match=says):
        parse_manifests(text, "mc.yaml")


def test_a_file_that_is_not_text_or_never_ends_is_refused(tmp_path: Path) -> None:
    """Binary or non-UTF-8 input is one message naming the byte; an endless file such as
    /dev/zero is refused after the size limit instead of filling memory."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MC.replace("study", "stüdy").encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin1.yaml: not UTF-8 text \(byte 0xfc"):
        load_manifests([str(path)])
    with pytest.raises(ManifestError, match="/dev/zero: larger than 16 MiB"):
        load_manifests(["/dev/zero"])


def test_labels_are_read_and_checked() -> None:
    """metadata.labels of a MiniCluster were dropped without a word; a Cargo has none."""
    labelled = MC.replace("metadata: {name: study}", "metadata: {name: study, labels: {team: ml}}")
    assert parse_manifests(labelled)[0].labels == {"team": "ml"}
    with pytest.raises(ManifestError, match="must map names to strings"):
        parse_manifests(labelled.replace("team: ml", "team: 1"), "mc.yaml")
    with pytest.raises(ManifestError, match="a Cargo has no labels"):
        parse_manifests(CARGO.replace("{name: trial-1}", "{name: t, labels: {a: b}}"), "c.yaml")
