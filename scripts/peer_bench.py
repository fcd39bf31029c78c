#!/usr/bin/env python3
"""Times face_recognition on the image BenchmarkEncode640x480 encodes.

Usage: var/venv/bin/python scripts/peer_bench.py [IMAGE] [-n N]

IMAGE defaults to var/bench/encode640x480.jpg, which the Go benchmark writes
(`make bench-peer` runs it first), so both sides time the same bytes on the
same machine. One op is what a caller of face_recognition does for one
image: load_image_file, face_locations (upsample 1, HOG) and face_encodings
for the locations found (5-point landmarks, no jitter). Prints a line in Go's
benchmark format.
"""
import argparse
import os
import sys
import time

import dlib
import face_recognition


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("image", nargs="?", default=os.path.join(root, "var", "bench", "encode640x480.jpg"))
    ap.add_argument("-n", type=int, default=20, help="timed iterations")
    args = ap.parse_args()
    if not os.path.exists(args.image):
        print(f"peer_bench: {args.image} is missing: run `go test -run '^$' -bench Encode640x480 ./recognizer/` first", file=sys.stderr)
        return 1

    def op():
        img = face_recognition.load_image_file(args.image)
        locs = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="hog")
        encs = face_recognition.face_encodings(img, known_face_locations=locs, num_jitters=1, model="small")
        return len(encs)

    faces = op()  # warm up: loads nothing new, but touches every code path
    start = time.perf_counter()
    for _ in range(args.n):
        op()
    per = (time.perf_counter() - start) / args.n
    print(f"face_recognition 1.3.0, dlib {dlib.__version__} (dlib-bin), {faces} face(s) in {os.path.basename(args.image)}")
    print(f"BenchmarkPeerFaceRecognition640x480\t{args.n}\t{per * 1e9:.0f} ns/op\t{per * 1e3:.1f} ms/op")
    return 0


if __name__ == "__main__":
    sys.exit(main())
