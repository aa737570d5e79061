# Sourced by the scripts that work in debootstrap roots (not run): mounts that are
# undone however the script ends.
#
#   mount_into ROOT TARGET-IN-ROOT mount-arguments...   mounts, and remembers it
#   unmount_remembered                                   undoes those, newest first
#   mounts_under PATH        mount points at or below PATH, deepest first
#   unmount_all_under PATH   unmounts them all (what a killed run left behind)
# Callers call unmount_remembered (and unmount_all_under their root) from their EXIT trap.

CHROOT_MOUNTS=()

mounts_under() {
  awk -v p="$1" '{ m = $5; gsub(/\\040/, " ", m); if (m == p || index(m, p "/") == 1) print m }' \
    /proc/self/mountinfo | sort -r
}

unmount_all_under() {
  local m
  while read -r m; do
    [[ -n "$m" ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "warning: could not unmount $m" >&2
  done < <(mounts_under "$1")
}

mount_into() {
  local target="$1$2"
  shift 2
  mkdir -p "$target"
  mount "$@" "$target"
  CHROOT_MOUNTS+=("$target")
}

unmount_remembered() {
  local i
  for ((i = ${#CHROOT_MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -R "${CHROOT_MOUNTS[i]}" 2>/dev/null || umount -R -l "${CHROOT_MOUNTS[i]}" 2>/dev/null ||
      echo "warning: could not unmount ${CHROOT_MOUNTS[i]}" >&2
  done
  CHROOT_MOUNTS=()
}
