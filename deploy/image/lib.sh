# Shared steps of the image builders (sourced by deploy/image/build and build-demo, never run).
# Each needs $rootfs (the image's root folder being filled).

# image_copy_libs ELF…: copy what ldd resolves for these ELF files to the same paths in the image,
# debug info stripped (symbols kept).
image_copy_libs() {
  local lib
  for lib in $(ldd "$@" | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(/ { print $1 }' | sort -u); do
    [ -e "$rootfs$lib" ] && continue
    mkdir -p "$rootfs$(dirname "$lib")"
    strip --strip-debug -o "$rootfs$lib" "$(readlink -f "$lib")"
  done
}

# image_node: the build machine's node at /usr/local/bin/node, with the libraries it loads.
image_node() {
  local node_bin
  node_bin=$(readlink -f "$(command -v node)")
  mkdir -p "$rootfs/usr/local/bin"
  strip --strip-debug -o "$rootfs/usr/local/bin/node" "$node_bin"
  image_copy_libs "$node_bin"
}

# image_base: the little a process expects of a root file system; normalised modes.
image_base() {
  mkdir -p "$rootfs/etc" "$rootfs/tmp"
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$rootfs/etc/group"
  chmod -R u=rwX,go=rX "$rootfs"
  chmod 1777 "$rootfs/tmp"
}

# image_epoch: the time every file of the image gets (the last commit's, or $SOURCE_DATE_EPOCH).
image_epoch() { echo "${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"; }
