"""The renderer: the same data as a table, JSON or YAML."""

from __future__ import annotations

import io
import json

import yaml

from crane.cli.render import Column, Format, cell, render
from crane.client import MiniCluster

MC = MiniCluster.model_validate(
    {
        "metadata": {"name": "study"},
        "spec": {"gpuType": "h100", "gpus": {"min": 8, "max": 16}},
        "status": {"reservedGpus": 8, "inUseGpus": 4},
    }
)
COLUMNS = [
    Column("name", lambda m: m.name),
    Column("gpu", lambda m: m.spec.gpu_type),
    Column("reserved", lambda m: m.status.reserved_gpus),
    Column("queue", lambda m: m.status.queue_position),
]


def _render(data: object, fmt: Format) -> str:
    out = io.StringIO()
    render(data, fmt, COLUMNS, stream=out)
    return out.getvalue()


def test_table_has_upper_case_headers_and_one_row_per_item() -> None:
    lines = _render([MC, MC], Format.TABLE).splitlines()
    assert lines[0].split() == ["NAME", "GPU", "RESERVED", "QUEUE"]
    assert lines[1].split() == ["study", "H100", "8", "-"]
    assert len(lines) == 3


def test_table_of_nothing_prints_nothing() -> None:
    assert _render([], Format.TABLE) == ""


def test_json_uses_wire_names() -> None:
    data = json.loads(_render([MC], Format.JSON))
    assert data[0]["metadata"]["name"] == "study"
    assert data[0]["spec"]["gpus"] == {"min": 8, "max": 16}
    assert data[0]["status"]["reservedGpus"] == 8


def test_yaml_round_trips_to_the_json_form() -> None:
    assert yaml.safe_load(_render(MC, Format.YAML)) == json.loads(_render(MC, Format.JSON))


def test_table_on_a_pipe_has_no_colour_codes() -> None:
    assert "\x1b[" not in _render([MC], Format.TABLE)


def test_cells() -> None:
    assert cell(None) == "-"
    assert cell(True) == "yes"
    assert cell(["a", "b"]) == "a,b"
    assert cell([]) == "-"
