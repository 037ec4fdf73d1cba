"""DuckDB side of scripts/bench-analyse: the same analyses and the core of the measure
computation, run by DuckDB over the warehouse's own Parquet files (listed in manifest.json).

    python3 bench_duckdb.py WAREHOUSE QUERIES_JSON QUERIES_PER_LEVEL

Prints one line per level (p50/p99 in ms) and the time to sum every measure's numerator and
denominator per practice and month. Nothing is asserted: this measures.
"""

import json
import os
import resource
import statistics
import sys
import time

import duckdb

wh, queries_path, per_level = sys.argv[1], sys.argv[2], int(sys.argv[3])
manifest = json.load(open(os.path.join(wh, "manifest.json")))


def files(table):
    parts = manifest["tables"].get(table, {})
    return "[" + ", ".join(f"'{os.path.join(wh, rel)}'" for rel in parts.values()) + "]"


con = duckdb.connect()
con.execute(f"CREATE VIEW presc AS SELECT * FROM read_parquet({files('prescribing_exact')})")
con.execute(f"CREATE VIEW bnf_map AS SELECT * FROM read_parquet({files('bnf_map')})")
con.execute(f"CREATE VIEW org_membership AS SELECT * FROM read_parquet({files('org_membership')})")
con.execute(f"CREATE VIEW practices AS SELECT * FROM read_parquet({files('practices')})")
con.execute(f"CREATE VIEW list_sizes AS SELECT * FROM read_parquet({files('list_sizes')})")
con.execute(
    "CREATE VIEW cur AS SELECT p.month, p.practice_code, COALESCE(m.current_code, p.bnf_code) AS bnf_code, "
    "p.items, p.quantity, p.actual_cost_e5, p.nic_pence, p.adq_usage FROM presc p LEFT JOIN bnf_map m ON p.bnf_code = m.old_code"
)
# Membership per month is small and fixed, as in ipmo's index, so it is materialised once.
con.execute(
    "CREATE TABLE members AS SELECT mo.month, m.practice_code, m.pcn_code, m.sicbl_code, m.icb_code, "
    "m.region_code, CAST(l.total AS DOUBLE) AS list_size "
    "FROM (SELECT DISTINCT month FROM presc) mo JOIN org_membership m "
    "ON (m.valid_from IS NULL OR m.valid_from <= mo.month) AND (m.valid_to IS NULL OR m.valid_to > mo.month) "
    "JOIN practices p ON p.practice_code = m.practice_code AND p.is_gp_practice "
    "LEFT JOIN list_sizes l ON l.practice_code = m.practice_code AND l.month = mo.month "
    "WHERE m.practice_code NOT LIKE '%998'"
)

LEVELS = {
    "practice": "mb.practice_code",
    "pcn": "mb.pcn_code",
    "sicbl": "mb.sicbl_code",
    "icb": "mb.icb_code",
    "region": "mb.region_code",
    "england": "'ENG'",
}


def cond(prefixes):
    return "(" + " OR ".join(f"bnf_code LIKE '{p}%'" for p in prefixes) + ")"


def sql(q, org):
    num = cond(q["numerator"])
    if q["denominator"] is None:
        rx = f"SELECT month, practice_code, SUM(items) AS num FROM cur WHERE {num} GROUP BY ALL"
        den, extra = "mb.list_size", " AND mb.list_size IS NOT NULL"
    else:
        d = cond(q["denominator"])
        rx = (
            f"SELECT month, practice_code, SUM(CASE WHEN {num} THEN items ELSE 0 END) AS num, "
            f"SUM(CASE WHEN {d} THEN items ELSE 0 END) AS den FROM cur WHERE {num} OR {d} GROUP BY ALL"
        )
        den, extra = "COALESCE(rx.den, 0)", ""
    return (
        f"WITH rx AS ({rx}) SELECT mb.month, {org} AS org, SUM(COALESCE(rx.num, 0)) AS n, SUM({den}) AS d "
        f"FROM members mb LEFT JOIN rx ON rx.month = mb.month AND rx.practice_code = mb.practice_code "
        f"WHERE {org} IS NOT NULL{extra} GROUP BY ALL"
    )


queries = json.load(open(queries_path))[:per_level]
print(f"duckdb {duckdb.__version__}, {len(queries)} queries per level, over Parquet")
for level, org in LEVELS.items():
    times = []
    for q in queries:
        t = time.perf_counter()
        con.execute(sql(q, org)).fetchall()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    print(f"duckdb {level:<9} p50 {statistics.median(times):8.1f} ms  p99 {p99:8.1f} ms")

# The core of a full measure recompute: every measure side's sum per practice and month, from
# the presentations each measure counted (measure_codes, written by `ipmo measures compute`).
codes = files("measure_codes")
defs = files("measure_definitions")
if codes != "[]":
    t = time.perf_counter()
    n = con.execute(
        f"WITH c AS (SELECT * FROM read_parquet({codes})), d AS (SELECT * FROM read_parquet({defs})) "
        "SELECT c.measure_id, c.side, r.month, r.practice_code, SUM(CASE "
        "  WHEN (CASE WHEN c.side = 'numerator' THEN d.numerator_value ELSE d.denominator_value END) = 'items' THEN r.items "
        "  WHEN (CASE WHEN c.side = 'numerator' THEN d.numerator_value ELSE d.denominator_value END) = 'actual_cost' "
        "    THEN r.actual_cost_e5 / 100000.0 "
        "  WHEN (CASE WHEN c.side = 'numerator' THEN d.numerator_value ELSE d.denominator_value END) = 'nic' "
        "    THEN r.nic_pence / 100.0 "
        "  WHEN (CASE WHEN c.side = 'numerator' THEN d.numerator_value ELSE d.denominator_value END) = 'adq' "
        "    THEN r.adq_usage "
        "  ELSE r.quantity END * c.factor) AS v "
        "FROM cur r JOIN c ON c.bnf_code = r.bnf_code JOIN d ON d.measure_id = c.measure_id GROUP BY ALL"
    ).fetchall()
    print(
        f"duckdb measure sums (all measures, per practice and month): {time.perf_counter() - t:.1f} s, "
        f"{len(n)} rows"
    )
print(f"duckdb peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
