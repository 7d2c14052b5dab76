#!/usr/bin/env bash
# Cross-build the TVM runtime for armv7 hard-float Linux (arm-linux-gnueabihf: -march=armv7-a
# -mfpu=neon -mfloat-abi=hard), so armhf artifacts (rasp3b, sitara_am57x, LINUX/ARM_EABIHF) can be
# run under qemu-arm-static. No armv7 wheel of TVM or tvm_ffi exists in any version.
#
# Output, in .cache/armhf-runtime (override: NEO_LOCAL_ARMHF_RUNTIME):
#   lib/libtvm_ffi.so      tvm_ffi: the C ABI, objects, containers, modules, DSO/system-lib loading
#   lib/libtvm_runtime.so  the CPU runtime: Relax VM (executable loading, builtins),
#                          tensors, params, memory manager, thread pool (RUNPATH $ORIGIN)
#   READY                  the versions and inputs it was built from, written last; a change
#                          of any of them rebuilds
# A loader links with `-L$DEST/lib -ltvm_ffi`, dlopens libtvm_runtime.so (RTLD_GLOBAL: it
# registers the runtime's globals, and TVM-built libraries resolve TVMFFI* from the global scope)
# and runs with LD_LIBRARY_PATH=$DEST/lib under `qemu-arm-static -L /usr/arm-linux-gnueabihf`.
#
# Sources: all on local disk, nothing downloaded. The apache-tvm-ffi wheel installed in .venv ships
# its C++ sources (identical to the 0.1.14.post1 sdist's src/ and include/) and the apache-tvm
# wheel ships the runtime's (tvm/src/runtime, tvm/include). The headers those runtime sources
# include but the wheel lacks (tvm/support/{io,serializer}.h, src/support/{bytes_io,base64,
# utils}.h, the NVTX range) are small re-implementations in scripts/armhf-runtime/. Left out:
# RPC, disco, contrib (libtvm_runtime_extra), CUDA/Hexagon graph builtins, the LLM-serving VM
# builtins (KV cache, RNN state, sampling) and the fp16 fallbacks of builtin_fp16.cc (on ARM, gcc
# links libgcc's __gnu_f2h_ieee/__gnu_h2f_ieee into each artifact that needs them).
#
# Needs g++-arm-linux-gnueabihf (scripts/setup.sh installs it as root) and the .venv. Build time
# (-j2 -O2, 2 x86_64 cores shared with other work at a load average of 3 to 5): 383 to 502 s
# measured, 760 to 1000 s of compiler time (build.log lists each source's); 2.6 MB of libraries.
# A second run with the same inputs returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=${NEO_LOCAL_ARMHF_RUNTIME:-.cache/armhf-runtime}
PY=${PY:-.venv/bin/python}
CXX=${ARMHF_CXX:-arm-linux-gnueabihf-g++}
JOBS=${ARMHF_JOBS:-2}
SHIMS=scripts/armhf-runtime
ARCH_FLAGS="-march=armv7-a -mfpu=neon -mfloat-abi=hard"

command -v "$CXX" >/dev/null || { echo "setup-armhf-runtime: needs $CXX (g++-arm-linux-gnueabihf)" >&2; exit 1; }
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
versions=$("$PY" -c 'from importlib.metadata import version as v
print(" ".join(f"{p}=={v(p)}" for p in ("apache-tvm", "apache-tvm-ffi")))')
# what the build is made of: this script without its comments, and the support headers
inputs=$( (grep -v '^ *#' scripts/setup-armhf-runtime.sh; cat "$SHIMS"/include/tvm/support/*.h "$SHIMS"/include/tvm/support/cuda/*.h \
  "$SHIMS"/support/*.h) | sha256sum | cut -c1-16)
STAMP="arm-linux-gnueabihf $ARCH_FLAGS; $versions; g++ $("$CXX" -dumpfullversion); inputs $inputs"
if [ -f "$DEST/READY" ] && [ "$(cat "$DEST/READY")" = "$STAMP" ]; then
  exit 0
fi

FFI="$site/tvm_ffi"
TVM="$site/tvm"
tmp="$DEST.partial"
rm -rf "$tmp"
mkdir -p "$tmp/lib" "$tmp/obj" "$tmp/src/support" "$tmp/include"
# The runtime sources include "../support/x.h" relative to themselves: lay out a source tree
# with the shims beside a copy of the wheel's tvm/src/runtime.
cp -r "$TVM/src/runtime" "$tmp/src/runtime"
cp "$SHIMS"/support/*.h "$tmp/src/support/"
cp -r "$SHIMS/include/tvm" "$tmp/include/"

# tvm_ffi: everything but the Windows backtrace. Runtime: the CPU core, the Relax VM and the memory
# manager; not the fp16 fallbacks (they need compiler-rt's builtin_fp16.h, which no wheel ships)
# nor the LLM-serving state the VM builtins of no neo-local model use (paged KV cache, KV/RNN
# state, attention backends, token sampling: a fifth of the compile time).
mapfile -t FFI_SRCS < <(ls "$FFI"/src/ffi/*.cc "$FFI"/src/ffi/extra/*.cc | grep -v '/backtrace_win\.cc$')
RT="$tmp/src/runtime"
mapfile -t RT_SRCS < <(ls "$RT"/*.cc "$RT"/vm/*.cc "$RT"/memory/*.cc |
  grep -Ev '/(builtin_fp16|paged_kv_cache|kv_state|attn_backend|rnn_state|lm_support)\.cc$')

CXXFLAGS="$ARCH_FLAGS -O2 -fPIC -std=c++17 -fvisibility=hidden -fvisibility-inlines-hidden -DNDEBUG
  -Wno-psabi -DTVM_FFI_CMAKE_LITTLE_ENDIAN=1 -DTVM_FFI_USE_LIBBACKTRACE=0
  -DTVM_FFI_BACKTRACE_ON_SEGFAULT=0 -DTVM_RUNTIME_EXPORTS
  -I$tmp/include -I$TVM/include -I$FFI/include -I$FFI/3rdparty/dlpack/include"

compile() {  # SOURCE OBJDIR ROOT: SOURCE -> OBJDIR/<path under ROOT, / as _>.o, its seconds to LOG
  local start=$SECONDS obj
  obj="$2/$(echo "${1#"$3"/}" | tr / _).o"
  # shellcheck disable=SC2086
  "$CXX" $CXXFLAGS -c "$1" -o "$obj"
  echo "$((SECONDS - start)) s ${1#"$3"/}" >> "$LOG"
}
export -f compile
export CXX CXXFLAGS LOG="$tmp/build.log"

start=$SECONDS
echo "Cross-building the armhf TVM runtime in $DEST (once; about 8 min on 2 cores)" >&2
mkdir -p "$tmp/obj/ffi" "$tmp/obj/rt"
# largest sources first, so that the two queues end together
{ printf "%s $tmp/obj/ffi $FFI/src\n" "${FFI_SRCS[@]}"
  printf "%s $tmp/obj/rt $RT\n" "${RT_SRCS[@]}"
} | while read -r src rest; do echo "$(stat -c %s "$src") $src $rest"; done | sort -rn | cut -d' ' -f2- |
  xargs -P "$JOBS" -L 1 bash -c 'compile "$@"' _

LDFLAGS="$ARCH_FLAGS -shared -Wl,-s -Wl,--no-undefined"
# shellcheck disable=SC2086
"$CXX" $LDFLAGS -Wl,-soname,libtvm_ffi.so -o "$tmp/lib/libtvm_ffi.so" "$tmp"/obj/ffi/*.o -lpthread -ldl
# shellcheck disable=SC2086
"$CXX" $LDFLAGS -Wl,-soname,libtvm_runtime.so -Wl,-rpath,'$ORIGIN' -o "$tmp/lib/libtvm_runtime.so" \
  "$tmp"/obj/rt/*.o -L"$tmp/lib" -ltvm_ffi -lpthread -ldl
rm -rf "$tmp/obj" "$tmp/src" "$tmp/include"
sort -rn -o "$LOG" "$LOG"
echo "built in $((SECONDS - start)) s with -j$JOBS" >> "$LOG"
echo "$STAMP" > "$tmp/READY"
rm -rf "$DEST"
mv "$tmp" "$DEST"
echo "armhf TVM runtime ready in $DEST ($(tail -1 "$DEST/build.log"))" >&2
