// neo-local: CPU-only build of the TVM runtime, so NVTX profiling ranges are no-ops.
#ifndef NEO_LOCAL_TVM_SUPPORT_CUDA_NVTX_H_
#define NEO_LOCAL_TVM_SUPPORT_CUDA_NVTX_H_

#include <string>

namespace tvm {
namespace support {

class NVTXScopedRange {
 public:
  explicit NVTXScopedRange(const char*) {}
  explicit NVTXScopedRange(const std::string&) {}
};

}  // namespace support
}  // namespace tvm

#endif  // NEO_LOCAL_TVM_SUPPORT_CUDA_NVTX_H_
