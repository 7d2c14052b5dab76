// neo-local: in-memory Streams (the runtime reads VM executables and params from bytes).
// Written for the armhf runtime build; the apache-tvm wheel does not ship src/support.
#ifndef NEO_LOCAL_TVM_SUPPORT_BYTES_IO_H_
#define NEO_LOCAL_TVM_SUPPORT_BYTES_IO_H_

#include <tvm/support/io.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace tvm {
namespace support {

/*! \brief Reads from its own copy of a byte string. */
class BytesInStream : public Stream {
 public:
  explicit BytesInStream(std::string data) : data_(std::move(data)) {}
  using Stream::Read;
  using Stream::Write;
  size_t Read(void* ptr, size_t size) final {
    size_t n = std::min(size, data_.size() - pos_);
    if (n != 0) std::memcpy(ptr, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  size_t Write(const void*, size_t) final { return 0; }

 private:
  std::string data_;
  size_t pos_ = 0;
};

/*! \brief Appends to a caller-owned string. */
class BytesOutStream : public Stream {
 public:
  explicit BytesOutStream(std::string* out) : out_(out) {}
  using Stream::Read;
  using Stream::Write;
  size_t Read(void*, size_t) final { return 0; }
  size_t Write(const void* ptr, size_t size) final {
    out_->append(static_cast<const char*>(ptr), size);
    return size;
  }

 private:
  std::string* out_;
};

}  // namespace support
}  // namespace tvm

#endif  // NEO_LOCAL_TVM_SUPPORT_BYTES_IO_H_
