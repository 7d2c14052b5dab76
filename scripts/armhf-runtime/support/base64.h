// neo-local: base64 (RFC 4648, padded) Streams, used by the runtime for tensors in JSON.
// Written for the armhf runtime build; the apache-tvm wheel does not ship src/support.
#ifndef NEO_LOCAL_TVM_SUPPORT_BASE64_H_
#define NEO_LOCAL_TVM_SUPPORT_BASE64_H_

#include <tvm/support/io.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

namespace tvm {
namespace support {

inline const char* Base64Alphabet() {
  return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

/*! \brief Encodes what is written into the sink; Finish() writes the padded tail. */
class Base64OutStream : public Stream {
 public:
  explicit Base64OutStream(Stream* sink) : sink_(sink) {}
  using Stream::Read;
  using Stream::Write;
  size_t Read(void*, size_t) final { return 0; }
  size_t Write(const void* ptr, size_t size) final {
    const auto* bytes = static_cast<const uint8_t*>(ptr);
    for (size_t i = 0; i < size; ++i) {
      group_[filled_++] = bytes[i];
      if (filled_ == 3) Flush();
    }
    return size;
  }
  void Finish() {
    if (filled_ != 0) Flush();
  }

 private:
  void Flush() {
    const char* abc = Base64Alphabet();
    uint32_t v = (group_[0] << 16) | ((filled_ > 1 ? group_[1] : 0) << 8) |
                 (filled_ > 2 ? group_[2] : 0);
    char out[4] = {abc[(v >> 18) & 63], abc[(v >> 12) & 63],
                   filled_ > 1 ? abc[(v >> 6) & 63] : '=', filled_ > 2 ? abc[v & 63] : '='};
    sink_->Write(static_cast<const void*>(out), sizeof(out));
    filled_ = 0;
  }
  Stream* sink_;
  uint8_t group_[3] = {0, 0, 0};
  size_t filled_ = 0;
};

/*! \brief Decodes the whole source at InitPosition(), then serves reads from memory. */
class Base64InStream : public Stream {
 public:
  explicit Base64InStream(Stream* source) : source_(source) {}
  using Stream::Read;
  using Stream::Write;
  void InitPosition() {
    std::string text;
    char chunk[4096];
    for (size_t n; (n = source_->Read(chunk, sizeof(chunk))) != 0;) text.append(chunk, n);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
      const char* hit = std::strchr(Base64Alphabet(), c);
      if (c == '\0' || hit == nullptr) continue;  // padding, whitespace, quotes
      acc = (acc << 6) | static_cast<uint32_t>(hit - Base64Alphabet());
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        decoded_.push_back(static_cast<char>((acc >> bits) & 0xFF));
      }
    }
  }
  size_t Read(void* ptr, size_t size) final {
    size_t n = std::min(size, decoded_.size() - pos_);
    if (n != 0) std::memcpy(ptr, decoded_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  size_t Write(const void*, size_t) final { return 0; }

 private:
  Stream* source_;
  std::string decoded_;
  size_t pos_ = 0;
};

}  // namespace support
}  // namespace tvm

#endif  // NEO_LOCAL_TVM_SUPPORT_BASE64_H_
