# shellcheck shell=bash
# snapshot: every path under /etc, /usr and /var (but the package manager's and logs' own state)
# and every group name, sorted, so that an installation followed by its removal can be checked to
# leave nothing behind: compare a snapshot from before with one from after (comm -13).
snapshot() {
  { find /etc /usr -xdev -print 2>/dev/null || true
    find /var -xdev \( -path /var/lib/dpkg -o -path /var/cache -o -path /var/log -o -path /var/tmp -o -path /var/lib/apt \
      -o -path /var/lib/lintian -o -path /var/lib/man-db \) -prune -o -print 2>/dev/null || true
    getent group | cut -d: -f1 | sed 's/^/group:/'; } | LC_ALL=C sort
}

# toolchain_dir: what hide_toolchain hides: the Swift toolchain's own folder (/opt/swift for
# /opt/swift/usr/bin/swiftc), or only its runtime (usr/lib/swift/linux) when the toolchain shares
# /usr with the system.
toolchain_dir() {
  local usr
  usr=$(dirname "$(dirname "$(readlink -f "$(command -v swiftc)")")")
  case "$(dirname "$usr")" in
    /|/usr) echo "$usr/lib/swift/linux" ;;
    *) dirname "$usr" ;;
  esac
}

# hide_toolchain CMD...: runs CMD in a private mount namespace with toolchain_dir covered by an
# empty tmpfs, as on a host without the toolchain.
hide_toolchain() {
  unshare --mount sh -c 'mount -t tmpfs tmpfs "$0" && exec "$@"' "$(toolchain_dir)" "$@"
}
