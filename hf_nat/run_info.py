"""Facts about the run that a result file records: commit, machine, library versions, command."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["command_line", "cpu_model", "environment", "git_commit", "native_bf16"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def git_commit(short: bool = False) -> str:
    """The commit of the checkout hf_nat is imported from ("unknown" outside a git checkout)."""
    command = ["git", "-C", _PACKAGE_DIR, "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def cpu_model() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), so bf16 autocast can pay off;
    elsewhere torch emulates it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def command_line(argv: Sequence[str] | None = None, program: str | None = None) -> str:
    """The command as typed: ``program`` (default: this process's; "hf-nat train" is two words) and its
    arguments."""
    if argv is None:
        return shlex.join([os.path.basename(sys.executable), *sys.argv])
    return shlex.join([*(program.split() if program else [os.path.basename(sys.argv[0])]), *argv])


def environment(
    device: str = "cpu", dtype: str = "float32", threads: int | None = None, command: str | None = None
) -> dict[str, Any]:
    """Date, command, host, CPU (and GPU), device, dtype, threads and library versions."""
    import torch
    import transformers

    facts = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else command_line(),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "device": device,
        "dtype": dtype,
        "threads": threads if threads is not None else torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return facts
