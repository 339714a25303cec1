# Shared by scripts/setup-env and scripts/in-env: where the root filesystem lives and how to enter it.
# The root filesystem is cached outside the repository and shared by all clones on this host.
ROOTFS=${DCGAN_TFX_ROOTFS:-${XDG_CACHE_HOME:-$HOME/.cache}/dcgan-tfx/rootfs-trixie}

# The host's own Debian mirror (never hard-coded): first URIs line of its apt sources.
host_debian_mirror() {
  local uri
  uri=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
  [[ -n $uri ]] || uri=$(grep -hE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
  [[ -n $uri ]] || { echo "no Debian mirror found in /etc/apt sources; set one there" >&2; return 1; }
  echo "$uri"
}

# run_in_route CMD ARGS...: run in the chosen route, from the current directory.
# rootfs: a private mount namespace (no mount outlives the command), /proc and /dev bound in,
# the repository, /tmp, a sibling shared/ (read-only) and every folder named in DCGAN_TFX_BIND
# (colon-separated) bound at the same paths, so paths mean the same inside and out; then chroot.
run_in_route() {
  local route
  route=$(cat "$repo/.env-route" 2>/dev/null || echo venv)
  if [[ $route != rootfs ]]; then "$@"; return; fi
  local shared="" ; [[ -d "$repo/../shared" ]] && shared=$(cd "$repo/../shared" && pwd)
  cp -f /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || true
  cp -f /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
  cp -f /etc/hosts "$ROOTFS/etc/hosts" 2>/dev/null || true
  # /tmp first: a repository that lives under /tmp is then bound on top of it, not hidden by it.
  local binds=(/tmp "$repo") extra
  [[ -n $shared ]] && binds+=("$shared")
  IFS=: read -r -a extra <<< "${DCGAN_TFX_BIND:-}"
  for d in "${extra[@]}"; do
    [[ -z $d ]] && continue
    [[ -d $d ]] || { echo "DCGAN_TFX_BIND: $d is not a folder" >&2; return 2; }
    binds+=("$(cd "$d" && pwd)")
  done
  for d in "${binds[@]}"; do mkdir -p "$ROOTFS$d"; done
  mkdir -p "$ROOTFS/proc" "$ROOTFS/dev"
  # Pass the command through the environment so its quoting survives intact.
  DCGAN_TFX_CMD=$(printf '%q ' "$@") DCGAN_TFX_CWD=$PWD DCGAN_TFX_SHARED=$shared \
  DCGAN_TFX_BINDS=$(printf '%s\n' "${binds[@]}") DCGAN_TFX_ROOT=$ROOTFS \
  unshare --mount --propagation private --fork bash -c '
    set -e
    r=$DCGAN_TFX_ROOT
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    while IFS= read -r d; do mount --bind "$d" "$r$d"; done <<< "$DCGAN_TFX_BINDS"
    if [[ -n $DCGAN_TFX_SHARED ]]; then mount -o remount,bind,ro "$r$DCGAN_TFX_SHARED"; fi
    exec chroot "$r" /usr/bin/env -u PIP_FIND_LINKS SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
      PIP_CERT=/etc/ssl/certs/ca-certificates.crt HOME=/root \
      bash -c "cd \"\$DCGAN_TFX_CWD\" && eval \"exec \$DCGAN_TFX_CMD\""
  '
}
