"""Stays as a hospital that measures less often would have recorded them: each lab column of
each stay keeps one result in every `--labs K`, and each vital column one reading in every
`--vitals K` (the first, the (K+1)th, ...); the others become `NaN`. Admission columns, hours
and labels are untouched. Replaying the result (`vigil replay --psv OUT --json`) shows how much
the sepsis screen leans on how often a hospital measures, one of the habits a hospital's stays
may not share (docs/sepsis-screen.md).

Usage: python thin_stays.py DIR OUT [--labs K] [--vitals K]   (K = 1 keeps everything; K = 2
half; a large K each column's first value only). Standard library only; about 8 s for hospital
A's 20,336 stays.
"""

import argparse
import os

VITALS = {"HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp", "EtCO2"}
# Columns that are neither vitals nor laboratory results (the challenge's layout).
CONTEXT = {"Age", "Gender", "Unit1", "Unit2", "HospAdmTime", "ICULOS", "SepsisLabel"}


def thin(text, labs_every, vitals_every):
    """One stay's text with each lab column keeping one result in `labs_every` and each vital
    column one reading in `vitals_every`."""
    lines = text.splitlines()
    if not lines:
        return text
    header = lines[0].lstrip("\ufeff").split("|")
    every = {}
    for i, column in enumerate(header):
        if column in VITALS:
            every[i] = vitals_every
        elif column not in CONTEXT:
            every[i] = labs_every
    seen = dict.fromkeys(every, 0)
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split("|")
        for i, k in every.items():
            if i < len(cells) and cells[i] != "NaN":
                if seen[i] % k != 0:
                    cells[i] = "NaN"
                seen[i] += 1
        out.append("|".join(cells))
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", metavar="DIR")
    parser.add_argument("target", metavar="OUT")
    parser.add_argument("--labs", type=int, default=1, metavar="K")
    parser.add_argument("--vitals", type=int, default=1, metavar="K")
    args = parser.parse_args()
    if args.labs < 1 or args.vitals < 1:
        parser.error("--labs and --vitals keep one value in K: K must be 1 or more")
    os.makedirs(args.target, exist_ok=True)
    stays = 0
    for name in sorted(os.listdir(args.source)):
        if not name.lower().endswith(".psv"):
            continue
        with open(os.path.join(args.source, name), encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(args.target, name), "w", encoding="utf-8") as f:
            f.write(thin(text, args.labs, args.vitals))
        stays += 1
    print(
        f"{stays} stays written to {args.target}: one lab result in {args.labs}, "
        f"one vital reading in {args.vitals}"
    )


if __name__ == "__main__":
    main()
