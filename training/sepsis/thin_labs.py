"""Stays as a hospital that orders laboratory tests less often would have recorded them: each
lab column of each stay keeps one result in every K (the first, the (K+1)th, ...) and the others
become `NaN`; vitals, demographics and labels are untouched. Replaying the result
(`vigil replay --psv OUT --json`) shows how much the sepsis screen leans on how often a hospital
measures, one of the habits a hospital's stays may not share (docs/sepsis-screen.md).

Usage: python thin_labs.py DIR OUT K   (K = 2: half the results; a large K: each lab's first
result only). Standard library only; about 8 s for hospital A's 20,336 stays.
"""

import os
import sys

# Columns that are not laboratory results (the challenge's layout).
NOT_LABS = {
    "HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp", "EtCO2",
    "Age", "Gender", "Unit1", "Unit2", "HospAdmTime", "ICULOS", "SepsisLabel",
}


def thin(text, keep_every):
    """One stay's text with each lab column keeping one result in `keep_every`."""
    lines = text.splitlines()
    if not lines:
        return text
    header = lines[0].lstrip("\ufeff").split("|")
    labs = [i for i, column in enumerate(header) if column not in NOT_LABS]
    seen = dict.fromkeys(labs, 0)
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split("|")
        for i in labs:
            if i < len(cells) and cells[i] != "NaN":
                if seen[i] % keep_every != 0:
                    cells[i] = "NaN"
                seen[i] += 1
        out.append("|".join(cells))
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 4 or not sys.argv[3].isdigit() or int(sys.argv[3]) < 1:
        sys.exit("usage: python thin_labs.py DIR OUT K  (K >= 1: keep one lab result in K)")
    source, target, keep_every = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(target, exist_ok=True)
    stays = 0
    for name in sorted(os.listdir(source)):
        if not name.lower().endswith(".psv"):
            continue
        with open(os.path.join(source, name), encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(target, name), "w", encoding="utf-8") as f:
            f.write(thin(text, keep_every))
        stays += 1
    print(f"{stays} stays written to {target}, one lab result in {keep_every} kept")


if __name__ == "__main__":
    main()
