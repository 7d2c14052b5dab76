/*
 * neo_run: run a neo-local artifact's library (the Relax VM in compiled.dll / compiled.so) where
 * no Python with TVM exists: Windows x64 under wine, armv7 hard-float Linux under qemu-arm.
 * neo_local.targets.emulation builds it with the target's cross compiler and runs it there.
 *
 *   neo_run RUNTIME_DIR LIBRARY OUT_DIR [INPUT.npy ...]
 *
 * RUNTIME_DIR holds the TVM FFI and TVM runtime libraries built for the target
 * (tvm_ffi.dll + tvm_runtime.dll, or libtvm_ffi.so + libtvm_runtime.so); both are opened at run
 * time, so the loader links against neither. LIBRARY is the artifact's library. The inputs are
 * the VM's "main" arguments in order, as .npy files (format 1.0-3.0, little-endian, C order).
 * Every output is written as OUT_DIR/output_<i>.npy (format 1.0), tuples flattened in order.
 * It follows what tvm.runtime.vm.VirtualMachine does from Python: ffi.ModuleLoadFromFile,
 * then the module's vm_load_executable, vm_initialization (CPU, pooled allocator) and main.
 *
 * Exit status: 0 on success, 2 on wrong usage, 1 on any other failure, with one line
 * "neo_run: ..." on stderr that says what failed.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tvm/ffi/c_api.h>

#ifdef _WIN32
#include <windows.h>
#define FFI_LIB "tvm_ffi.dll"
#define RUNTIME_LIB "tvm_runtime.dll"
#define SEP "\\"
#else
#include <dlfcn.h>
#define FFI_LIB "libtvm_ffi.so"
#define RUNTIME_LIB "libtvm_runtime.so"
#define SEP "/"
#endif

#define MAX_DIMS 16
#define ALIGNMENT 64 /* TVM's kernels assume 64-byte aligned tensors */

static struct {
  __typeof__(&TVMFFIFunctionGetGlobal) get_global;
  __typeof__(&TVMFFIFunctionCall) call;
  __typeof__(&TVMFFIObjectDecRef) dec_ref;
  __typeof__(&TVMFFIErrorMoveFromRaised) move_error;
  __typeof__(&TVMFFITensorFromDLPack) tensor_from_dlpack;
} ffi;

static void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("neo_run: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* ------------------------------------------------------------------ shared libraries */

static void* open_library(const char* dir, const char* name) {
  char path[4096];
  snprintf(path, sizeof path, "%s" SEP "%s", dir, name);
#ifdef _WIN32
  void* lib = LoadLibraryA(path);
  if (!lib) fail("cannot load %s (Windows error %lu)", path, (unsigned long)GetLastError());
#else
  /* global scope: the artifact library resolves its TVM FFI symbols from here */
  void* lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (!lib) fail("cannot load %s: %s", path, dlerror());
#endif
  return lib;
}

static void* symbol(void* lib, const char* name) {
#ifdef _WIN32
  void* sym = (void*)GetProcAddress((HMODULE)lib, name);
#else
  void* sym = dlsym(lib, name);
#endif
  if (!sym) fail("the TVM FFI library has no symbol %s", name);
  return sym;
}

static void load_runtime(const char* dir) {
#ifdef _WIN32
  /* tvm_runtime.dll finds tvm_ffi.dll and the MSVC runtime DLLs next to it */
  if (!SetDllDirectoryA(dir)) fail("cannot add %s to the DLL search path", dir);
#endif
  void* lib = open_library(dir, FFI_LIB);
  ffi.get_global = symbol(lib, "TVMFFIFunctionGetGlobal");
  ffi.call = symbol(lib, "TVMFFIFunctionCall");
  ffi.dec_ref = symbol(lib, "TVMFFIObjectDecRef");
  ffi.move_error = symbol(lib, "TVMFFIErrorMoveFromRaised");
  ffi.tensor_from_dlpack = symbol(lib, "TVMFFITensorFromDLPack");
  open_library(dir, RUNTIME_LIB); /* registers the Relax VM's global functions */
}

/* ------------------------------------------------------------------ FFI calls */

static void fail_raised(const char* what) {
  TVMFFIObjectHandle error = NULL;
  ffi.move_error(&error);
  if (!error) fail("%s failed", what);
  const TVMFFIErrorCell* cell = (const TVMFFIErrorCell*)((char*)error + sizeof(TVMFFIObject));
  fail("%s failed: %.*s: %.*s", what, (int)cell->kind.size, cell->kind.data, (int)cell->message.size,
       cell->message.data);
}

static TVMFFIAny none(void) {
  TVMFFIAny any;
  memset(&any, 0, sizeof any);
  any.type_index = kTVMFFINone;
  return any;
}

static TVMFFIAny raw_str(const char* s) {
  TVMFFIAny any = none();
  any.type_index = kTVMFFIRawStr;
  any.v_c_str = s;
  return any;
}

static TVMFFIAny integer(int64_t v, int32_t type_index) {
  TVMFFIAny any = none();
  any.type_index = type_index;
  any.v_int64 = v;
  return any;
}

static TVMFFIAny object(TVMFFIObjectHandle obj) {
  TVMFFIAny any = none();
  any.type_index = ((TVMFFIObject*)obj)->type_index;
  any.v_obj = (TVMFFIObject*)obj;
  return any;
}

static TVMFFIAny call(TVMFFIObjectHandle func, TVMFFIAny* args, int n, const char* what) {
  TVMFFIAny result = none();
  if (ffi.call(func, args, n, &result) != 0) fail_raised(what);
  return result;
}

static TVMFFIObjectHandle global(const char* name) {
  TVMFFIByteArray key = {name, strlen(name)};
  TVMFFIObjectHandle func = NULL;
  if (ffi.get_global(&key, &func) != 0) fail_raised(name);
  if (!func) fail("the TVM runtime has no global function %s", name);
  return func;
}

static TVMFFIObjectHandle module_function(TVMFFIObjectHandle module, const char* name) {
  TVMFFIAny args[3] = {object(module), raw_str(name), integer(0, kTVMFFIBool)};
  TVMFFIAny func = call(global("ffi.ModuleGetFunction"), args, 3, name);
  if (func.type_index != kTVMFFIFunction) fail("the module has no function %s", name);
  return func.v_obj;
}

/* ------------------------------------------------------------------ .npy files */

typedef struct {
  DLDataType dtype;
  int ndim;
  int64_t shape[MAX_DIMS];
} ArraySpec;

static size_t element_count(const ArraySpec* spec) {
  size_t n = 1;
  for (int i = 0; i < spec->ndim; ++i) n *= (size_t)spec->shape[i];
  return n;
}

static size_t nbytes(const ArraySpec* spec) { return element_count(spec) * (spec->dtype.bits / 8); }

static DLDataType parse_descr(const char* descr, const char* path) {
  static const char kinds[] = "iufb";
  static const uint8_t codes[] = {kDLInt, kDLUInt, kDLFloat, kDLBool};
  const char* kind = strchr(kinds, descr[1]);
  int size = atoi(descr + 2);
  if (descr[0] == '>' || !kind || descr[1] == '\0' || size <= 0 || size > 8)
    fail("%s: unsupported dtype '%s' (little-endian bool, int, uint and float only)", path, descr);
  DLDataType dtype = {codes[kind - kinds], (uint8_t)(size * 8), 1};
  return dtype;
}

static const char* find_key(const char* header, const char* key, const char* path) {
  const char* at = strstr(header, key);
  if (!at) fail("%s: the .npy header has no %s", path, key);
  at = strchr(at + strlen(key), ':');
  if (!at) fail("%s: malformed .npy header", path);
  return at + 1 + strspn(at + 1, " ");
}

static ArraySpec parse_header(const char* header, const char* path) {
  ArraySpec spec;
  char descr[16] = {0};
  const char* at = find_key(header, "'descr'", path);
  if (sscanf(at, "'%15[^']'", descr) != 1) fail("%s: malformed descr in the .npy header", path);
  spec.dtype = parse_descr(descr, path);
  if (strncmp(find_key(header, "'fortran_order'", path), "False", 5) != 0)
    fail("%s: Fortran-ordered arrays are not supported", path);
  at = find_key(header, "'shape'", path);
  if (*at != '(') fail("%s: malformed shape in the .npy header", path);
  spec.ndim = 0;
  for (++at; *at && *at != ')';) {
    char* end;
    long long dim = strtoll(at, &end, 10);
    if (end == at) break;
    if (spec.ndim == MAX_DIMS) fail("%s: more than %d dimensions", path, MAX_DIMS);
    spec.shape[spec.ndim++] = dim;
    at = end + strspn(end, ", ");
  }
  return spec;
}

static void* aligned_buffer(size_t size, void** base) {
  *base = malloc(size + ALIGNMENT);
  if (!*base) fail("out of memory (%zu bytes)", size);
  return (void*)(((uintptr_t)*base + ALIGNMENT - 1) & ~(uintptr_t)(ALIGNMENT - 1));
}

static void free_managed(DLManagedTensor* self) {
  free(self->manager_ctx);
  free(self->dl_tensor.shape);
  free(self);
}

/* Reads an .npy file into a TVM FFI tensor on the CPU. */
static TVMFFIObjectHandle read_npy(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) fail("cannot open %s", path);
  unsigned char magic[8];
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6) != 0 || magic[6] < 1 || magic[6] > 3)
    fail("%s is not an .npy file (format 1.0-3.0)", path);
  unsigned char len[4] = {0};
  size_t len_bytes = magic[6] == 1 ? 2 : 4;
  if (fread(len, 1, len_bytes, f) != len_bytes) fail("%s: truncated .npy header", path);
  size_t header_len = len[0] | len[1] << 8 | (size_t)len[2] << 16 | (size_t)len[3] << 24;
  char* header = calloc(header_len + 1, 1);
  if (!header || fread(header, 1, header_len, f) != header_len) fail("%s: truncated .npy header", path);
  ArraySpec spec = parse_header(header, path);
  free(header);

  DLManagedTensor* managed = calloc(1, sizeof *managed);
  if (!managed) fail("out of memory");
  DLTensor* t = &managed->dl_tensor;
  t->data = aligned_buffer(nbytes(&spec), &managed->manager_ctx);
  if (fread(t->data, 1, nbytes(&spec), f) != nbytes(&spec)) fail("%s: fewer data bytes than its shape needs", path);
  fclose(f);
  int64_t* shape = malloc(sizeof(int64_t) * (spec.ndim ? spec.ndim : 1));
  if (!shape) fail("out of memory");
  memcpy(shape, spec.shape, sizeof(int64_t) * spec.ndim);
  t->device.device_type = kDLCPU;
  t->device.device_id = 0;
  t->ndim = spec.ndim;
  t->dtype = spec.dtype;
  t->shape = shape;
  managed->deleter = free_managed;
  TVMFFIObjectHandle tensor = NULL;
  if (ffi.tensor_from_dlpack(managed, ALIGNMENT, 1, &tensor) != 0) fail_raised(path);
  return tensor;
}

static const char* descr_of(DLDataType dtype) {
  static char descr[8];
  static const char kinds[] = {[kDLInt] = 'i', [kDLUInt] = 'u', [kDLFloat] = 'f', [kDLBool] = 'b'};
  char kind = dtype.code < sizeof kinds ? kinds[dtype.code] : 0;
  if (!kind || dtype.lanes != 1 || dtype.bits % 8 != 0)
    fail("an output has a dtype .npy cannot hold (code %d, %d bits, %d lanes)", dtype.code, dtype.bits,
         dtype.lanes);
  snprintf(descr, sizeof descr, "%c%c%d", dtype.bits == 8 ? '|' : '<', kind, dtype.bits / 8);
  return descr;
}

static void write_npy(const char* path, const DLTensor* t) {
  if (t->device.device_type != kDLCPU) fail("an output is on device type %d, not the CPU", t->device.device_type);
  ArraySpec spec = {t->dtype, t->ndim, {0}};
  char shape[512] = "", dim[32];
  int64_t expected_stride = 1;
  for (int i = t->ndim - 1; i >= 0; --i) {
    if (t->strides && t->shape[i] > 1 && t->strides[i] != expected_stride) fail("an output is not contiguous");
    expected_stride *= t->shape[i];
  }
  for (int i = 0; i < t->ndim; ++i) {
    spec.shape[i] = t->shape[i];
    snprintf(dim, sizeof dim, "%lld,%s", (long long)t->shape[i], i + 1 < t->ndim ? " " : "");
    strncat(shape, dim, sizeof shape - strlen(shape) - 1);
  }
  if (t->ndim > 1) shape[strlen(shape) - 1] = '\0'; /* (2, 3) but (4,) */
  char header[640];
  int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                   descr_of(t->dtype), shape);
  int padded = (10 + n + 1 + 63) / 64 * 64 - 10; /* magic, version, length; ends with '\n' */
  memset(header + n, ' ', padded - n - 1);
  header[padded - 1] = '\n';
  unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, padded & 0xff, padded >> 8};
  FILE* f = fopen(path, "wb");
  if (!f) fail("cannot write %s", path);
  size_t size = nbytes(&spec);
  if (fwrite(prefix, 1, 10, f) != 10 || fwrite(header, 1, padded, f) != (size_t)padded ||
      fwrite((char*)t->data + t->byte_offset, 1, size, f) != size || fclose(f) != 0)
    fail("cannot write %s", path);
}

/* Writes a tensor, or each element of a (nested) tuple, as the next output_<i>.npy. */
static void write_outputs(const char* out_dir, TVMFFIAny value, int* count) {
  char path[4096];
  if (value.type_index == kTVMFFITensor) {
    snprintf(path, sizeof path, "%s" SEP "output_%d.npy", out_dir, (*count)++);
    write_npy(path, (const DLTensor*)((char*)value.v_obj + sizeof(TVMFFIObject)));
  } else if (value.type_index == kTVMFFIArray) {
    TVMFFIAny size = call(global("ffi.ArraySize"), &value, 1, "ffi.ArraySize");
    for (int64_t i = 0; i < size.v_int64; ++i) {
      TVMFFIAny args[2] = {value, integer(i, kTVMFFIInt)};
      TVMFFIAny item = call(global("ffi.ArrayGetItem"), args, 2, "ffi.ArrayGetItem");
      write_outputs(out_dir, item, count);
      if (item.type_index >= kTVMFFIStaticObjectBegin) ffi.dec_ref(item.v_obj);
    }
  } else {
    fail("main returned a value of type index %d, not a tensor or a tuple of tensors", value.type_index);
  }
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: neo_run RUNTIME_DIR LIBRARY OUT_DIR [INPUT.npy ...]\n");
    return 2;
  }
  load_runtime(argv[1]);
  int n_inputs = argc - 4;
  TVMFFIAny* inputs = calloc(n_inputs ? n_inputs : 1, sizeof(TVMFFIAny));
  if (!inputs) fail("out of memory");
  for (int i = 0; i < n_inputs; ++i) inputs[i] = object(read_npy(argv[4 + i]));

  TVMFFIAny path = raw_str(argv[2]);
  TVMFFIAny library = call(global("ffi.ModuleLoadFromFile"), &path, 1, "loading the library");
  TVMFFIAny vm = call(module_function(library.v_obj, "vm_load_executable"), NULL, 0, "vm_load_executable");
  TVMFFIAny init[3] = {integer(kDLCPU, kTVMFFIInt), integer(0, kTVMFFIInt), integer(2, kTVMFFIInt)}; /* pooled */
  call(module_function(vm.v_obj, "vm_initialization"), init, 3, "vm_initialization");
  TVMFFIAny result = call(module_function(vm.v_obj, "main"), inputs, n_inputs, "main");
  int count = 0;
  write_outputs(argv[3], result, &count);
  return 0;
}
