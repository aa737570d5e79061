#!/usr/bin/env bash
# Sets up and builds (scripts/build.sh), then runs `tabby demo` on its default
# data: ../shared/datasets/cats_and_dogs_filtered if present, else Google's
# cats_and_dogs_filtered.zip downloaded (checksummed) into the user cache.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build.sh
exec "${TABBY_BUILD_DIR:-build}/tabby" demo "$@"
