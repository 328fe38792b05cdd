#!/usr/bin/env bash
# Install every Debian package normlab needs to build, test and run its default job.
# A no-op when everything is present (dpkg -s is checked first, so no root is needed then).
#   scripts/install_deps.sh          # build + test + default dataset
#   scripts/install_deps.sh --torch  # also python3-torch, to regenerate test fixtures / time PyTorch
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # BLAS sharing the OpenMP thread pool (see README: "Why these packages")
  libfmt-dev catch2 libstb-dev zlib1g-dev
  nlohmann-json3-dev libcli11-dev
  openmpi-bin libopenmpi-dev   # mpirun: data-parallel training and sharded sweeps (README: "Why these packages")
  dataset-fashion-mnist    # default dataset of the README's main command
)
if [[ " $* " == *" --torch "* ]]; then packages+=(python3-torch python3-numpy); fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "install_deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq || true
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
