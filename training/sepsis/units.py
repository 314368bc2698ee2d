"""How the sepsis model fares in each ICU unit of the stays it is trained on, and on a unit it
never saw: the closest one hospital's records come to another hospital's. The challenge's
stays carry `Unit1` (medical ICU) and `Unit2` (surgical ICU); many record neither.

1. The out-of-fold risks of `train.py` (the same folds and seed), judged per unit: AUROC, and
   the utility at the model file's thresholds, at half the unit's septic share, and at the
   unit's own best thresholds.
2. A model trained on the medical ICU's stays alone, judged on the surgical ICU's, and the
   other way round: AUROC, and the utility at the thresholds the training unit's out-of-fold
   risks choose (as `train.py` chooses them) and at the other unit's own best.

Usage: python units.py FEATURES.csv DIR MODEL [--drop NAME,...] [--folds 5] [--seed 2019]
(FEATURES.csv: `vigil replay --psv DIR --features FEATURES.csv`; MODEL: the model file whose
thresholds are judged; `--drop` leaves features out, a name starting with `.` every feature
ending in it, as `.hours_since`.) About 14 minutes on a 2-core machine for hospital A.
"""

import argparse
import json
import os
import sys

import numpy as np

from train import HEDGE, Stays, best_thresholds, fit, out_of_fold, read_features, report

UNITS = ("medical", "surgical", "not recorded")


def unit_of_stays(directory):
    """Each stay's unit, from its first row's `Unit1` and `Unit2`."""
    units = {}
    for name in sorted(os.listdir(directory)):
        if not name.lower().endswith(".psv"):
            continue
        with open(os.path.join(directory, name), encoding="utf-8-sig") as f:
            header = f.readline().strip().split("|")
            row = f.readline().strip().split("|")
        cell = dict(zip(header, row))
        units[name[:-4]] = (
            UNITS[0] if cell.get("Unit1") == "1"
            else UNITS[1] if cell.get("Unit2") == "1"
            else UNITS[2]
        )
    return units


def judged(name, frame, p, t_open, t_clear):
    stays = Stays(frame, p)
    y = frame["label"].to_numpy(int)
    at_model = report(name, stays, t_open, t_clear, y, p)
    # With no hedge the mean `best_thresholds` maximizes is the plain utility itself.
    best_utility, best_open, best_clear = best_thresholds(stays, hedge=1.0)
    return dict(
        at_model,
        septic_share=round(float(stays.septic.mean()), 4),
        best_utility=round(best_utility, 4),
        best_open=round(best_open, 4),
        best_clear=round(best_clear, 4),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("features_csv")
    ap.add_argument("dir")
    ap.add_argument("model")
    ap.add_argument("--drop", default="")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=2019)
    args = ap.parse_args()
    with open(args.model) as f:
        threshold = json.loads(f.read().split("\n", 1)[1])["threshold"]
    frame, features = read_features(args.features_csv)
    drop = [d for d in args.drop.split(",") if d]
    features = [
        c for c in features
        if not any(c == d or (d.startswith(".") and c.endswith(d)) for d in drop)
    ]
    frame["unit"] = frame["stay"].map(unit_of_stays(args.dir))
    print(f"{frame['stay'].nunique()} stays, {len(features)} features; "
          f"thresholds {threshold['open']} / {threshold['clear']}; hedge {HEDGE}", flush=True)

    _, oof = out_of_fold(frame, features, args.folds, np.random.default_rng(args.seed), args.seed)
    for unit in UNITS:
        rows = (frame["unit"] == unit).to_numpy()
        part = frame[rows].reset_index(drop=True)
        print(json.dumps(judged(f"out of fold, {unit}", part, oof[rows],
                                threshold["open"], threshold["clear"])), flush=True)

    for train, test in ((UNITS[0], UNITS[1]), (UNITS[1], UNITS[0])):
        a = frame[frame["unit"] == train].reset_index(drop=True)
        b = frame[frame["unit"] == test].reset_index(drop=True)
        _, own = out_of_fold(a, features, args.folds, np.random.default_rng(args.seed), args.seed)
        _, t_open, t_clear = best_thresholds(Stays(a, own))
        ebm = fit(a[features].to_numpy(float), a["label"].to_numpy(int),
                  a["stay"].to_numpy(), features, args.seed)
        p = ebm.predict_proba(b[features].to_numpy(float))[:, 1]
        print(json.dumps(judged(f"trained on {train}, judged on {test}", b, p, t_open,
                                t_clear)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
