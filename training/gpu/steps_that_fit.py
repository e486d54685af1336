"""How many steps fit before a deadline, from a probe run's log: prints the step count.

Usage: ``steps_that_fit.py PROBE_LOG PROBE_START END EVERY`` (times in epoch seconds). The
probe's last interval gives seconds per step; its first interval, less those steps, gives the
start-up and XLA compile, plus 25 s to load all the photos instead of the probe's 24.
"""

import json
import sys
from pathlib import Path

log, probe_start, end, every = sys.argv[1], *map(float, sys.argv[2:5])
rows = [json.loads(line) for line in Path(log).read_text().splitlines()]
per_step = rows[-1]["s_per_step"]
overhead = rows[0]["time"] - probe_start - rows[0]["step"] * per_step + 25.0
steps = int((end - rows[-1]["time"] - overhead) / (per_step * 1.04) // every * every)
print(max(steps, int(every)))
print(f"probe: {per_step * 1e3:.1f} ms/step, overhead {overhead:.0f} s", file=sys.stderr)
