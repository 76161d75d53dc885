"""Times pm4py's MOT-cycle figures on an event log loaded into a DataFrame.

Run by scripts/pm4py-baseline. With `--reference` in place of the runs it
prints pm4py's figures of the log instead, as the API tests' cross-check
reads them (tests/data/*/reference.json). The load (CSV to DataFrame, pm4py's
formatting) is not timed: the yardstick is an analyst who has the log in
memory already. Timed, `runs` times each: discover_dfg with get_variants
(the DFG and the variants), and discover_performance_dfg besides. Prints one
JSON line with the figures (to check against Verdad's) and the median and
minimum seconds.
"""

import json
import statistics
import sys
import time

import pandas as pd
import pm4py


def load(path: str) -> pd.DataFrame:
    """The log at `path` as pm4py's DataFrame, its events in order."""
    # "NA" is a real case id in the Sepsis log: nothing is read as missing.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    # The order of events at the same time: the Sepsis log's event_seq, or
    # the place in the case of Verdad's export.
    order = next((c for c in ("event_seq", "sequence") if c in frame.columns), None)
    if order:
        frame[order] = frame[order].astype(int)
        frame = frame.sort_values(["case_id", "timestamp", order], kind="stable")
    return pm4py.format_dataframe(
        frame, case_id="case_id", activity_key="activity", timestamp_key="timestamp"
    )


def reference(log: pd.DataFrame) -> dict:
    """pm4py's MOT-cycle figures of `log`, in the shape of
    ../shared/data/sepsis/reference.json, for the API tests' cross-check."""
    dfg, starts, ends = pm4py.discover_dfg(log)
    performance, _, _ = pm4py.discover_performance_dfg(log)
    variants = pm4py.get_variants(log)
    ranked = sorted(variants.items(), key=lambda v: (-v[1], v[0]))
    durations = pd.Series(pm4py.get_all_case_durations(log))
    lengths = log.groupby("case:concept:name").size()
    pairs = sorted(dfg.items(), key=lambda p: (-p[1], p[0]))
    return {
        "pm4py_version": pm4py.__version__,
        "pandas_version": pd.__version__,
        "n_cases": int(log["case:concept:name"].nunique()),
        "n_events": len(log),
        "n_variants": len(variants),
        "top10_variants": [
            {"rank": i + 1, "count": int(n), "length": len(v), "activities": list(v)}
            for i, (v, n) in enumerate(ranked[:10])
        ],
        "n_dfg_edges": len(dfg),
        "dfg_total_arc_frequency": int(sum(dfg.values())),
        "start_activities": {a: int(n) for a, n in starts.items()},
        "end_activities": {a: int(n) for a, n in ends.items()},
        "performance_dfg_seconds": [
            {
                "from": a,
                "to": b,
                "count": int(n),
                "mean": float(performance[(a, b)]["mean"]),
                "median": float(performance[(a, b)]["median"]),
            }
            for (a, b), n in pairs
        ],
        "case_duration_seconds": {
            "median": float(durations.median()),
            "mean": float(durations.mean()),
            "max": float(durations.max()),
        },
        "events_per_case": {
            "median": float(lengths.median()),
            "mean": float(lengths.mean()),
            "max": int(lengths.max()),
        },
    }


def main() -> None:
    path, runs = sys.argv[1], sys.argv[2]
    if runs == "--reference":
        print(json.dumps(reference(load(path)), indent=1))
        return
    runs = int(runs)
    started = time.perf_counter()
    log = load(path)
    loaded = time.perf_counter() - started

    dfg_variants, with_performance = [], []
    for _ in range(runs):
        begin = time.perf_counter()
        dfg, starts, ends = pm4py.discover_dfg(log)
        variants = pm4py.get_variants(log)
        middle = time.perf_counter()
        performance, _, _ = pm4py.discover_performance_dfg(log)
        end = time.perf_counter()
        dfg_variants.append(middle - begin)
        with_performance.append(end - begin)

    print(
        json.dumps(
            {
                "pm4py": pm4py.__version__,
                "events": len(log),
                "cases": int(log["case:concept:name"].nunique()),
                "edges": len(dfg),
                "transitions": int(sum(dfg.values())),
                "variants": len(variants),
                "load_seconds": round(loaded, 3),
                "dfg_variants_seconds": round(statistics.median(dfg_variants), 4),
                "dfg_variants_min_seconds": round(min(dfg_variants), 4),
                "with_performance_seconds": round(statistics.median(with_performance), 4),
                "with_performance_min_seconds": round(min(with_performance), 4),
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
