#!/usr/bin/env bash
# Debian packages ModelPick needs beside its virtual environment, installed with apt when run as
# root; otherwise each missing one is named with the command that installs it.
#   scripts/system_packages.sh PACKAGE...
# bubblewrap: the sandbox for model-written code; fonts-wqy-zenhei: Chinese text in PDF reports and
# screenshots; chromium: the browser tests; poppler-utils: reading PDF reports back in the tests.
set -u
missing=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || echo "note: could not install ${missing[*]}: run: sudo apt-get install ${missing[*]}"
elif ! command -v dpkg >/dev/null 2>&1; then
  echo "note: not a Debian-like system: install the equivalents of ${missing[*]} (README, 'What a machine needs')"
else
  echo "note: not root, so not installed: ${missing[*]}: run: sudo apt-get install ${missing[*]}"
fi
exit 0
