"""The renderer: the same data as a table, JSON or YAML."""

from __future__ import annotations

import io
import json

import yaml

from crane.cli import node
from crane.cli.render import Column, Format, cell, render
from crane.client import Host, MiniCluster

MC = MiniCluster.model_validate(
    {
        "name": "study",
        "tenant": "t",
        "uid": "u1",
        "createdAt": "2026-01-01T00:00:00Z",
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
    assert data[0]["name"] == "study"
    assert data[0]["createdAt"].startswith("2026-01-01")
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


def test_node_list_shows_the_address_a_host_declares() -> None:
    wire = {"dockerHost": "tcp://h:2376", "gpuType": "H100", "gpus": 8, "simulated": True}
    wire |= {"state": "Active", "ready": True, "createdAt": "2026-01-01T00:00:00Z"}
    hosts = [
        Host.model_validate({**wire, "name": "gpu-01", "address": "10.0.0.1"}),
        Host.model_validate({**wire, "name": "gpu-02"}),
    ]
    out = io.StringIO()
    render(hosts, Format.TABLE, node.COLUMNS, stream=out)
    lines = [line.split() for line in out.getvalue().splitlines()]
    assert lines[0][:4] == ["NAME", "DOCKER", "HOST", "ADDRESS"]
    assert lines[1][:4] == ["gpu-01", "tcp://h:2376", "10.0.0.1", "8"]
    assert lines[2][:4] == ["gpu-02", "tcp://h:2376", "-", "8"]


def test_server_text_in_a_table_is_neither_markup_nor_terminal_control() -> None:
    """A description or message from the server such as ``[/x]`` or ``ESC[2J`` prints as
    itself: no rich markup error, no escape sequence reaching the terminal."""
    rows = [{"name": "a", "text": "[/bad] [red]x[/red]"}, {"name": "b", "text": "\x1b[2J\x00ok"}]
    columns = [Column("name", lambda r: r["name"]), Column("text", lambda r: r["text"])]
    out = io.StringIO()
    render(rows, Format.TABLE, columns, stream=out)
    text = out.getvalue()
    assert "[/bad] [red]x[/red]" in text
    assert "\\x1b[2J\\x00ok" in text and "\x1b" not in text and "\x00" not in text


def test_name_output_says_token_and_node_not_the_wire_class() -> None:
    from crane.client import NodeOut, TokenCreated, TokenPublic

    made = {
        "id": "abc",
        "scope": "admin",
        "tenant": None,
        "miniCluster": None,
        "description": "",
        "createdAt": "2026-01-01T00:00:00Z",
    }
    items = [
        TokenPublic.model_validate(made),
        TokenCreated.model_validate({**made, "token": "crane_abc_s"}),
        NodeOut.model_validate({"name": "n1", "gpuProduct": "H100", "gpuCount": 8}),
    ]
    out = io.StringIO()
    render(items, Format.NAME, [], stream=out)
    assert out.getvalue().split() == ["token/abc", "token/abc", "node/n1"]
