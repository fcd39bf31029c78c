#!/usr/bin/env python3
"""Prints face_recognition's view of images, one JSON line per image.

Usage: var/venv/bin/python scripts/parity.py IMAGE...

Each line: {"file": path, "width": w, "height": h, "faces": [{"box": [left, top,
right, bottom], "descriptor": [128 floats]}]} or {"file": path, "error": msg}.
Boxes are face_recognition's (top, right, bottom, left) reordered; right and
bottom are dlib's, inclusive (our Go boxes are half-open: one more).

It calls the library exactly as the central registry does, with its defaults:
load_image_file (Pillow, RGB, no EXIF rotation), face_locations with
number_of_times_to_upsample=1 and the HOG model, and face_encodings with
num_jitters=1 and the "small" (5-point) landmark model. Our TestParity compares
its descriptors with ours.
"""
import json
import sys

import face_recognition


def describe(path):
    img = face_recognition.load_image_file(path)
    locations = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="hog")
    # Without known locations face_encodings detects again (upsample 1) and
    # keeps dlib's untrimmed rectangles, as a default caller gets them.
    encodings = face_recognition.face_encodings(img, num_jitters=1, model="small")
    faces = []
    for (top, right, bottom, left), enc in zip(locations, encodings):
        faces.append({"box": [left, top, right, bottom], "descriptor": [float(v) for v in enc]})
    return {"file": path, "width": img.shape[1], "height": img.shape[0], "faces": faces}


def main(paths):
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    for p in paths:
        try:
            out = describe(p)
        except Exception as e:  # one bad file must not hide the others
            out = {"file": p, "error": str(e)}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
