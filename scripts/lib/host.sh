# Sourced by the scripts (not run): what this machine is and what it can build.
#
#   host_release           prints debian12 or debian13 (this machine's native build),
#                          or nothing on any other system
#   host_release_name      prints the system's name as /etc/os-release gives it
#   find_cuda_toolkit      finds a CUDA 13 toolkit; on success sets cuda (its folder),
#                          cuda_version and cuda_lib (the folder with libcudart.so.13)
#                          and returns 0; else sets cuda_missing and cuda_hint (why, and
#                          what to do) and returns 1
# Each script that builds or tests reads these here, so "what this machine can do"
# has one definition.

_host_os_release() {  # prints ID|VERSION_CODENAME|VERSION_ID|PRETTY_NAME
  local f=/etc/os-release
  [[ -r "$f" ]] || f=/usr/lib/os-release
  (
    # shellcheck source=/dev/null
    . "$f" 2>/dev/null
    echo "${ID:-}|${VERSION_CODENAME:-}|${VERSION_ID:-}|${PRETTY_NAME:-unknown}"
  ) || echo "|||unknown"
}

host_release() {
  local id codename version name
  IFS='|' read -r id codename version name < <(_host_os_release)
  case "$id:${codename:-$version}" in
    debian:bookworm | debian:12) echo debian12 ;;
    debian:trixie | debian:13) echo debian13 ;;
    *) ;;
  esac
}

host_release_name() {
  local id codename version name
  IFS='|' read -r id codename version name < <(_host_os_release)
  echo "$name (ID=${id:-?} VERSION_CODENAME=${codename:-?} VERSION_ID=${version:-?})"
}

find_cuda_toolkit() {
  cuda_missing="" cuda_hint="" cuda_version="" cuda_lib=""
  cuda="${CUDAToolkit_ROOT:-${CUDA_HOME:-${CUDA_PATH:-}}}"
  if [[ -z "$cuda" ]]; then
    cuda=/usr/local/cuda
    # nvcc on PATH may be a wrapper script elsewhere; its folder is a guess only when /usr/local/cuda is missing.
    local nvcc_path
    if [[ ! -d "$cuda" ]] && nvcc_path="$(command -v nvcc 2>/dev/null)"; then
      cuda="$(dirname "$(dirname "$(readlink -f "$nvcc_path")")")"
    fi
  fi
  if [[ ! -x "$cuda/bin/nvcc" ]]; then
    cuda_missing="no CUDA toolkit: $cuda/bin/nvcc does not exist"
    cuda_hint="install the CUDA 13 toolkit (NVIDIA's cuda-toolkit-13-0 package, with cuDNN 9 and NCCL), or point CUDA_HOME at it"
    return 1
  fi
  cuda="$(readlink -f "$cuda")"
  cuda_version="$("$cuda/bin/nvcc" --version | sed -n 's/.*release \([0-9][0-9.]*\),.*/\1/p')"
  if [[ "${cuda_version%%.*}" != 13 ]]; then
    cuda_missing="the CUDA toolkit in $cuda is ${cuda_version:-of unknown version}; torch 2.11.0 from PyPI is built for CUDA 13"
    cuda_hint="install the CUDA 13 toolkit, or point CUDA_HOME at one"
    return 1
  fi
  local d
  for d in "$cuda/lib64" "$cuda/lib" "$cuda/targets/x86_64-linux/lib"; do
    if [[ -e "$d/libcudart.so.13" ]]; then cuda_lib="$(readlink -f "$d")"; break; fi
  done
  if [[ -z "$cuda_lib" ]]; then
    cuda_missing="$cuda has no libcudart.so.13"
    cuda_hint="is $cuda a complete CUDA 13 toolkit?"
    return 1
  fi
  return 0
}
