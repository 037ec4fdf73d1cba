#!/usr/bin/env python3
"""Rebuild crates/ipmo-synth/data/{catalogue,bnf_levels}.csv from the real data in ../shared/data/real.

The synthetic generator needs real BNF presentation codes with realistic prescribing rates and
prices. This derives, per presentation, the items, quantity per item, price per unit and ADQ per
unit seen across the four practices of the real September 2017 EPD extract, and the names of every
BNF level above those presentations from the NHSBSA BNF Code Information (2020). It keeps
aggregates only; no row of the source files is copied.

Usage: scripts/build-synth-catalogue.py [path/to/shared/data/real]
"""
import csv, gzip, sys, os
from collections import defaultdict

real = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "real")
out = os.path.join(os.path.dirname(__file__), "..", "crates", "ipmo-synth", "data")

agg = defaultdict(lambda: {"items": 0, "qty": 0.0, "nic": 0.0, "cost": 0.0, "adq": 0.0, "rows": 0, "name": ""})
with open(os.path.join(real, "openprescribing", "e2e-2017-09", "epd_201709.csv"), newline="") as f:
    for r in csv.DictReader(f):
        a = agg[r["BNF_CODE"]]
        a["items"] += int(r["ITEMS"]); a["qty"] += float(r["TOTAL_QUANTITY"]); a["nic"] += float(r["NIC"])
        a["cost"] += float(r["ACTUAL_COST"]); a["adq"] += float(r["ADQUSAGE"] or 0); a["rows"] += 1
        a["name"] = r["BNF_DESCRIPTION"]

levels = {}
info = {}
path = os.path.join(real, "prescriptionsdata", "bnf-code-information", "20200201_1580570906919_BNF_Code_Information.csv.gz")
with gzip.open(path, "rt", newline="") as f:
    for r in csv.DictReader(f):
        code = r["BNF Presentation Code"].strip()
        info[code] = r
        for lvl in ["Chapter", "Section", "Paragraph", "Subparagraph", "Chemical Substance", "Product"]:
            levels[r[f"BNF {lvl} Code"].strip()] = (lvl.lower().replace(" substance", ""), r[f"BNF {lvl}"].strip())

with open(os.path.join(out, "catalogue.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["bnf_code", "name", "chemical_code", "items", "rows", "quantity_per_item", "nic_pence_per_unit", "cost_ratio", "adq_per_unit"])
    for code in sorted(agg):
        a = agg[code]
        if a["items"] <= 0 or a["qty"] <= 0:
            continue
        chem = info[code]["BNF Chemical Substance Code"].strip() if code in info else code[:9]
        w.writerow([code, a["name"], chem, a["items"], a["rows"], round(a["qty"] / a["items"], 3),
                    round(100 * a["nic"] / a["qty"], 5), round(a["cost"] / a["nic"], 5) if a["nic"] else 0.93,
                    round(a["adq"] / a["qty"], 6)])

needed = set()
for code in agg:
    needed.update({code[:2], code[:4], code[:6], code[:7], code[:9], code[:11]})
    if code in info:
        r = info[code]
        needed.update(r[f"BNF {l} Code"].strip() for l in ["Chapter", "Section", "Paragraph", "Subparagraph", "Chemical Substance", "Product"])
with open(os.path.join(out, "bnf_levels.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["code", "level", "name"])
    for code in sorted(needed):
        if code in levels:
            w.writerow([code, levels[code][0], levels[code][1]])
print("catalogue:", len(agg), "presentations; levels:", len(needed))
