"""genbench.allocator: freed tensor memory is reused instead of page-faulted in again."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
)

# Allocates and frees a 100 MB tensor 20 times and prints the minor page faults of the last 10
# (glibc places the first few blocks apart from each other before it settles on reusing one).
_SCRIPT = textwrap.dedent("""
    import resource, sys
    import torch
    from genbench.allocator import keep_freed_memory
    applied = keep_freed_memory()
    for _ in range(10):
        x = torch.ones(25_000_000)
        del x
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        x = torch.ones(25_000_000)
        del x
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")
_PAGES_PER_TENSOR = 100_000_000 // 4096


def _faults(env_value: str | None) -> tuple[str, int]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "GENBENCH_KEEP_FREED_MEMORY"}
    if env_value is not None:
        env["GENBENCH_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


def test_freed_tensor_memory_is_reused_without_page_faults() -> None:
    applied, faults = _faults(None)
    assert applied == "True"
    assert faults < _PAGES_PER_TENSOR  # ten tensors' worth of memory came back without faulting in again


def test_the_setting_can_be_turned_off() -> None:
    applied, faults = _faults("0")
    assert applied == "False"
    assert faults > 5 * _PAGES_PER_TENSOR  # glibc's defaults: each 100 MB tensor is mapped afresh
