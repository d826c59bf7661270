#!/usr/bin/env bash
# Installs every Debian package that building, testing and cross-testing lowbit needs.
# Idempotent: packages already present are skipped, so a second run costs one dpkg query.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libgtest-dev googletest               # unit tests (googletest ships sources for the cross builds)
  libstb-dev                            # PNG/JPEG decoding in lowbit-run
  libcli11-dev                          # command-line parsing in the tools
  g++-aarch64-linux-gnu g++-arm-linux-gnueabihf   # cross compilers for the ARM test suites
  qemu-user                             # runs the ARM test suites on x86-64
  libdnnl-dev nlohmann-json3-dev        # lowbit-bench: oneDNN baselines, JSON results
  python3-matplotlib                    # bench/plot.py
  libtorch-dev libyaml-cpp-dev libfmt-dev   # trainer/: LibTorch QAT, YAML configs
  libonnx-dev libprotobuf-dev protobuf-compiler   # ONNX export (trainer) and import (converter)
  zlib1g-dev                            # gzipped IDX datasets
  dataset-fashion-mnist                 # the demo's default dataset (/usr/share/datasets/fashion-mnist)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
