// Error codes shared by both backends. Native code throws rnnlm::Error; the
// binding layer turns it into a JavaScript RnnlmError with the same code.
#pragma once
#include <cstdarg>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace rnnlm {

enum class Code {
  InvalidArgument,
  Vocab,
  Checkpoint,
  CudaUnavailable,
  OutOfMemory,
  NonFinite,
  Disposed,
  Busy,
  Native,
};

inline const char* codeName(Code c) {
  switch (c) {
    case Code::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case Code::Vocab: return "ERR_VOCAB";
    case Code::Checkpoint: return "ERR_CHECKPOINT";
    case Code::CudaUnavailable: return "ERR_CUDA_UNAVAILABLE";
    case Code::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case Code::NonFinite: return "ERR_NON_FINITE";
    case Code::Disposed: return "ERR_DISPOSED";
    case Code::Busy: return "ERR_BUSY";
    case Code::Native: return "ERR_NATIVE";
  }
  return "ERR_NATIVE";
}

class Error : public std::runtime_error {
 public:
  Error(Code code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
[[noreturn]] inline void fail(Code code, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw Error(code, buf);
}

#define RNNLM_CHECK(cond, code, ...)              \
  do {                                            \
    if (!(cond)) ::rnnlm::fail((code), __VA_ARGS__); \
  } while (0)

// An option's value among its names (an enum's, in order): its index, or "<what> must be one of
// 'a', 'b' (got 's')".
template <size_t N>
int parseName(const char* const (&names)[N], const std::string& s, const char* what) {
  std::string list;
  for (size_t i = 0; i < N; ++i) {
    if (s == names[i]) return int(i);
    list += (i ? ", '" : "'") + std::string(names[i]) + "'";
  }
  fail(Code::InvalidArgument, "%s must be one of %s (got '%.100s')", what, list.c_str(), s.c_str());
}

}  // namespace rnnlm
