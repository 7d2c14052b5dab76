/*
 * The parallel launcher of neo-local's Linux CPU libraries, linked into each library.
 *
 * Why: TVM's kernels start every parallel loop through TVMBackendParallelLaunch. TVM's own pool
 * waits with sched_yield on both sides (a system call per spin), which costs about 0.6 us per
 * kernel on the 2-core Zen 5 build machine: a quarter of a 0.07 ms MobileNet. This pool's
 * threads wait with the CPU's pause/yield hint instead, and idle workers sleep after a few
 * milliseconds. Each thread has a range of a launch's tasks (the lambda's num_task), runs its own
 * from the front, then takes what is left of the others' from their back: a sleeping or
 * descheduled worker (an idle gap, a busy machine) costs parallelism for that kernel, never a
 * wait. So kernels must not need their tasks to run at once: TVMBackendParallelBarrier is not
 * supported (no pipeline of ours, nor TVM's CPU pipeline, emits it: the libraries have no
 * __TVMBackendParallelBarrier).
 *
 * How many tasks: one per thread for a kernel that runs short, ``SPLIT_TASKS`` per thread for one
 * whose first launches took ``SPLIT_NS`` or more (``Kernel``). A kernel's parallel loop is cut
 * into equal parts, one per task, but its threads do not run equally fast: a core that another
 * process or VM shares, the thread that ran the kernel before, a hybrid CPU's small cores. With
 * one part each, the fast thread waits for the slow one; with several, it takes the slow one's
 * last parts. Measured (znver4 VM, 2 threads, perf by thread): EfficientNet's calling thread
 * waited for its worker 11-17% of its time and the worker for it 14%, within kernels whose parts
 * were equal. In one process, the same library switched between 1 and 8 parts a thread (30-40
 * rounds, paired): every kernel split, ResNet-50 0.965, EfficientNet 0.966, SqueezeNet 0.984 of
 * the time on the machine's slow phases, 0.998-1.002 on its calm ones, and MobileNetV2-style at
 * 64x64, kernels of a few microseconds, 1.085; split by this rule, EfficientNet 0.984 and 0.986,
 * ResNet-50 0.985, SqueezeNet 0.934 (slow phase) and 1.008 (calm), MobileNetV2-style 1.002.
 *
 * How it is installed: the kernels call through the library's pointer __TVMBackendParallelLaunch,
 * which TVM's loader fills with its own launcher when it can look the pointer up. The definition
 * below is hidden, so the loader cannot, and the kernels keep this one.
 *
 * Threads: TVM_NUM_THREADS, else OMP_NUM_THREADS, else the online CPUs (halved on x86, for
 * hyperthreads), read when the first parallel kernel runs, as TVM does; neo_local_set_threads
 * changes it later. As TVM's, each worker is bound to a core (the n-th one the process may use)
 * unless TVM_BIND_THREADS is set to another value than 1 (neo-local's runtime sets 0); the
 * calling thread is not. A launch while another thread (or a worker) is using the pool runs its
 * loop alone on the calling thread. No thread-local variables: on ARM they would make the
 * library need the dynamic loader (ld-linux-armhf.so.3) by name. Compiled as C (cross gcc) or
 * C++ (the host's g++), hence the GNU atomics.
 *
 * One pool per process: each library's pool would keep its workers spinning while another
 * library runs, the two competing for the cores (measured: MobileNetV2-style loaded twice and
 * called in turn, 0.104 ms a run against 0.064 alone). So at its first launch a library looks
 * for another library's pool that hosts the process's (the exported NeoLocalPool
 * __neo_local_thread_pool_v1, found with dl_iterate_phdr and dlsym), and hands its launches to
 * it; finding none, it hosts the pool itself, and makes itself impossible to unload
 * (RTLD_NODELETE), since other libraries' launches run on its workers' code. Two libraries that
 * start at the same moment may both host one: each then runs its own, as before. Libraries of
 * another pool ABI (the symbol's name carries its version) keep their own pools too.
 * NEO_LOCAL_THREAD_POOL=tvm, read at the first launch, sends every launch to TVM's pool.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setaffinity_np, CPU_SET */
#endif
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  void* sync_handle;
  int32_t num_task;
} TVMParallelGroupEnv;
typedef int (*FTVMParallelLambda)(int task_id, TVMParallelGroupEnv* penv, void* cdata);

/* TVM's launcher (libtvm_runtime, which the kernels need anyway), for NEO_LOCAL_THREAD_POOL=tvm */
int TVMBackendParallelLaunch(FTVMParallelLambda lambda, void* cdata, int num_task);

/* tvm-ffi's C API (libtvm_ffi, loaded before any library): errors move between threads */
void TVMFFIErrorMoveFromRaised(void** result);
void TVMFFIErrorSetRaised(void* error);
int TVMFFIObjectDecRef(void* obj);

enum {
  MAX_THREADS = 256,
  WORKER_SPINS = 1 << 18,   /* pause hints before an idle worker sleeps (6 ms on Zen 5) */
  CALLER_SPINS = 1 << 12,   /* pause hints before the caller yields while workers finish */
  SPLIT_TASKS = 8,          /* tasks per thread for a kernel that runs long */
  SPLIT_NS = 50000,         /* ... one that took this long or longer (its fastest timed launch) */
  TIMED_LAUNCHES = 3,       /* launches timed per kernel, after its first (which pays for cold caches) */
  KERNEL_SLOTS = 1024,      /* kernels remembered, by the address of their lambda */
};

#define LOAD(p) __atomic_load_n(p, __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n(p, v, __ATOMIC_SEQ_CST)
#define ACQUIRE(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)

/*
 * The state is laid out by who writes it, one cache line each, since a line written by one core
 * and read by another costs a transfer (100-200 ns between the two vCPUs of the znver4 VM), and a
 * launch of a 2 us kernel should cost as few as possible: the caller writes the launch's line,
 * which the workers spin on, and each thread's range of tasks has a line, which only its owner
 * writes unless another thread takes from it. A launch is numbered (``launch.count``); a range
 * carries the number of the launch it was set for, so that a worker late for a launch takes
 * nothing from the next.
 */
static struct {
  unsigned count;      /* bumped by each launch, after the fields below are written */
  int stop;
  FTVMParallelLambda lambda;
  void* cdata;
  TVMParallelGroupEnv env;    /* its sync_handle stays NULL (static storage): no barrier is offered */
} __attribute__((aligned(64))) launch;

typedef struct {
  uint64_t range;      /* the tasks still to run: launch number (32 bits), first (16), end (16) */
  void* error;         /* the first error of this worker's tasks in the launch, for the caller */
} __attribute__((aligned(64))) Range;

static Range ranges[MAX_THREADS];

static struct {
  unsigned finished;   /* tasks finished in the current launch */
} __attribute__((aligned(64))) progress;

/* how long a kernel ran (the caller's side only: launches hold the pool one at a time) */
typedef struct {
  FTVMParallelLambda lambda;
  unsigned launches;   /* launches seen, up to 1 + TIMED_LAUNCHES */
  uint64_t fastest_ns;
  int tasks_per_thread;
} Kernel;

static Kernel kernels[KERNEL_SLOTS];

static struct {
  int sleepers;
  int wake_sent;       /* 1: the sleepers have been woken for a launch (one system call per sleep) */
} __attribute__((aligned(64))) sleep_state;

/* the caller's side: read by workers only when they start */
static struct {
  int threads;         /* threads in use, the caller's included; 0: not started */
  int requested;       /* neo_local_set_threads' count; 0: from the environment */
  int busy;
  unsigned first_launch;
  pthread_t workers[MAX_THREADS];
} __attribute__((aligned(64))) pool;

static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

static unsigned wait_for_launch(unsigned seen) {
  unsigned now = seen;
  for (int i = 0; i < WORKER_SPINS && now == seen && !LOAD(&launch.stop); ++i) {
    cpu_relax();
    now = ACQUIRE(&launch.count);
  }
  if (now != seen || LOAD(&launch.stop)) return now;
  pthread_mutex_lock(&pool_mutex);
  __atomic_add_fetch(&sleep_state.sleepers, 1, __ATOMIC_SEQ_CST);
  STORE(&sleep_state.wake_sent, 0);
  while ((now = LOAD(&launch.count)) == seen && !LOAD(&launch.stop)) pthread_cond_wait(&pool_wake, &pool_mutex);
  __atomic_sub_fetch(&sleep_state.sleepers, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&pool_mutex);
  return now;
}

static inline uint64_t pack_range(unsigned n, unsigned first, unsigned end) {
  return ((uint64_t)n << 32) | ((uint64_t)first << 16) | (uint64_t)end;
}

/* takes one task of thread t's range in launch n, from the front (its owner) or the back (another
 * thread); -1 when none is left. A range of another launch has nothing to take: one that is set
 * for launch n has the launch's lambda and env in place, since the caller writes them before. */
static int take(int t, unsigned n, int from_front) {
  uint64_t r = ACQUIRE(&ranges[t].range);
  for (;;) {
    unsigned first = (unsigned)(r >> 16) & 0xffff, end = (unsigned)r & 0xffff;
    if ((unsigned)(r >> 32) != n || first >= end) return -1;
    uint64_t rest = from_front ? pack_range(n, first + 1, end) : pack_range(n, first, end - 1);
    if (__atomic_compare_exchange_n(&ranges[t].range, &r, rest, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return (int)(from_front ? first : end - 1);
  }
}

/* thread id runs its own tasks of launch n, then what is left of the pool's other threads';
 * returns whether one failed. A worker keeps its first error for the caller. */
static int run_tasks(int id, unsigned n) {
  int threads = pool.threads, failed = 0;
  unsigned ran = 0;
  for (int k = 0; k < threads; ++k) {
    for (int task; (task = take((id + k) % threads, n, k == 0)) >= 0; ++ran) {
      if (launch.lambda(task, &launch.env, launch.cdata) == 0) continue;
      if (id > 0) {
        void* error = NULL;
        TVMFFIErrorMoveFromRaised(failed ? &error : &ranges[id].error);
        if (error != NULL) TVMFFIObjectDecRef(error);
      }
      failed = 1;
    }
  }
  if (ran) __atomic_add_fetch(&progress.finished, ran, __ATOMIC_ACQ_REL);
  return failed;
}

static void* worker(void* arg) {
  int id = (int)(intptr_t)arg;
  unsigned seen = pool.first_launch;
  for (;;) {
    seen = wait_for_launch(seen);
    if (LOAD(&launch.stop)) return NULL;
    run_tasks(id, seen);
  }
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int env_threads(void) {
  const char* value = getenv("TVM_NUM_THREADS");
  if (value == NULL || atoi(value) <= 0) value = getenv("OMP_NUM_THREADS");
  if (value != NULL && atoi(value) > 0) return atoi(value);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__x86_64__) || defined(__i386__)
  cpus /= 2;
#endif
  return cpus > 1 ? (int)cpus : 1;
}

static void reset_after_fork(void) {
  /* the child has only the forking thread: forget the workers, start afresh on its next launch */
  pthread_mutex_init(&pool_mutex, NULL);
  pthread_cond_init(&pool_wake, NULL);
  pool.threads = 0;
  launch.stop = 0;
  sleep_state.sleepers = 0;
  sleep_state.wake_sent = 0;
  pool.busy = 0;
}

static int binds_workers(void) {
  const char* value = getenv("TVM_BIND_THREADS");
  return value == NULL || atoi(value) == 1;
}

static void bind_to_cpu(pthread_t thread, int nth) {
  cpu_set_t allowed, one;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) == 0) return;
  nth %= CPU_COUNT(&allowed);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed) && nth-- == 0) {
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      pthread_setaffinity_np(thread, sizeof one, &one);
      return;
    }
  }
}

static void start(void) {
  static int fork_handler;
  int wanted = pool.requested > 0 ? pool.requested : env_threads();
  if (wanted > MAX_THREADS) wanted = MAX_THREADS;
  if (!fork_handler) fork_handler = pthread_atfork(NULL, NULL, reset_after_fork) == 0;
  pool.first_launch = LOAD(&launch.count);
  STORE(&launch.stop, 0);
  pool.threads = 1;
  int bind = binds_workers();
  for (int id = 1; id < wanted; ++id) {
    if (pthread_create(&pool.workers[id], NULL, worker, (void*)(intptr_t)id) != 0) break;
    if (bind) bind_to_cpu(pool.workers[id], id);
    pool.threads = id + 1;
  }
}

static void stop_workers(void) {
  if (pool.threads <= 1) {
    pool.threads = 0;
    return;
  }
  STORE(&launch.stop, 1);
  pthread_mutex_lock(&pool_mutex);
  pthread_cond_broadcast(&pool_wake);
  pthread_mutex_unlock(&pool_mutex);
  for (int id = 1; id < pool.threads; ++id) pthread_join(pool.workers[id], NULL);
  pool.threads = 0;
}

static int run_alone(FTVMParallelLambda lambda, void* cdata) {
  TVMParallelGroupEnv env = {NULL, 1};
  return lambda(0, &env, cdata) == 0 ? 0 : -1;
}

static int try_take_pool(void) {
  int idle = 0;
  return __atomic_compare_exchange_n(&pool.busy, &idle, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* -1: not read yet; 1: NEO_LOCAL_THREAD_POOL=tvm, every launch goes to TVM's pool */
static int use_tvm_pool = -1;

/* a launch on this library's own pool */
static int local_launch(FTVMParallelLambda lambda, void* cdata, int num_task) {
  /* taken from the first launch to the last worker's end: a launch from a worker runs alone too */
  if (!try_take_pool()) return run_alone(lambda, cdata);
  if (pool.threads == 0) start();
  if (pool.threads == 1) {
    __atomic_store_n(&pool.busy, 0, __ATOMIC_RELEASE);
    return run_alone(lambda, cdata);
  }
  int threads = num_task <= 0 || num_task > pool.threads ? pool.threads : num_task;
  Kernel* kernel = &kernels[((uintptr_t)lambda >> 4) % KERNEL_SLOTS];
  if (kernel->lambda != lambda) {
    Kernel fresh = {lambda, 0, UINT64_MAX, 1};
    *kernel = fresh;
  }
  int per_thread = kernel->tasks_per_thread;
  int timed = kernel->launches > 0 && kernel->launches <= TIMED_LAUNCHES;
  uint64_t start_ns = timed ? now_ns() : 0;
  unsigned n = launch.count + 1;
  launch.lambda = lambda;
  launch.cdata = cdata;
  launch.env.num_task = threads * per_thread;
  __atomic_store_n(&progress.finished, 0, __ATOMIC_RELAXED);
  for (int t = 0; t < pool.threads; ++t) {
    unsigned first = t < threads ? t * per_thread : 0;
    __atomic_store_n(&ranges[t].range, pack_range(n, first, t < threads ? first + per_thread : 0), __ATOMIC_RELAXED);
  }
  __atomic_store_n(&launch.count, n, __ATOMIC_SEQ_CST);
  if (LOAD(&sleep_state.sleepers) > 0 && __atomic_exchange_n(&sleep_state.wake_sent, 1, __ATOMIC_SEQ_CST) == 0) {
    pthread_mutex_lock(&pool_mutex);
    pthread_cond_broadcast(&pool_wake);
    pthread_mutex_unlock(&pool_mutex);
  }
  int failed = run_tasks(0, n);
  for (int i = 0; ACQUIRE(&progress.finished) != (unsigned)launch.env.num_task; ++i) {
    if (i < CALLER_SPINS) cpu_relax();
    else sched_yield();
  }
  if (timed) {
    uint64_t took = now_ns() - start_ns;
    if (took < kernel->fastest_ns) kernel->fastest_ns = took;
    if (kernel->launches == TIMED_LAUNCHES && kernel->fastest_ns >= SPLIT_NS) kernel->tasks_per_thread = SPLIT_TASKS;
  }
  if (kernel->launches <= TIMED_LAUNCHES) ++kernel->launches;
  for (int t = 1; t < pool.threads; ++t) {
    void* error = ranges[t].error;
    if (error == NULL) continue;
    if (!failed) TVMFFIErrorSetRaised(error); /* the caller's own error, if any, comes first */
    TVMFFIObjectDecRef(error);
    ranges[t].error = NULL;
    failed = 1;
  }
  __atomic_store_n(&pool.busy, 0, __ATOMIC_RELEASE);
  return failed ? -1 : 0;
}

/* sets this library's pool's thread count from its next launch on (wanted > 0); returns the count */
static int local_set_threads(int wanted) {
  if (wanted > 0) {
    while (!try_take_pool()) sched_yield();
    stop_workers();
    pool.requested = wanted > MAX_THREADS ? MAX_THREADS : wanted;
    __atomic_store_n(&pool.busy, 0, __ATOMIC_RELEASE);
  }
  return pool.threads > 0 ? pool.threads : (pool.requested > 0 ? pool.requested : env_threads());
}

/* what a library's pool offers the others in the process; a new layout or meaning gets a new name */
typedef struct {
  int hosting; /* 1: this library runs the process's pool and cannot be unloaded */
  int (*launch)(FTVMParallelLambda lambda, void* cdata, int num_task);
  int (*set_threads)(int wanted);
} NeoLocalPool;

#define POOL_SYMBOL "__neo_local_thread_pool_v1"
__attribute__((visibility("default"))) NeoLocalPool __neo_local_thread_pool_v1 = {0, local_launch, local_set_threads};

static NeoLocalPool* host; /* the process's pool, this library's or another's; NULL: not looked for yet */

typedef struct {
  void* self_base;
  char** names;
  int count, capacity;
} LoadedLibraries;

static int collect_library(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  LoadedLibraries* found = (LoadedLibraries*)data;
  if (info->dlpi_name == NULL || info->dlpi_name[0] == '\0' || (void*)info->dlpi_addr == found->self_base) return 0;
  if (found->count == found->capacity) {
    int capacity = found->capacity ? 2 * found->capacity : 64;
    char** names = (char**)realloc(found->names, capacity * sizeof(char*));
    if (names == NULL) return 1;
    found->names = names;
    found->capacity = capacity;
  }
  char* name = strdup(info->dlpi_name);
  if (name != NULL) found->names[found->count++] = name;
  return 0;
}

/* another loaded library's pool that hosts the process's, or NULL */
static NeoLocalPool* find_other_host(void* self_base) {
  LoadedLibraries found = {self_base, NULL, 0, 0};
  dl_iterate_phdr(collect_library, &found);
  NeoLocalPool* other = NULL;
  for (int i = 0; i < found.count; ++i) {
    if (other == NULL) {
      void* handle = dlopen(found.names[i], RTLD_LAZY | RTLD_NOLOAD);
      if (handle != NULL) {
        NeoLocalPool* candidate = (NeoLocalPool*)dlsym(handle, POOL_SYMBOL);
        /* a host is never unloaded: its address stays valid after this handle is closed */
        if (candidate != NULL && candidate != &__neo_local_thread_pool_v1 && LOAD(&candidate->hosting)) other = candidate;
        dlclose(handle);
      }
    }
    free(found.names[i]);
  }
  free(found.names);
  return other;
}

/* this library as the process's pool: kept loaded (RTLD_NODELETE), since other libraries' launches
 * will run on its workers; where that fails it still runs its own launches, unseen by others */
static NeoLocalPool* host_here(const char* path) {
  void* handle = path != NULL ? dlopen(path, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE) : NULL;
  if (handle != NULL) {
    STORE(&__neo_local_thread_pool_v1.hosting, 1);
    dlclose(handle);
  }
  return &__neo_local_thread_pool_v1;
}

/* no lock (a fork while another thread held one would leave the child's locked): threads of this
 * library that launch first at the same time each look, and the first answer stored is kept */
static NeoLocalPool* find_host(void) {
  Dl_info self;
  int known = dladdr((void*)&__neo_local_thread_pool_v1, &self) != 0;
  NeoLocalPool* found = find_other_host(known ? self.dli_fbase : NULL);
  if (found == NULL) found = host_here(known ? self.dli_fname : NULL);
  NeoLocalPool* stored = NULL;
  if (!__atomic_compare_exchange_n(&host, &stored, found, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return stored;
  return found;
}

static NeoLocalPool* process_pool(void) {
  NeoLocalPool* pool_host = __atomic_load_n(&host, __ATOMIC_ACQUIRE);
  return pool_host != NULL ? pool_host : find_host();
}

static int neo_local_parallel_launch(FTVMParallelLambda lambda, void* cdata, int num_task) {
  if (use_tvm_pool < 0) {
    const char* value = getenv("NEO_LOCAL_THREAD_POOL");
    use_tvm_pool = value != NULL && strcmp(value, "tvm") == 0;
  }
  if (use_tvm_pool) return TVMBackendParallelLaunch(lambda, cdata, num_task);
  return process_pool()->launch(lambda, cdata, num_task);
}

__attribute__((visibility("hidden"))) int (*__TVMBackendParallelLaunch)(FTVMParallelLambda, void*, int) =
    neo_local_parallel_launch;

/* the workers run this library's code: they stop before it is unloaded */
__attribute__((destructor)) static void stop_before_unload(void) {
  if (try_take_pool()) stop_workers();
}

/* tvm-ffi's calling convention (the library module's "neo_local_set_threads"): the first argument,
 * an int, is the thread count from the next launch on (0 or none: leave it); returns the count */
typedef struct {
  int32_t type_index;
  uint32_t padding;
  int64_t value;
} FFIAny;

enum { FFI_INT = 1 };

int __tvm_ffi_neo_local_set_threads(void* self, const FFIAny* args, int32_t num_args, FFIAny* result) {
  (void)self;
  int64_t wanted = num_args > 0 && args[0].type_index == FFI_INT ? args[0].value : 0;
  result->type_index = FFI_INT;
  result->padding = 0;
  result->value = process_pool()->set_threads(wanted > MAX_THREADS ? MAX_THREADS : (int)wanted);
  return 0;
}

#ifdef __cplusplus
}
#endif
