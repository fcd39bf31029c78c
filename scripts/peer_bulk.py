#!/usr/bin/env python3
"""Sequential face_recognition enrolment loop: the peer for kioskd's bulk
import benchmark (localapi BenchmarkBulkImport).

It does what a straightforward script over a class's photos does with the
library central uses: for each photo, load it, find faces (HOG, upsampled
once: face_recognition's default), and compute the 128-d encoding of each.
It prints one JSON object: photos, seconds, photos_per_second, faces_found,
one_face, peak_rss_mb.

Usage: var/venv/bin/python scripts/peer_bulk.py PHOTO... (or @LISTFILE)
"""
import json
import resource
import sys
import time

import face_recognition


def peak_rss_mb():
    """VmHWM of this process (ru_maxrss would carry the parent's over exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv):
    paths = []
    for a in argv:
        if a.startswith("@"):
            with open(a[1:]) as f:
                paths.extend(line.strip() for line in f if line.strip())
        else:
            paths.append(a)
    start = time.perf_counter()
    faces_found = one_face = 0
    for p in paths:
        try:
            img = face_recognition.load_image_file(p)
        except Exception:  # an unreadable file is a row error, not a crash
            continue
        encs = face_recognition.face_encodings(img)
        faces_found += len(encs)
        one_face += len(encs) == 1
    secs = time.perf_counter() - start
    rss = peak_rss_mb()
    print(json.dumps({
        "photos": len(paths),
        "seconds": round(secs, 3),
        "photos_per_second": round(len(paths) / secs, 3) if secs else 0,
        "faces_found": faces_found,
        "one_face": one_face,
        "peak_rss_mb": round(rss, 1),
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
