#!/usr/bin/env bash
# The gloo headers for the CUDA build's data-parallel training: PyPI's torch
# wheel carries c10d's ProcessGroupGloo.hpp but not the gloo headers it
# includes, and Debian 12's libgloo-dev (2022) predates the store interface
# that header overrides. Debian 13's libgloo-dev (gloo of December 2023) has
# it; only its headers are used (gloo itself is inside libtorch_cpu.so).
#
#   fetch_gloo_headers.sh DEST     # DEST/include/gloo/...; nothing fetched when present
#
# The package is pinned by file name and SHA-256 and comes from the Debian
# mirror (TABBY_DEBIAN_MIRROR, default http://deb.debian.org/debian), or from
# a folder of already downloaded packages (TABBY_DEB_CACHE).
set -euo pipefail
dest=$1
file="libgloo-dev_0.0~git20231202.5354032-3+b2_amd64.deb"
sha256="5fd43a7c594ffa4baccf00ba797c215d4485ab617058fd04b69980dcbddc7cf2"
mirror="${TABBY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
url="$mirror/pool/main/g/gloo/${file//\~/%7E}"

if [[ -f "$dest/.complete" ]] && [[ "$(cat "$dest/.complete")" == "$sha256" ]]; then
  echo "fetch-gloo: headers present in $dest/include" >&2
  exit 0
fi
mkdir -p "$dest"
deb="$dest/$file"
if [[ -n "${TABBY_DEB_CACHE:-}" && -f "$TABBY_DEB_CACHE/$file" ]]; then
  cp "$TABBY_DEB_CACHE/$file" "$deb"
else
  echo "fetch-gloo: downloading $url" >&2
  curl -fsSL --retry 3 -o "$deb.part" "$url" || {
    echo "error: cannot download $url" >&2
    echo "hint: check the network or TABBY_DEBIAN_MIRROR, or put $file in TABBY_DEB_CACHE" >&2
    exit 1
  }
  mv "$deb.part" "$deb"
fi
got="$(sha256sum "$deb" | cut -d' ' -f1)"
if [[ "$got" != "$sha256" ]]; then
  rm -f "$deb"
  echo "error: $file has SHA-256 $got, not the pinned $sha256" >&2
  echo "hint: the mirror served another file; try another TABBY_DEBIAN_MIRROR" >&2
  exit 1
fi
rm -rf "$dest/unpacked" "$dest/include"
dpkg-deb -x "$deb" "$dest/unpacked"
mv "$dest/unpacked/usr/include" "$dest/include"
rm -rf "$dest/unpacked" "$deb"
echo "$sha256" >"$dest/.complete"
echo "fetch-gloo: headers of $file in $dest/include" >&2
