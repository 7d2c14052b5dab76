#!/usr/bin/env bash
# Windows x64 pieces from the win_amd64 wheels of the pinned apache-tvm and apache-tvm-ffi:
# - tvm_ffi.lib, the import library x86_win64 DLLs link against (.cache/windows-x86_64/apache-tvm-ffi-VER);
# - for running those DLLs under wine (neo_local.targets.emulation): tvm_ffi.dll, tvm_runtime.dll and the
#   MSVC runtime DLLs they import (msvcp140, vcruntime140, vcruntime140_1; wine provides the rest), plus a
#   private wine prefix made once by wineboot, in .cache/windows-x86_64/runtime (override:
#   NEO_LOCAL_WINDOWS_RUNTIME). READY names the versions, so a change of versions rebuilds it.
# The run part needs wine64 (Debian package wine64; scripts/setup.sh installs it as root); without it only
# (or with NEO_LOCAL_SKIP_EMULATION=1) tvm_ffi.lib only is fetched. Downloads about 70 MB of wheels once; keeps about 11 MB of DLLs and a 690 MB prefix.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
TVM=0.27.0.post1
TVM_FFI=$("$PY" -c 'from importlib.metadata import version; print(version("apache-tvm-ffi"))')
LIB_DIR=".cache/windows-x86_64/apache-tvm-ffi-$TVM_FFI"
DEST=${NEO_LOCAL_WINDOWS_RUNTIME:-.cache/windows-x86_64/runtime}
STAMP="apache-tvm $TVM, apache-tvm-ffi $TVM_FFI (win_amd64); layout 1"
WINE=$(command -v wine64 || { [ -x /usr/lib/wine/wine64 ] && echo /usr/lib/wine/wine64; } || true)
[ "${NEO_LOCAL_SKIP_EMULATION:-0}" != 1 ] || WINE=

need_lib=$([ -f "$LIB_DIR/tvm_ffi.lib" ] || echo 1)
need_run=$([ -n "$WINE" ] && { [ ! -f "$DEST/READY" ] || [ "$(cat "$DEST/READY")" != "$STAMP" ]; } && echo 1 || true)
[ -n "$need_lib$need_run" ] || exit 0

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
specs=("apache-tvm-ffi==$TVM_FFI")
[ -z "$need_run" ] || specs+=("apache-tvm==$TVM")
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --platform win_amd64 \
  --python-version 3.11 -d "$wheels" "${specs[@]}"

# members of the wheels, by name: tvm_ffi/lib/tvm_ffi.lib -> DIR/tvm_ffi.lib
extract() {
  "$PY" - "$wheels" "$@" <<'PY'
import glob, os, sys, zipfile
wheels, dest, *members = sys.argv[1:]
os.makedirs(dest, exist_ok=True)
for whl in glob.glob(os.path.join(wheels, "*.whl")):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if name in members:
                with open(os.path.join(dest, os.path.basename(name)), "wb") as out:
                    out.write(z.read(name))
                members.remove(name)
if members:
    sys.exit(f"not in the win_amd64 wheels: {', '.join(members)}")
PY
}

if [ -n "$need_lib" ]; then
  rm -rf "$LIB_DIR.partial"
  extract "$LIB_DIR.partial" tvm_ffi/lib/tvm_ffi.lib
  rm -rf "$LIB_DIR" && mv "$LIB_DIR.partial" "$LIB_DIR"
fi

if [ -n "$need_run" ]; then
  echo "Preparing the Windows TVM runtime and a wine prefix in $DEST (once)" >&2
  tmp="$DEST.partial"
  rm -rf "$tmp"
  extract "$tmp" tvm_ffi/lib/tvm_ffi.dll tvm/lib/tvm_runtime.dll apache_tvm.libs/msvcp140.dll \
    apache_tvm.libs/vcruntime140.dll apache_tvm.libs/vcruntime140_1.dll
  # no Mono/Gecko installers, no desktop menu entries: the prefix only runs console programs
  WINEPREFIX=$(cd "$tmp" && pwd)/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d" \
    "$WINE" wineboot --init >/dev/null 2>&1
  WINEPREFIX=$(cd "$tmp" && pwd)/wineprefix "$(dirname "$WINE")/wineserver" -w  # the prefix is written out
  echo "$STAMP" > "$tmp/READY"
  rm -rf "$DEST"
  mv "$tmp" "$DEST"
  echo "Windows runtime ready: $(du -sh "$DEST" | cut -f1) in $DEST" >&2
fi
