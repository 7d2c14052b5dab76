// neo-local: the one helper from TVM's src/support/utils.h that the runtime sources use.
#ifndef NEO_LOCAL_TVM_SUPPORT_UTILS_H_
#define NEO_LOCAL_TVM_SUPPORT_UTILS_H_

#include <cctype>
#include <string>

namespace tvm {
namespace support {

/*! \brief Whether s is a non-empty run of decimal digits (e.g. a CPU id in TVM_BIND_THREADS). */
inline bool IsNumber(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace support
}  // namespace tvm

#endif  // NEO_LOCAL_TVM_SUPPORT_UTILS_H_
