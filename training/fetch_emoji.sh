#!/usr/bin/env bash
# Fetch the emoji image sets the embedded model trains on, from the npm registry, into training/.cache/emoji:
#   emoji-datasource-twitter@16.0.0  Twemoji graphics, CC-BY 4.0 (package code and emoji.json: MIT)
#   emoji-datasource-google@16.0.0   Noto Emoji graphics, Apache License 2.0
# Only the 64 px PNGs and emoji.json are kept. Training only: nothing here is needed to run the package.
set -euo pipefail
dest="$(cd "$(dirname "$0")" && pwd)/.cache/emoji"
mkdir -p "$dest"
cd "$dest"
for set in twitter google; do
  if [ -f "$set/emoji.json" ]; then echo "have $set"; continue; fi
  tgz="$(npm pack --silent "emoji-datasource-$set@16.0.0")"
  mkdir -p "$set"
  tar xzf "$tgz" -C "$set" --strip-components=1 package/emoji.json package/README.md package/LICENSE "package/img/$set/64"
  rm -f "$tgz"
  echo "$set: $(ls "$set/img/$set/64" | wc -l) images"
done
