#!/usr/bin/env bash
# Prepare what neo_local.verify needs to run aarch64 artifacts under qemu-user on an x86_64 host:
# Debian 12's arm64 python3.11 (debs extracted into a sysroot; no multiarch install, nothing
# in the system's dpkg database) and the aarch64 wheels of the TVM runtime, tvm-ffi and numpy.
# Cached in .cache/aarch64-emulation (override: NEO_LOCAL_AARCH64_EMULATION); the READY file
# names what was installed, so a change of versions here rebuilds it. Needs qemu-aarch64-static
# (scripts/setup.sh installs it), apt-get, dpkg and network access to deb.debian.org and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=${NEO_LOCAL_AARCH64_EMULATION:-.cache/aarch64-emulation}
PY=${PY:-.venv/bin/python}
WHEELS="apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post1 numpy==2.4.6 ml_dtypes==0.6.0 typing_extensions==4.16.0"
DEBS="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1 libstdc++6 zlib1g libexpat1
      libffi8 libbz2-1.0 liblzma5 libssl3 libcrypt1 libuuid1"
STAMP="bookworm-arm64 python3.11; $WHEELS; layout 1"

if [ -f "$DEST/READY" ] && [ "$(cat "$DEST/READY")" = "$STAMP" ]; then
  exit 0
fi
for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "setup-aarch64-emulation: needs $tool (Debian/Ubuntu)" >&2; exit 1; }
done
echo "Preparing the aarch64 emulation runtime in $DEST (once; about 30 MB of debs and 115 MB of wheels)" >&2
tmp="$DEST.partial"
rm -rf "$tmp"
mkdir -p "$tmp"/apt/{lists/partial,cache/archives/partial,parts,prefs} "$tmp/debs" "$tmp/sysroot"
apt_dir=$(cd "$tmp/apt" && pwd)
: > "$apt_dir/status"
cat > "$apt_dir/sources.list" <<SOURCES
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
SOURCES
# a private apt state: arm64 package lists only, the host's apt configuration untouched
apt_opts=(-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o "Dir::Etc::SourceList=$apt_dir/sources.list"
          -o "Dir::Etc::SourceParts=$apt_dir/parts" -o "Dir::Etc::PreferencesParts=$apt_dir/prefs"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Dir::State::status=$apt_dir/status"
          -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
# shellcheck disable=SC2086
(cd "$tmp/debs" && apt-get "${apt_opts[@]}" download -qq $DEBS)
for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$tmp/sysroot"; done
# shellcheck disable=SC2086
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp/site" \
  --platform manylinux_2_28_aarch64 --python-version 3.11 --only-binary=:all: $WHEELS
# runtime only (TVM_USE_RUNTIME_LIB=1): drop the compiler library, sources and headers
rm -rf "$tmp/site/tvm/lib/libtvm_compiler.so" "$tmp/site/tvm/3rdparty" "$tmp/site/tvm/include" \
  "$tmp/site/tvm/src" "$tmp/site/tvm_ffi/include" "$tmp/site/bin" "$tmp/apt" "$tmp/debs" \
  "$tmp/sysroot/usr/share/doc" "$tmp/sysroot/usr/share/man" "$tmp/sysroot/usr/share/locale"
echo "$STAMP" > "$tmp/READY"
rm -rf "$DEST"
mv "$tmp" "$DEST"
echo "aarch64 emulation runtime ready: $(du -sh "$DEST" | cut -f1) in $DEST" >&2
