/* Prints the global functions registered once libtvm_runtime.so is loaded, one per line: built for
 * armhf by tests/scripts/test_armhf_runtime.py and run under qemu-arm-static, it shows that the
 * cross-built runtime loads and registers what the Relax VM needs. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <tvm/ffi/c_api.h>

static TVMFFIAny call_int(TVMFFIObjectHandle f, int64_t arg) {
  TVMFFIAny in, out;
  memset(&in, 0, sizeof(in));
  memset(&out, 0, sizeof(out));
  in.type_index = kTVMFFIInt;
  in.v_int64 = arg;
  if (TVMFFIFunctionCall(f, &in, 1, &out) != 0) out.type_index = kTVMFFINone;
  return out;
}

static void print_str(const TVMFFIAny* s) {
  if (s->type_index == kTVMFFISmallStr) {
    printf("%.*s\n", (int)s->small_str_len, s->v_bytes);
  } else if (s->type_index == kTVMFFIStr) {
    const TVMFFIByteArray* b = (const TVMFFIByteArray*)((const char*)s->v_obj + sizeof(TVMFFIObject));
    printf("%.*s\n", (int)b->size, b->data);
    TVMFFIObjectDecRef(s->v_obj);
  }
}

int main(int argc, char** argv) {
  const char* runtime = argc > 1 ? argv[1] : "libtvm_runtime.so";
  if (dlopen(runtime, RTLD_NOW | RTLD_GLOBAL) == NULL) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  const char* name = "ffi.FunctionListGlobalNamesFunctor";
  TVMFFIByteArray key = {name, strlen(name)};
  TVMFFIObjectHandle getter = NULL;
  TVMFFIAny functor;
  memset(&functor, 0, sizeof(functor));
  if (TVMFFIFunctionGetGlobal(&key, &getter) != 0 || getter == NULL ||
      TVMFFIFunctionCall(getter, NULL, 0, &functor) != 0 || functor.type_index != kTVMFFIFunction) {
    fprintf(stderr, "no %s\n", name);
    return 1;
  }
  int64_t count = call_int(functor.v_obj, -1).v_int64;
  for (int64_t i = 0; i < count; ++i) {
    TVMFFIAny s = call_int(functor.v_obj, i);
    print_str(&s);
  }
  return 0;
}
