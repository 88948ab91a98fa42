#!/usr/bin/env python3
"""Draws the soak's per-minute samples (`bench --only soak` writes them to soak.json beside
its report) as one PNG of eight panels: RSS, store size, API latency beside its baseline,
recording latency, documents a second, fetch-to-recorded latency, and the machine beside
them: the cores the swarm, the harness and every other process kept busy, and the shares of
time waiting on I/O and stolen (samples from before 2026-12-07 have no such fields: those
panels stay empty). Needs matplotlib (Debian: python3-matplotlib; scripts/bench.sh installs
it when the soak is asked for).

    soak_chart.py SAMPLES.json OUT.png
"""

import json
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: soak_chart.py SAMPLES.json OUT.png", file=sys.stderr)
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        print(f"soak_chart.py: matplotlib is missing ({err}); install python3-matplotlib", file=sys.stderr)
        return 1
    try:
        with open(sys.argv[1], encoding="utf-8") as handle:
            samples = json.load(handle)
    except (OSError, ValueError) as err:
        print(f"soak_chart.py: cannot read {sys.argv[1]}: {err}", file=sys.stderr)
        return 1
    if not isinstance(samples, list) or not samples:
        print(f"soak_chart.py: {sys.argv[1]} holds no samples", file=sys.stderr)
        return 1

    minutes = [sample["minute"] for sample in samples]

    def series(key):
        return [float("nan") if sample.get(key) is None else sample[key] for sample in samples]

    figure, axes = plt.subplots(2, 4, figsize=(20, 7), sharex=True)
    panels = [
        (axes[0][0], "RSS (MB)", [("rss_mb", "tge-swarm run")]),
        (axes[0][1], "store on disk (MB)", [("store_mb", "SQLite database, WAL, shm")]),
        (axes[1][0], "API latency p99 (ms)", [("api_p99_ms", "GET /api/v1/events"), ("healthz_p99_ms", "GET /healthz (baseline)")]),
        (axes[1][1], "recording p99 (ms)", [("write_p99_ms", "per document (its share of a batch)")]),
        (axes[0][2], "documents a second", [("read_per_second", "read (new and re-read)"), ("stored_per_second", "stored (new)")]),
        (axes[1][2], "fetch to recorded p99 (ms)", [("pipeline_p99_ms", "per document")]),
        (axes[0][3], "machine: cores kept busy", [("swarm_cores", "tge-swarm run"), ("harness_cores", "bench harness"), ("other_cores", "every other process")]),
        (axes[1][3], "machine: % of the cores' time", [("iowait_percent", "waiting on I/O"), ("steal_percent", "stolen by the hypervisor")]),
    ]
    count = len(samples)
    for axis, title, lines in panels:
        for key, label in lines:
            axis.plot(minutes, series(key), label=label, linewidth=1.2)
        # The quarters the flatness check compares: the second and the last.
        axis.axvspan(count // 4 + 0.5, count // 2 + 0.5, color="tab:green", alpha=0.08)
        axis.axvspan(count * 3 // 4 + 0.5, count + 0.5, color="tab:orange", alpha=0.08)
        axis.set_title(title, fontsize=10)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="lower right")
    for axis in axes[1]:
        axis.set_xlabel("minute")
    figure.suptitle("tge-swarm soak: shaded, the second and the last quarter compared", fontsize=11)
    figure.tight_layout()
    figure.savefig(sys.argv[2], dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
