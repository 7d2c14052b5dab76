// neo-local: the byte-stream interface that the runtime sources in the apache-tvm wheel include
// but the wheel does not ship (written for the armhf runtime build, scripts/setup-armhf-runtime.sh).
#ifndef NEO_LOCAL_TVM_SUPPORT_IO_H_
#define NEO_LOCAL_TVM_SUPPORT_IO_H_

#include <cstddef>

namespace tvm {
namespace support {

/*! \brief How a value of type T is written to and read from a Stream (specialized per type). */
template <typename T, typename = void>
struct Serializer {
  static constexpr bool enabled = false;
};

/*! \brief A sequential byte sink/source; typed values go through Serializer<T>. */
class Stream {
 public:
  virtual ~Stream() = default;
  virtual size_t Read(void* ptr, size_t size) = 0;
  virtual size_t Write(const void* ptr, size_t size) = 0;

  template <typename T>
  void Write(const T& value) {
    static_assert(Serializer<T>::enabled, "no Serializer for this type");
    Serializer<T>::Write(this, value);
  }
  template <typename T>
  bool Read(T* value) {
    static_assert(Serializer<T>::enabled, "no Serializer for this type");
    return Serializer<T>::Read(this, value);
  }
  template <typename T>
  void WriteArray(const T* values, size_t count) {
    for (size_t i = 0; i < count; ++i) Write(values[i]);
  }
  template <typename T>
  bool ReadArray(T* values, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      if (!Read(values + i)) return false;
    }
    return true;
  }
};

}  // namespace support
}  // namespace tvm

#endif  // NEO_LOCAL_TVM_SUPPORT_IO_H_
