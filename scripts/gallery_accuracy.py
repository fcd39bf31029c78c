#!/usr/bin/env python3
"""How well dlib's descriptors and the matcher's decision rule separate people
in the shared gallery (../shared/testdata/gallery/idols.json: 1,286 real
descriptors of 134 people).

For each threshold (and the matcher's runner-up margin) it reports:
  - pairs: the share of impostor pairs (two people) under the threshold and
    of genuine pairs (one person) at or over it;
  - stranger: each descriptor probed against the gallery without its own
    person (leave-person-out), the share accepted as somebody;
  - enrolled: each descriptor of a person with two or more probed against the
    rest (leave-one-out), the share identified right, wrong, or unknown.

The matcher's rule (recognizer.Matcher.Identify): the best user's nearest
descriptor at or under the threshold, and the runner-up user at least the
margin farther. One frame only: the kiosk also needs K of M frames to agree.

Usage: var/venv/bin/python scripts/gallery_accuracy.py [idols.json]
"""
import base64
import json
import struct
import sys

import numpy as np

path = sys.argv[1] if len(sys.argv) > 1 else "../shared/testdata/gallery/idols.json"
with open(path) as f:
    faces = json.load(f)["faces"]
V = np.array([struct.unpack("<128f", base64.b64decode(x["descriptor"])) for x in faces], dtype=np.float64)
ids = np.array([x["idol_id"] for x in faces])
people = np.unique(ids)
n = len(ids)
sq = (V * V).sum(1)
D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * V @ V.T, 0))
np.fill_diagonal(D, np.inf)

# Per probe, the nearest descriptor of every person: n x people.
col = {p: i for i, p in enumerate(people)}
per_person = np.full((n, len(people)), np.inf)
for p in people:
    rows = ids == p
    per_person[:, col[p]] = D[:, rows].min(1)
own = np.array([col[p] for p in ids])
counts = {p: int((ids == p).sum()) for p in people}

same = ids[:, None] == ids[None, :]
iu = np.triu_indices(n, 1)
gen = D[iu][same[iu]]
imp = D[iu][~same[iu]]


def decide(rows, thr, margin):
    """Best person per row, or -1 when the rule refuses."""
    order = np.argsort(rows, axis=1)
    d1 = np.take_along_axis(rows, order[:, :1], 1)[:, 0]
    d2 = np.take_along_axis(rows, order[:, 1:2], 1)[:, 0]
    ok = (d1 <= thr) & (d2 - d1 >= margin)
    return np.where(ok, order[:, 0], -1)


print(f"gallery: {n} descriptors of {len(people)} people; {len(gen)} genuine and {len(imp)} impostor pairs")
print("threshold margin | impostor pairs under | genuine pairs over | stranger accepted | enrolled right / wrong / unknown")
for thr in (0.6, 0.55, 0.5, 0.45, 0.4):
    for margin in (0.03,):
        strangers = per_person.copy()
        strangers[np.arange(n), own] = np.inf
        s = decide(strangers, thr, margin)
        multi = np.array([counts[p] >= 2 for p in ids])
        e = decide(per_person[multi], thr, margin)
        right = (e == own[multi]).mean()
        unknown = (e == -1).mean()
        print(f"{thr:9.2f} {margin:6.2f} | {(imp < thr).mean() * 100:19.1f}% | {(gen >= thr).mean() * 100:17.1f}% |"
              f" {(s != -1).mean() * 100:16.1f}% | {right * 100:.1f}% / {(1 - right - unknown) * 100:.1f}% / {unknown * 100:.1f}%")
