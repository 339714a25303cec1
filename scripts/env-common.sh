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

# shared_folder: the repository's sibling shared/ (bound read-only), or nothing.
shared_folder() {
  if [[ -d "$repo/../shared" ]]; then (cd "$repo/../shared" && pwd); fi
}

# bound_folders: print, one a line, the folders the rootfs route binds at their own paths: /tmp, the
# repository, a sibling shared/ and each folder in DCGAN_TFX_BIND (colon-separated).
# Returns 2, with a message, when a DCGAN_TFX_BIND entry is not a folder.
# The user's HOME is deliberately not bound: inside, HOME is the root filesystem's /root, and binding
# the host's home (itself /root for root) would mix the host's dotfiles, caches and ~/.local site-packages
# into the Debian 13 tools and expose it all read-write; folders under it are shared via DCGAN_TFX_BIND.
bound_folders() {
  local extra d real
  echo /tmp; echo "$repo"; shared_folder
  IFS=: read -r -a extra <<< "${DCGAN_TFX_BIND:-}"
  for d in "${extra[@]}"; do
    [[ -z $d ]] && continue
    [[ -d $d ]] || { echo "DCGAN_TFX_BIND: $d is not a folder" >&2; return 2; }
    # Binding / or a system folder over the root filesystem's own would replace its tools.
    real=$(cd "$d" && pwd -P)
    if [[ $real == / ]] || _is_under "$real" "${SYSTEM_FOLDERS[@]}"; then
      echo "DCGAN_TFX_BIND: $d is / or a system folder of the root filesystem; name your data folders" >&2
      return 2
    fi
    (cd "$d" && pwd)
  done
}

# Folders the root filesystem has of its own (Debian 13's, or /dev and /proc bound in): arguments such
# as /usr/bin/env or /dev/null name the environment itself, not the user's files, so they are not checked.
SYSTEM_FOLDERS=(/usr /bin /sbin /lib /lib32 /lib64 /libx32 /etc /proc /sys /dev)

# _is_under PATH FOLDER...: whether PATH is one of the FOLDERs or inside one.
_is_under() {
  local p=$1 f
  shift
  for f in "$@"; do [[ $p == "$f" || $p == "${f%/}"/* ]] && return 0; done
  return 1
}

# _is_shared PATH: whether PATH means the same file inside the root filesystem as on the host. Both its
# spelling ('..' folded; the mount points) and where its existing part's symlinks lead on the host must be
# inside a bound folder: a link outside pointing in does not exist inside, and one inside pointing out
# dangles inside. Uses check_paths_shared's arrays binds and real (bash's dynamic scope).
_is_shared() {
  _is_under "$(realpath -ms -- "$1")" "${binds[@]}" && _is_under "$(realpath -m -- "$1")" "${real[@]}"
}

# check_paths_shared CMD ARGS...: for the rootfs route, refuse a command that names a path the chroot
# would not share with the host, where it would silently be read or written inside the root filesystem.
# Checked: the current folder, which default outputs are resolved against; every argument that starts
# with '/' and every path-like relative argument, resolved against the current folder (so '..' and
# symlinks leading out are caught); the value of '--opt=path' likewise. A path that does not exist yet is
# judged by its nearest existing parent; paths under SYSTEM_FOLDERS pass. Never checked: other arguments
# starting with '-', URIs (gs://...) and relative words that are not path-like (see below).
# Returns: 0 when all is shared; 2 with one line on stderr naming the path, the shared folders and
# DCGAN_TFX_BIND otherwise (or when DCGAN_TFX_BIND itself is wrong).
check_paths_shared() {
  local out binds real=() b a p list
  out=$(bound_folders) || return 2
  mapfile -t binds <<< "$out"
  for b in "${binds[@]}"; do real+=("$(realpath -- "$b")"); done
  list=$(printf '%s, ' "${binds[@]}"); list=${list%, }
  local hint="shared folders: $list; DCGAN_TFX_BIND=/that/folder (colon-separated) shares more"
  if ! _is_shared "$PWD"; then
    echo "dcgan-tfx in-env: the current folder $PWD is not shared with the root filesystem (the command would run elsewhere); $hint" >&2
    return 2
  fi
  # Characters of code strings, never of file names the user types: python -c "print('../x')" is no path.
  local code='*[[:space:]'\''"()`;$<>|&]*'
  for a in "$@"; do
    p=$a
    case $p in -*=*) p=${p#*=} ;; -*) continue ;; esac
    case $p in
      /*) ;;
      *://*) continue ;;
      *)
        # Relative: path-like when it exists on the host, or else when it has a '/' or starts with '.'
        # and holds no code characters. Plain words (pytest, fid) would only resolve inside $PWD anyway.
        if [[ ! -e $p && ! -L $p ]]; then
          [[ $p == */* || $p == .* ]] || continue
          # shellcheck disable=SC2053  # $code is a pattern
          [[ $p == $code ]] && continue
        fi
        p=$PWD/$p ;;
    esac
    _is_under "$(realpath -ms -- "$p")" "${SYSTEM_FOLDERS[@]}" && continue
    _is_shared "$p" && continue
    echo "dcgan-tfx in-env: $p is outside the folders shared with the root filesystem, so it would be read or written inside it instead; $hint" >&2
    return 2
  done
}

# run_in_route CMD ARGS...: run in the chosen route, from the current directory.
# rootfs: a private mount namespace (no mount outlives the command), /proc and /dev bound in,
# the repository, /tmp, a sibling shared/ (read-only) and every folder named in DCGAN_TFX_BIND
# (colon-separated) bound at the same paths, so paths mean the same inside and out; then chroot.
run_in_route() {
  local route
  route=$(cat "$repo/.env-route" 2>/dev/null || echo venv)
  if [[ $route != rootfs ]]; then "$@"; return; fi
  local shared binds out d
  shared=$(shared_folder)
  out=$(bound_folders) || return 2
  mapfile -t binds <<< "$out"
  cp -f /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || true
  cp -f /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
  cp -f /etc/hosts "$ROOTFS/etc/hosts" 2>/dev/null || true
  # /tmp comes first: a repository that lives under /tmp is then bound on top of it, not hidden by it.
  for d in "${binds[@]}"; do mkdir -p "$ROOTFS$d"; done
  mkdir -p "$ROOTFS/proc" "$ROOTFS/dev"
  # Pass the command through the environment so its quoting survives intact.
  DCGAN_TFX_CMD=$(printf '%q ' "$@") DCGAN_TFX_CWD=$PWD DCGAN_TFX_SHARED=$shared \
  DCGAN_TFX_BINDS=$out DCGAN_TFX_ROOT=$ROOTFS \
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
