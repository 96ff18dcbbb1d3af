"""Peak memory of a benchmark's process tree, sampled from outside (Linux; 0 elsewhere).

PSS, not RSS: pages shared after a fork (the loader's reader processes) count once in all. A child's
own ``ru_maxrss`` would not do either: Linux carries the high-water mark across ``exec``, so it starts
from the size of the process that started it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def run_sampled(command: list[str], marker: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``command`` (capturing its output) and return it with the peak PSS in MB of its process
    tree; only processes whose command line contains ``marker`` count (a process forked from this one
    but not yet running the task is not the task's memory)."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        peak_kib = 0
        while process.poll() is None:
            peak_kib = max(peak_kib, tree_pss_kib(process.pid, marker))
            time.sleep(0.1)
        out = process.stdout.read() if process.stdout else ""
        err = process.stderr.read() if process.stderr else ""
    done = subprocess.CompletedProcess(command, process.returncode, out, err)
    return done, round(peak_kib / 1024, 1)


def tree_pss_kib(pid: int, marker: str) -> int:
    """Proportional set size of ``pid`` and its descendants running ``marker``, in KiB."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            if marker.encode() not in Path(f"/proc/{current}/cmdline").read_bytes():
                continue
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:  # gone meanwhile, or not Linux
            continue
    return total
