"""The elastic-training examples: the Docker-mode manifest is one Docker mode runs, and the
training program loads (and answers --help) without torch, which it imports only to train."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from crane.docker.containers import container_template
from crane.model.specs import MiniClusterSpec
from crane.model.world import world_env

REPO = Path(__file__).resolve().parents[2]


def test_docker_example_runs_in_docker_mode_with_the_minicluster_world() -> None:
    doc = yaml.safe_load((REPO / "examples" / "elastic-training-docker.yaml").read_text())
    spec = MiniClusterSpec.model_validate(doc["spec"])
    assert spec.template is not None
    template = container_template(spec.template.template, "team", allowed_paths=())
    assert template.volumes == ("crane.team.llm-docker-ckpt:/ckpt",)
    assert world_env("uid", spec, "llm-docker-rdzv")["CRANE_NNODES"] == "2:4"
    assert "--rdzv-endpoint=$CRANE_RDZV_ENDPOINT" in " ".join(template.command or [])


def test_train_program_needs_torch_only_to_train(tmp_path: Path) -> None:
    script = REPO / "examples" / "elastic" / "train.py"
    probe = (
        "import runpy, sys\n"
        f"ns = runpy.run_path({str(script)!r})\n"
        "assert 'torch' not in sys.modules\n"
        "import os\n"
        f"os.environ['CRANE_NOTICE_FILE'] = {str(tmp_path / 'notice')!r}\n"
        "assert not ns['notice_posted']()\n"
        f"open({str(tmp_path / 'notice')!r}, 'w').write('{{}}')\n"
        "assert ns['notice_posted']()\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
    shown = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "--checkpoint-every" in shown.stdout
