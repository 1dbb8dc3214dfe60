"""What every RESULTS.md section says about where it ran: cores, CPU, memory, load."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """Cores, CPU model, memory and Python, from /proc; and the load average now."""
    info: dict[str, str] = {}
    for path in ("/proc/cpuinfo", "/proc/meminfo"):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for key, _, value in (line.partition(":") for line in lines):
            info.setdefault(key.strip(), value.strip())
    memory = int(info.get("MemTotal", "0 kB").split()[0]) / 2**20
    cpu = info.get("model name") or platform.processor() or "unknown CPU"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.1f} GiB RAM, Python "
        f"{platform.python_version()}; load average {load}"
    )
