#!/usr/bin/env bash
# npm run setup — a clone's set-up on a fresh Debian or Ubuntu machine: the system packages the
# CPU addon compiles with (g++, make, python3, libopenblas-dev; scripts/install.cjs says which are
# missing), through apt-get, then npm install. Elsewhere it names what to install, in one line.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=$(node scripts/install.cjs --missing)
if [ -n "$missing" ]; then
  if ! command -v apt-get > /dev/null; then
    echo "setup: the CPU addon compiles with a C++ compiler, make, python3 and OpenBLAS's headers; install them ($missing on Debian; gcc-c++ make python3 openblas-devel on Fedora/RHEL) and run npm run setup again" >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo > /dev/null || { echo "setup: installing $missing needs root: run npm run setup as root, or install them and run npm install" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "setup: installing $missing (apt-get)"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing > /dev/null
fi
npm install --no-audit --no-fund
