// neo-local: Serializer<T> for the types the TVM runtime saves and loads (VM executables, params,
// tensors). The byte layout is TVM's: little-endian scalars, uint64 element counts before
// strings, sequences and maps. Written for the armhf runtime build; the wheel lacks this header.
#ifndef NEO_LOCAL_TVM_SUPPORT_SERIALIZER_H_
#define NEO_LOCAL_TVM_SUPPORT_SERIALIZER_H_

#include <dlpack/dlpack.h>
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/map.h>
#include <tvm/ffi/endian.h>
#include <tvm/ffi/string.h>
#include <tvm/support/io.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tvm {
namespace support {

template <typename T>
struct Serializer<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const T& value) {
    T le = value;
    if constexpr (!TVM_FFI_IO_NO_ENDIAN_SWAP) ffi::ByteSwap(&le, sizeof(T), 1);
    strm->Write(static_cast<const void*>(&le), sizeof(T));
  }
  static bool Read(Stream* strm, T* value) {
    if (strm->Read(static_cast<void*>(value), sizeof(T)) != sizeof(T)) return false;
    if constexpr (!TVM_FFI_IO_NO_ENDIAN_SWAP) ffi::ByteSwap(value, sizeof(T), 1);
    return true;
  }
};

template <typename T>
struct Serializer<T, std::enable_if_t<std::is_enum_v<T>>> {
  static constexpr bool enabled = true;
  using Raw = std::underlying_type_t<T>;
  static void Write(Stream* strm, const T& value) { strm->Write(static_cast<Raw>(value)); }
  static bool Read(Stream* strm, T* value) {
    Raw raw;
    if (!strm->Read(&raw)) return false;
    *value = static_cast<T>(raw);
    return true;
  }
};

/*! \brief Element count, then the raw characters. */
inline void WriteChars(Stream* strm, const char* data, size_t size) {
  strm->Write(static_cast<uint64_t>(size));
  if (size != 0) strm->Write(static_cast<const void*>(data), size);
}

template <>
struct Serializer<std::string> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const std::string& value) {
    WriteChars(strm, value.data(), value.size());
  }
  static bool Read(Stream* strm, std::string* value) {
    uint64_t size;
    if (!strm->Read(&size)) return false;
    value->resize(static_cast<size_t>(size));
    return size == 0 || strm->Read(static_cast<void*>(&(*value)[0]), value->size()) == value->size();
  }
};

template <>
struct Serializer<ffi::String> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const ffi::String& value) {
    WriteChars(strm, value.data(), value.size());
  }
  static bool Read(Stream* strm, ffi::String* value) {
    std::string chars;
    if (!strm->Read(&chars)) return false;
    *value = ffi::String(std::move(chars));
    return true;
  }
};

/*! \brief Element count, then each element; Append(i, element) must return false to stop. */
template <typename T, typename Append>
bool ReadCounted(Stream* strm, Append append) {
  uint64_t size;
  if (!strm->Read(&size)) return false;
  for (uint64_t i = 0; i < size; ++i) {
    T element;
    if (!strm->Read(&element) || !append(std::move(element))) return false;
  }
  return true;
}

template <typename Container>
void WriteCounted(Stream* strm, const Container& values) {
  strm->Write(static_cast<uint64_t>(values.size()));
  for (const auto& value : values) strm->Write(value);
}

template <typename T>
struct Serializer<std::vector<T>> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const std::vector<T>& values) { WriteCounted(strm, values); }
  static bool Read(Stream* strm, std::vector<T>* values) {
    values->clear();
    return ReadCounted<T>(strm, [&](T&& v) { values->push_back(std::move(v)); return true; });
  }
};

template <typename A, typename B>
struct Serializer<std::pair<A, B>> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const std::pair<A, B>& value) {
    strm->Write(value.first);
    strm->Write(value.second);
  }
  static bool Read(Stream* strm, std::pair<A, B>* value) {
    return strm->Read(&value->first) && strm->Read(&value->second);
  }
};

template <typename K, typename V>
struct Serializer<std::unordered_map<K, V>> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const std::unordered_map<K, V>& values) {
    WriteCounted(strm, values);
  }
  static bool Read(Stream* strm, std::unordered_map<K, V>* values) {
    values->clear();
    return ReadCounted<std::pair<K, V>>(strm, [&](std::pair<K, V>&& kv) {
      values->insert(std::move(kv));
      return true;
    });
  }
};

template <typename T>
struct Serializer<ffi::Array<T>> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const ffi::Array<T>& values) {
    strm->Write(static_cast<uint64_t>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) strm->Write(values[i]);
  }
  static bool Read(Stream* strm, ffi::Array<T>* values) {
    *values = ffi::Array<T>();
    return ReadCounted<T>(strm, [&](T&& v) { values->push_back(std::move(v)); return true; });
  }
};

template <typename K, typename V>
struct Serializer<ffi::Map<K, V>> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const ffi::Map<K, V>& values) {
    strm->Write(static_cast<uint64_t>(values.size()));
    for (const auto& kv : values) {
      strm->Write(kv.first);
      strm->Write(kv.second);
    }
  }
  static bool Read(Stream* strm, ffi::Map<K, V>* values) {
    *values = ffi::Map<K, V>();
    uint64_t size;
    if (!strm->Read(&size)) return false;
    for (uint64_t i = 0; i < size; ++i) {
      K key;
      V value;
      if (!strm->Read(&key) || !strm->Read(&value)) return false;
      values->Set(std::move(key), std::move(value));
    }
    return true;
  }
};

template <>
struct Serializer<DLDataType> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const DLDataType& dtype) {
    strm->Write(dtype.code);
    strm->Write(dtype.bits);
    strm->Write(dtype.lanes);
  }
  static bool Read(Stream* strm, DLDataType* dtype) {
    return strm->Read(&dtype->code) && strm->Read(&dtype->bits) && strm->Read(&dtype->lanes);
  }
};

template <>
struct Serializer<DLDevice> {
  static constexpr bool enabled = true;
  static void Write(Stream* strm, const DLDevice& device) {
    strm->Write(static_cast<int32_t>(device.device_type));
    strm->Write(device.device_id);
  }
  static bool Read(Stream* strm, DLDevice* device) {
    int32_t type;
    if (!strm->Read(&type) || !strm->Read(&device->device_id)) return false;
    device->device_type = static_cast<DLDeviceType>(type);
    return true;
  }
};

}  // namespace support
}  // namespace tvm

#endif  // NEO_LOCAL_TVM_SUPPORT_SERIALIZER_H_
