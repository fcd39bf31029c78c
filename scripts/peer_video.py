#!/usr/bin/env python3
"""face_recognition's own video approach on the Hamilton clip, for comparison
with kioskd's device pipeline (docs: /work/notes/device-bench.md).

It follows face_recognition's example facerec_from_video_file /
facerec_from_webcam_faster: shrink each frame to 1/4, process every other
frame, HOG detection + 128-d encoding, compare with the enrolled people at
tolerance 0.6. Frames come from a folder of JPEGs (the venv has no OpenCV):

    ffmpeg -i ../shared/testdata/video/short_hamilton_clip.mp4 -q:v 2 /tmp/frames/%05d.jpg
    var/venv/bin/python scripts/peer_video.py /tmp/frames ../shared/testdata/people

Prints one JSON object: frames, processed, seconds, fps, per-person frame
indices where they were recognised (recall: did it find each person at all,
and from which frame).
"""
import glob
import json
import os
import sys
import time

import face_recognition
import numpy as np
from PIL import Image


def main():
    frames_dir, people_dir = sys.argv[1], sys.argv[2]
    people = sys.argv[3:] or ["lin_manuel_miranda", "alex_lacamoire"]
    known, names = [], []
    for p in people:
        for f in sorted(glob.glob(os.path.join(people_dir, p, "*"))):
            encs = face_recognition.face_encodings(face_recognition.load_image_file(f))
            if encs:
                known.append(encs[0])
                names.append(p)
    files = sorted(glob.glob(os.path.join(frames_dir, "*.jpg")))
    hits = {p: [] for p in people}
    unknown = 0
    processed = 0
    t0 = time.perf_counter()
    for i, f in enumerate(files):
        if i % 2:  # process every other frame, as the example does
            continue
        img = Image.open(f).convert("RGB")
        small = np.asarray(img.resize((img.width // 4, img.height // 4)))
        processed += 1
        locs = face_recognition.face_locations(small)  # HOG, upsample 1
        for enc in face_recognition.face_encodings(small, locs):
            d = face_recognition.face_distance(known, enc)
            j = int(np.argmin(d))
            if d[j] <= 0.6:
                hits[names[j]].append(i)
            else:
                unknown += 1
    dt = time.perf_counter() - t0
    print(json.dumps({
        "frames": len(files), "processed": processed, "seconds": round(dt, 3),
        "fps_of_video_frames": round(len(files) / dt, 1),
        "first_frame": {p: (h[0] if h else None) for p, h in hits.items()},
        "frames_recognised": {p: len(h) for p, h in hits.items()},
        "unknown_faces": unknown,
    }))


if __name__ == "__main__":
    main()
