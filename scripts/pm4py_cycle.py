"""Times pm4py's MOT-cycle figures on an event log loaded into a DataFrame.

Run by scripts/pm4py-baseline. The load (CSV to DataFrame, pm4py's
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


def main() -> None:
    path, runs = sys.argv[1], int(sys.argv[2])
    started = time.perf_counter()
    # "NA" is a real case id in the Sepsis log: nothing is read as missing.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    if "event_seq" in frame.columns:
        frame["event_seq"] = frame["event_seq"].astype(int)
        frame = frame.sort_values(["case_id", "timestamp", "event_seq"], kind="stable")
    log = pm4py.format_dataframe(
        frame, case_id="case_id", activity_key="activity", timestamp_key="timestamp"
    )
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
