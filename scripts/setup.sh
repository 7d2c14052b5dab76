#!/usr/bin/env bash
# Set up neo-local on a fresh machine: system tools, a virtualenv in .venv, the package and its
# pinned dependencies. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v objdump >/dev/null || need_apt+=(binutils)
# Cross targets: each linker with its target's C library (crti.o; the -dev package is only a
# Recommends of the gcc one), and qemu-user to run aarch64 artifacts. About 15 s per linker.
want_apt=()
while read -r linker crt packages; do
  if ! command -v "$linker" >/dev/null || [ ! -f "$crt" ]; then
    read -ra pkgs <<< "$packages"
    want_apt+=("${pkgs[@]}")
  fi
done <<'CROSS'
aarch64-linux-gnu-gcc   /usr/aarch64-linux-gnu/lib/crti.o    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
arm-linux-gnueabihf-gcc /usr/arm-linux-gnueabihf/lib/crti.o  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
arm-linux-gnueabihf-g++ /usr/arm-linux-gnueabihf/lib/libstdc++.so.6  g++-arm-linux-gnueabihf
i686-linux-gnu-gcc      /usr/i686-linux-gnu/lib/crti.o       gcc-i686-linux-gnu libc6-dev-i386-cross
x86_64-w64-mingw32-gcc  /usr/x86_64-w64-mingw32/lib/crt2.o   gcc-mingw-w64-x86-64-win32
CROSS
command -v qemu-aarch64-static >/dev/null || want_apt+=(qemu-user-static)
# wine64 runs x86_win64 artifacts (scripts/setup-windows-runtime.sh); about 20 s and 670 MB with its libraries
command -v wine64 >/dev/null || [ -x /usr/lib/wine/wine64 ] || want_apt+=(wine64)
if [ "$(id -u)" = 0 ]; then
  need_apt+=("${want_apt[@]}")
elif [ ${#want_apt[@]} -gt 0 ]; then
  echo "neo-local: without ${want_apt[*]} (install them as root) cross targets cannot be linked or run" >&2
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${need_apt[@]}" >/dev/null
  else
    echo "neo-local needs: ${need_apt[*]} (install them with your package manager)" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch is pinned to the CPU build (==2.13.0); pip finds it on local disk where it lies there.
stamp=.venv/.neo-local-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi

# aarch64 python + TVM runtime for the emulated check of aarch64 artifacts (cached in .cache/;
# skip with NEO_LOCAL_SKIP_EMULATION=1: aarch64 artifacts are then only checked structurally)
if [ "${NEO_LOCAL_SKIP_EMULATION:-0}" != 1 ]; then
  bash scripts/setup-aarch64-emulation.sh ||
    echo "neo-local: the aarch64 emulation runtime could not be prepared; aarch64 artifacts will be checked structurally only" >&2
  # the TVM runtime cross-built for armhf (about 8 min on 2 cores, once), to run armv7 artifacts under qemu-arm
  bash scripts/setup-armhf-runtime.sh ||
    echo "neo-local: the armhf TVM runtime could not be built; armv7 artifacts will be checked structurally only" >&2
fi

# Windows x64: tvm_ffi.lib to link x86_win64 DLLs against, and (with wine64) the Windows TVM runtime DLLs
# and a wine prefix to run them (from the win_amd64 wheels, once; cached in .cache/windows-x86_64)
bash scripts/setup-windows-runtime.sh ||
  echo "neo-local: the Windows runtime could not be prepared; x86_win64 artifacts may not link, or are checked structurally only" >&2
