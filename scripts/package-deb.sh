#!/usr/bin/env bash
# Builds the Debian package (Debian 12, amd64):
#
#   scripts/package-deb.sh            → dist/blip-captiond_<version>_amd64.deb
#
# The executables are built in release mode with Swift's runtime linked in (--static-swift-stdlib),
# so they run without the Swift toolchain; the shared libraries they still need (OpenBLAS,
# libjpeg-turbo, libspng, libwebp, giflib, libtiff, libheif, libavif, protobuf-c, libsystemd, libc, libstdc++) are Debian's and become the
# package's Depends (dpkg-shlibdeps). The version is the one in ReleaseVersion.swift, read back
# from `blip-captiond --version`. Man pages come from ArgumentParser's own generate-manual tool
# (built from the swift-argument-parser checkout), completions from --generate-completion-script.
# The package is assembled with dpkg-deb (no debhelper): packaging/deb holds the control
# template, the maintainer scripts (written to dh_installsystemd's conventions) and the copyright.
# Needs: the build dependencies and dpkg-dev (scripts/install-deps.sh --package). Set SKIP_BUILD=1 to
# package binaries already built with these flags, DEB_COMPRESSION=gzip for a faster, larger
# package (xz by default: 33 MB in ~3 min on 2 cores; gzip: 49 MB in ~30 s; CI uses gzip).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "package-deb: $*" >&2; }
for tool in dpkg-deb dpkg-shlibdeps gzip strip; do
  command -v "$tool" >/dev/null 2>&1 || { say "needs $tool: scripts/install-deps.sh --package"; exit 1; }
done

products=(blip-captiond blip-caption)
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  for p in "${products[@]}"; do
    say "building $p (release, Swift runtime linked statically)"
    swift build -c release --static-swift-stdlib --product "$p" >&2
  done
fi
bin=$(swift build -c release --show-bin-path)
version=$("$bin/blip-captiond" --version | awk '{print $2}')
[ -n "$version" ] || { say "could not read the version from $bin/blip-captiond --version"; exit 1; }
cli_version=$("$bin/blip-caption" --version | awk '{print $2}')
[ "$cli_version" = "$version" ] || { say "blip-caption says $cli_version, blip-captiond $version: rebuild both"; exit 1; }
for p in "${products[@]}"; do
  if ldd "$bin/$p" | grep -q libswift; then
    say "$bin/$p links Swift's runtime dynamically: build it with --static-swift-stdlib (or unset SKIP_BUILD)"
    exit 1
  fi
done

say "building ArgumentParser's generate-manual"
swift package resolve >&2
swift build -c release --package-path .build/checkouts/swift-argument-parser \
  --scratch-path .build/generate-manual --product generate-manual >&2
manual="$(swift build -c release --package-path .build/checkouts/swift-argument-parser --scratch-path .build/generate-manual --show-bin-path)/generate-manual"

root=.build/deb-root
rm -rf "$root"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/usr/share/man/man1" "$root/usr/share/man/man8" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d" \
  "$root/usr/share/doc/blip-captiond"

# Executables: stripped as dh_strip strips (Swift's metadata lives in its own sections and stays).
for p in "${products[@]}"; do
  install -m 0755 "$bin/$p" "$root/usr/bin/$p"
  strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/$p"
done
install -m 0755 scripts/download-model.sh "$root/usr/bin/blip-captiond-fetch-model"

# Units: the repository's, with the package's binary path; the plain service's settings file, a
# conffile (an operator's edits survive upgrades; purge removes it).
for unit in systemd/*.socket systemd/*.service; do
  sed 's|/usr/local/bin/|/usr/bin/|g' "$unit" > "$root/lib/systemd/system/$(basename "$unit")"
  chmod 0644 "$root/lib/systemd/system/$(basename "$unit")"
done
install -D -m 0644 systemd/blip-captiond.conf "$root/etc/blip-captiond/blip-captiond.conf"

# Man pages and completions, from the executables' own ArgumentParser definitions.
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%d)
manpages=$(mktemp -d)
trap 'rm -rf "$manpages"' EXIT
"$manual" "$root/usr/bin/blip-captiond" --section 8 --date "$date" --output-directory "$manpages" >&2
"$manual" "$root/usr/bin/blip-caption" --section 1 --date "$date" --output-directory "$manpages" >&2
# The daemon has no subcommands but ArgumentParser's implicit `help`, which generate-manual shows as
# "blip-captiond subcommand [options]"; its synopsis is the options alone.
sed -i '/^\.Sh SYNOPSIS/,/^\.Sh DESCRIPTION/{/^\.Ar subcommand$/d}' "$manpages/blip-captiond.8"
# finish_manual PAGE SECTIONS: generate-manual's page without the implicit `help` subcommand (an
# ".It Em help" item and its nested list of arguments, in both pages) and with SECTIONS
# (packaging/deb/man: ENVIRONMENT, FILES, SIGNALS, the real EXIT STATUS, EXAMPLES, SEE ALSO) in
# place of its generic EXIT STATUS (".Ex -std": "exits 0 on success, and >0 if an error occurs").
finish_manual() {
  awk -v sections="$2" '
    function insert(line) { while ((getline line < sections) > 0) if (line !~ /^\.\\"/) print line; inserted = 1 }
    /^\.It Em help$/ { help = 1; depth = 0; next }
    help {
      if ($0 ~ /^\.Bl /) { depth++; next }
      if ($0 ~ /^\.El$/ && depth > 0) { if (--depth == 0) help = 0; next }
      if (depth == 0 && ($0 ~ /^\.El$/ || $0 ~ /^\.It /)) help = 0; else next
    }
    /^\.Sh / { skipping = 0 }
    /^\.Sh "?EXIT STATUS"?$/ { insert(); skipping = 1; next }
    skipping { next }
    { print }
    END { if (!inserted) insert() }
  ' "$1" > "$1.finished" && mv "$1.finished" "$1"
}
finish_manual "$manpages/blip-captiond.8" packaging/deb/man/blip-captiond.8.mdoc
finish_manual "$manpages/blip-caption.1" packaging/deb/man/blip-caption.1.mdoc
gzip -9n -c "$manpages/blip-captiond.8" > "$root/usr/share/man/man8/blip-captiond.8.gz"
gzip -9n -c "$manpages/blip-caption.1" > "$root/usr/share/man/man1/blip-caption.1.gz"
gzip -9n -c packaging/deb/blip-captiond-fetch-model.1 > "$root/usr/share/man/man1/blip-captiond-fetch-model.1.gz"
for p in "${products[@]}"; do
  # Sourced by bash-completion, not run: no #! line.
  "$root/usr/bin/$p" --generate-completion-script bash | sed '1{/^#!/d}' > "$root/usr/share/bash-completion/completions/$p"
  "$root/usr/bin/$p" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_$p"
  "$root/usr/bin/$p" --generate-completion-script fish > "$root/usr/share/fish/vendor_completions.d/$p.fish"
done

# Docs: uncompressed, so the units' Documentation=file:///usr/share/doc/blip-captiond/daemon.md opens.
install -m 0644 README.md CHANGELOG.md docs/*.md "$root/usr/share/doc/blip-captiond/"
install -m 0644 packaging/deb/copyright "$root/usr/share/doc/blip-captiond/copyright"
# A native package's changelog.gz is in Debian's format; it points at CHANGELOG.md.
changelog_date=$(date -u -R -d "$date")
maintainer=$(sed -n 's/^Maintainer: //p' packaging/deb/control.in)
printf 'blip-captiond (%s) unstable; urgency=medium\n\n  * Release %s; see /usr/share/doc/blip-captiond/CHANGELOG.md.\n\n -- %s  %s\n' \
  "$version" "$version" "$maintainer" "$changelog_date" | gzip -9n > "$root/usr/share/doc/blip-captiond/changelog.gz"

# Control: the libraries the executables load, as dpkg-shlibdeps finds them.
shlibs=$(mktemp -d)
mkdir "$shlibs/debian"
printf 'Source: blip-captiond\n\nPackage: blip-captiond\nArchitecture: amd64\n' > "$shlibs/debian/control"
depends=$(cd "$shlibs" && dpkg-shlibdeps -O "$OLDPWD/$root/usr/bin/blip-captiond" "$OLDPWD/$root/usr/bin/blip-caption" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$shlibs"
[ -n "$depends" ] || { say "dpkg-shlibdeps found no libraries"; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@INSTALLED_SIZE@|$size|" -e "s#@SHLIBS_DEPENDS@#$depends#" packaging/deb/control.in > "$root/DEBIAN/control"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
(cd "$root" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
(cd "$root" && find etc -type f -printf '/%p\n' | LC_ALL=C sort) > "$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"

mkdir -p dist
deb="dist/blip-captiond_${version}_amd64.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$root" "$deb" >&2
say "built $deb ($(du -h "$deb" | cut -f1)); Depends: $depends"
echo "$deb"
