#include "loader.h"

#include <dlfcn.h>

#include <mutex>
#include <sstream>

#include "../common/status.h"

namespace rnnlm::cuda {
namespace {

std::mutex mu;
Libraries loaded;
bool ready = false;

// dlopen the first of `names` found in the folders, in order; every failure is recorded.
void* openFirst(const std::vector<std::string>& folders, const std::vector<std::string>& names, std::string& path,
                std::ostringstream& tried) {
  for (const std::string& dir : folders) {
    for (const std::string& name : names) {
      const std::string full = dir.empty() ? name : dir + "/" + name;
      dlerror();
      if (void* h = dlopen(full.c_str(), RTLD_NOW | RTLD_LOCAL)) {
        path = full;
        return h;
      }
      const char* why = dlerror();
      tried << "\n  " << (dir.empty() ? name + " (system loader path)" : full) << ": " << (why ? why : "not found");
    }
  }
  return nullptr;
}

template <typename F>
void bind(void* lib, const char* symbol, F& slot, const std::string& path) {
  dlerror();
  void* p = dlsym(lib, symbol);
  if (!p) fail(Code::CudaUnavailable, "%s has no symbol %s (%s); a different library version?", path.c_str(), symbol, dlerror());
  slot = reinterpret_cast<F>(p);
}

}  // namespace

const Libraries& loadLibraries(const std::vector<std::string>& folders) {
  std::lock_guard<std::mutex> lock(mu);
  if (ready) return loaded;
  Libraries libs;
  std::ostringstream tried;
  void* cudnn = openFirst(folders, {"libcudnn.so.9"}, libs.cudnnPath, tried);
  if (!cudnn) fail(Code::CudaUnavailable, "libcudnn.so.9 (cuDNN 9) was not found. Tried:%s", tried.str().c_str());
  std::ostringstream tried2;
  void* cublas = openFirst(folders, {"libcublas.so.13", "libcublas.so.12"}, libs.cublasPath, tried2);
  if (!cublas) {
    dlclose(cudnn);
    fail(Code::CudaUnavailable, "libcublas.so.13 / .12 (cuBLAS) was not found. Tried:%s", tried2.str().c_str());
  }
#define RNNLM_BIND_CUDNN(name) bind(cudnn, #name, libs.cudnn.name, libs.cudnnPath);
#define RNNLM_BIND_CUBLAS(name) bind(cublas, #name, libs.cublas.name, libs.cublasPath);
  RNNLM_CUDNN_FUNCTIONS(RNNLM_BIND_CUDNN)
  RNNLM_CUBLAS_FUNCTIONS(RNNLM_BIND_CUBLAS)
#undef RNNLM_BIND_CUDNN
#undef RNNLM_BIND_CUBLAS
  const size_t version = libs.cudnn.cudnnGetVersion();
  if (version < 90000 || version >= 100000) {
    fail(Code::CudaUnavailable, "%s is cuDNN %zu; rnnlm needs cuDNN 9", libs.cudnnPath.c_str(), version);
  }
  loaded = libs;
  ready = true;
  return loaded;
}

const Libraries& libs() {
  std::lock_guard<std::mutex> lock(mu);
  if (!ready) fail(Code::CudaUnavailable, "cuDNN and cuBLAS are not loaded yet");
  return loaded;
}

}  // namespace rnnlm::cuda
