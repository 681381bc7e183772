"""`python -m pizza_operator ARGS` with yappi on demand (the cost curve's `--profile-at`).

SIGUSR1 starts yappi (CPU clock, every thread, coroutines included); SIGUSR2 stops it and writes
the functions by own time and by total time to $PIZZA_PROFILE_OUT (a text file) and the raw
stats beside it (`.pstat`, for `python -m pstats`). The operator itself is unchanged.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import yappi  # type: ignore[import-not-found]
from pizza_operator.cli import main

OUT = Path(os.environ["PIZZA_PROFILE_OUT"])
TOP = 60


def start(_signum: int, _frame: FrameType | None) -> None:
    yappi.set_clock_type("cpu")
    yappi.start(builtins=False, profile_threads=True)


def stop(_signum: int, _frame: FrameType | None) -> None:
    yappi.stop()
    stats = yappi.get_func_stats()
    stats.save(str(OUT.with_suffix(".pstat")), type="pstat")
    text = io.StringIO()
    for key, title in (("tsub", "own time"), ("ttot", "total time")):
        text.write(f"== top {TOP} by {title} (CPU seconds) ==\n")
        stats.sort(key, "desc")
        for f in list(stats)[:TOP]:
            where = f"{Path(f.module).name}:{f.lineno}"
            text.write(f"{f.tsub:9.3f} {f.ttot:9.3f} {f.ncall:9d}  {f.name}  {where}\n")
    text.write("== threads (CPU seconds) ==\n")
    for t in yappi.get_thread_stats():
        text.write(f"{t.ttot:9.3f}  {t.name} {t.id}\n")
    OUT.write_text(text.getvalue())
    yappi.clear_stats()


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv[0] = "pizza-operator"
    main()
