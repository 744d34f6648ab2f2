"""Run a script under ``accelerate launch`` with two CPU processes (gloo), as the tests need it."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _accelerate_env() -> dict:
    env = dict(
        os.environ,
        ACCELERATE_USE_CPU="true",
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    env.pop("ACCELERATE_MIXED_PRECISION", None)
    return env


def launch_two_processes(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    """``accelerate launch`` with 2 CPU processes (gloo)."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29517",
        *args,
    ]
    result = subprocess.run(command, cwd=tmp_path, env=_accelerate_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result
