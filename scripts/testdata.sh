#!/usr/bin/env bash
# Fetches test photos for machines without ../shared/testdata: the photos the
# PyPI source distribution of face_recognition 1.3.0 ships in tests/test_images
# (MIT licence), laid out like the shared set so the tests find them:
#
#   DIR/people/obama/{1,2,3}.jpg   obama.jpg obama2.jpg obama3.jpg
#   DIR/people/biden/1.jpg         biden.jpg
#   DIR/partial/obama_partial_face{,2}.jpg
#   DIR/decode/32bit.png           a 32-bit (RGBA) PNG
#
# There is no multi/, photos/, video/ or gallery/ in it: tests that need those
# build their inputs from these photos, or check recognizertest.HasSharedTestdata.
# Idempotent: does nothing when DIR is complete.
set -euo pipefail
dir=${1:-var/testdata}
cache=${KIOSK_CACHE_DIR:-var/cache}
sdist=face_recognition-1.3.0.tar.gz
want=(people/obama/1.jpg people/obama/2.jpg people/obama/3.jpg people/biden/1.jpg
      partial/obama_partial_face.jpg partial/obama_partial_face2.jpg decode/32bit.png)

complete=1
for f in "${want[@]}"; do [ -s "$dir/$f" ] || complete=0; done
if [ $complete = 1 ]; then echo "testdata: $dir ok"; exit 0; fi

mkdir -p "$cache"
if [ ! -s "$cache/$sdist" ]; then
  echo "testdata: downloading $sdist from PyPI"
  if ! python3 -m pip download --quiet --no-deps --no-binary :all: face_recognition==1.3.0 -d "$cache"; then
    echo "testdata: pip could not fetch face_recognition==1.3.0: check that PyPI is reachable, or put the shared test data at ../shared/testdata" >&2
    exit 1
  fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$cache/$sdist" -C "$tmp" face_recognition-1.3.0/tests/test_images
src="$tmp/face_recognition-1.3.0/tests/test_images"
mkdir -p "$dir/people/obama" "$dir/people/biden" "$dir/partial" "$dir/decode"
cp "$src/obama.jpg" "$dir/people/obama/1.jpg"
cp "$src/obama2.jpg" "$dir/people/obama/2.jpg"
cp "$src/obama3.jpg" "$dir/people/obama/3.jpg"
cp "$src/biden.jpg" "$dir/people/biden/1.jpg"
cp "$src/obama_partial_face.jpg" "$src/obama_partial_face2.jpg" "$dir/partial/"
cp "$src/32bit.png" "$dir/decode/32bit.png"
cat >"$dir/README.md" <<'MD'
Fallback test photos from the face_recognition 1.3.0 source distribution
(tests/test_images, MIT licence), made by scripts/testdata.sh. Not committed.
MD
echo "testdata: $dir ready (${#want[@]} photos)"
