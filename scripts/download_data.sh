#!/usr/bin/env bash
# Download normlab's datasets from their official sources and verify their checksums.
#
#   scripts/download_data.sh DATASET... [--dir DIR]
#   DATASET: mnist | fashion-mnist | cifar10 | tinyshakespeare | all
#   DIR:     default $NORMLAB_DATA_DIR, else ./data  (the same default the normlab command uses)
#
# Resulting layout (what data/registry.cpp looks for):
#   DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#   DIR/fashion-mnist/...  (same four names)
#   DIR/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin, batches.meta.txt
#   DIR/tinyshakespeare/input.txt
#
# NEEDS INTERNET. It cannot run on the offline development machines; there the data is
# already in ../shared/data next to the repository (pass --data-dir ../shared/data), and Fashion-MNIST comes
# from Debian: apt-get install dataset-fashion-mnist (-> /usr/share/datasets/fashion-mnist).
#
# Checksums: SHA-256 where one is known for the exact official file (MNIST .gz files, tiny
# Shakespeare), else the MD5 published by the dataset's authors (Fashion-MNIST .gz files,
# the CIFAR-10 binary tarball). A file that fails its check is deleted, never used.
set -euo pipefail

dir="${NORMLAB_DATA_DIR:-data}"
datasets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --dir=*) dir="${1#--dir=}"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    all) datasets+=(mnist fashion-mnist cifar10 tinyshakespeare); shift ;;
    mnist|fashion-mnist|cifar10|tinyshakespeare) datasets+=("$1"); shift ;;
    *)
      # A second positional argument that is not a dataset name is the directory.
      if [ ${#datasets[@]} -gt 0 ] && [ "$1" = "${1#-}" ]; then dir="$1"; shift
      else echo "download_data.sh: unknown argument '$1' (try --help)" >&2; exit 2; fi ;;
  esac
done
if [ ${#datasets[@]} -eq 0 ]; then
  echo "usage: scripts/download_data.sh {mnist|fashion-mnist|cifar10|tinyshakespeare|all}... [--dir DIR]" >&2
  exit 2
fi

fetch() {  # fetch URL OUT: download to OUT.part, then rename
  local url="$1" out="$2"
  echo "  fetching $url"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 --connect-timeout 20 -o "$out.part" "$url"
  elif command -v wget >/dev/null 2>&1; then
    wget -q --tries=3 --timeout=20 -O "$out.part" "$url"
  else
    echo "download_data.sh: need curl or wget" >&2; return 1
  fi
  mv "$out.part" "$out"
}

verify() {  # verify FILE ALGO(sha256|md5) EXPECTED
  local file="$1" algo="$2" want="$3" got
  got=$("${algo}sum" "$file" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "download_data.sh: $algo mismatch for $file: got $got, expected $want; deleting it" >&2
    rm -f "$file"
    return 1
  fi
  echo "  ok  $algo  $file"
}

# get DEST_FILE ALGO HASH URL...: keep an existing verified file, else try each URL in turn.
get() {
  local out="$1" algo="$2" want="$3"; shift 3
  if [ -f "$out" ] && verify "$out" "$algo" "$want" 2>/dev/null; then return 0; fi
  local url
  for url in "$@"; do
    if fetch "$url" "$out" && verify "$out" "$algo" "$want"; then return 0; fi
    rm -f "$out" "$out.part"
  done
  echo "download_data.sh: could not get a valid $(basename "$out")" >&2
  return 1
}

get_mnist() {
  local d="$dir/mnist"; mkdir -p "$d"
  # The original site often refuses scripted downloads; the mirror serves identical bytes
  # (the SHA-256 below is that of the official files).
  local mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist" "http://yann.lecun.com/exdb/mnist")
  local -A sha=(
    [train-images-idx3-ubyte.gz]=440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609
    [train-labels-idx1-ubyte.gz]=3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c
    [t10k-images-idx3-ubyte.gz]=8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6
    [t10k-labels-idx1-ubyte.gz]=f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6
  )
  local f
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    get "$d/$f" sha256 "${sha[$f]}" "${mirrors[0]}/$f" "${mirrors[1]}/$f"
  done
}

get_fashion_mnist() {
  local d="$dir/fashion-mnist"; mkdir -p "$d"
  local base="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
  # Official MD5s of the .gz files (github.com/zalandoresearch/fashion-mnist README).
  local -A md5=(
    [train-images-idx3-ubyte.gz]=8d4fb7e6c68d591d4c3dfef9ec88bf0d
    [train-labels-idx1-ubyte.gz]=25c81989df183df01b3e8a0aad5dffbe
    [t10k-images-idx3-ubyte.gz]=bef4ecab320f06d8554ea6380940ec79
    [t10k-labels-idx1-ubyte.gz]=bb300cfdad3c16e7a12a480ee83cd310
  )
  local f
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    get "$d/$f" md5 "${md5[$f]}" "$base/$f"
  done
}

get_cifar10() {
  mkdir -p "$dir"
  local tarball="$dir/cifar-10-binary.tar.gz"
  # No SHA-256 is published for the tarball; the authors publish this MD5.
  get "$tarball" md5 c32a1d4ab5d03f1284b67883e8d87530 "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
  echo "  unpacking $tarball"
  tar -xzf "$tarball" -C "$dir"  # creates $dir/cifar-10-batches-bin/
  local f
  for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
    local size
    size=$(stat -c %s "$dir/cifar-10-batches-bin/$f.bin")
    if [ "$size" != 30730000 ]; then echo "download_data.sh: $f.bin has $size bytes, expected 30730000" >&2; exit 1; fi
  done
  rm -f "$tarball"
}

get_tinyshakespeare() {
  local d="$dir/tinyshakespeare"; mkdir -p "$d"
  get "$d/input.txt" sha256 86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed \
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
}

for ds in "${datasets[@]}"; do
  echo "== $ds -> $dir"
  case "$ds" in
    mnist) get_mnist ;;
    fashion-mnist) get_fashion_mnist ;;
    cifar10) get_cifar10 ;;
    tinyshakespeare) get_tinyshakespeare ;;
  esac
done
echo "done: use --data-dir $dir (or export NORMLAB_DATA_DIR=$dir)"
