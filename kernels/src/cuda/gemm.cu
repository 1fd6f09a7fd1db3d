// cuBLAS loaded with dlopen. Only the few entry points the backend needs are declared here, with
// the values of the cuBLAS API enums they take (stable across cuBLAS 11-13).
#include "cuda/gemm.h"
#include "cuda/common.cuh"
#include <dlfcn.h>
#include <algorithm>
#include <glob.h>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace flame { namespace cuda {

namespace {

typedef int cublasStatus;  // CUBLAS_STATUS_SUCCESS = 0
typedef void* cublasHandle;
enum : int { OP_N = 0, OP_T = 1 };
enum : int { COMPUTE_32F = 68, COMPUTE_32F_PEDANTIC = 69 };
enum : int { GEMM_DEFAULT = -1 };
enum : int { R_32F = 0, R_16BF = 14 };  // cudaDataType (library_types.h)

struct Api {
  void* lib = nullptr;
  std::string path;
  cublasStatus (*create)(cublasHandle*) = nullptr;
  cublasStatus (*destroy)(cublasHandle) = nullptr;
  cublasStatus (*setStream)(cublasHandle, cudaStream_t) = nullptr;
  const char* (*statusString)(cublasStatus) = nullptr;
  cublasStatus (*gemmEx)(cublasHandle, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                         const void*, void*, int, int, int, int) = nullptr;
  // cublasGemmGroupedBatchedEx: per-group arrays on the host, pointer arrays on the device
  cublasStatus (*groupedEx)(cublasHandle, const int*, const int*, const int*, const int*, const int*, const void*, const void* const*, int,
                            const int*, const void* const*, int, const int*, const void*, void* const*, int, const int*, int, const int*,
                            int) = nullptr;
};
Api g_api;
std::mutex g_mu;

template <typename F> bool sym(void* lib, const char* name, F& out) {
  out = (F)dlsym(lib, name);
  return out != nullptr;
}

// Where libcublas may be: the dynamic loader's own search (LD_LIBRARY_PATH, ldconfig), the CUDA
// toolkit, and the nvidia-cublas Python wheels that PyTorch installs (cu13 and cu12 layouts).
std::vector<std::string> candidates() {
  std::vector<std::string> c = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
  const char* home = getenv("CUDA_HOME");
  for (std::string dir : {std::string(home ? home : "/usr/local/cuda") + "/lib64", std::string("/usr/local/cuda/lib64")})
    for (const char* v : {"13", "12"}) c.push_back(dir + "/libcublas.so." + v);
  const char* patterns[] = {"/opt/*/.venv/lib/python3*/site-packages/nvidia/cu13/lib/libcublas.so.13",
                            "/opt/*/.venv/lib/python3*/site-packages/nvidia/cublas/lib/libcublas.so.1[23]",
                            "/usr/local/lib/python3*/*-packages/nvidia/cu13/lib/libcublas.so.13",
                            "/usr/local/lib/python3*/*-packages/nvidia/cublas/lib/libcublas.so.1[23]",
                            "/usr/lib/python3*/*-packages/nvidia/cu13/lib/libcublas.so.13",
                            "/usr/lib/python3*/*-packages/nvidia/cublas/lib/libcublas.so.1[23]"};
  for (const char* p : patterns) {
    glob_t g;
    if (glob(p, 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; i++) c.push_back(g.gl_pathv[i]);
    globfree(&g);
  }
  return c;
}

std::string try_load(const std::string& path) {
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) { const char* e = dlerror(); return e ? e : "dlopen failed"; }
  Api a; a.lib = lib; a.path = path;
  bool ok = sym(lib, "cublasCreate_v2", a.create) && sym(lib, "cublasDestroy_v2", a.destroy) &&
            sym(lib, "cublasSetStream_v2", a.setStream) && sym(lib, "cublasGemmEx", a.gemmEx);
  sym(lib, "cublasGetStatusString", a.statusString);
  sym(lib, "cublasGemmGroupedBatchedEx", a.groupedEx);  // optional (cuBLAS >= 12.5)
  if (!ok) { dlclose(lib); return path + ": lacks cublasCreate_v2 / cublasSetStream_v2 / cublasGemmEx"; }
  g_api = a;
  return "";
}

void check(cublasStatus s, const char* what) {
  if (s == 0) return;
  std::string m = std::string("cuBLAS ") + what + " failed with status " + std::to_string(s);
  if (g_api.statusString) m += std::string(" (") + g_api.statusString(s) + ")";
  fail(EXIT_OTHER, m);
}

int dtype(DType t) { return t == DType::F32 ? R_32F : R_16BF; }

}  // namespace

std::string Blas::load(const std::string& explicitPath) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_api.lib) return "";
  std::vector<std::string> paths;
  const char* env = getenv("FLAME_CUBLAS");
  if (!explicitPath.empty()) paths.push_back(explicitPath);
  else if (env && *env) paths.push_back(env);
  else paths = candidates();
  std::string tried;
  for (auto& p : paths) {
    std::string why = try_load(p);
    if (why.empty()) return "";
    tried += "\n  " + why;
  }
  return "cannot load cuBLAS (set runtime.cublas or FLAME_CUBLAS to the path of libcublas.so.13); tried:" + tried;
}

const std::string& Blas::loadedPath() { return g_api.path; }

Blas::Blas(cudaStream_t stream) : stream_(stream) {
  if (!g_api.lib) fail(EXIT_OTHER, "internal: cuBLAS used before Blas::load");
  check(g_api.create(&handle_), "cublasCreate");
  check(g_api.setStream(handle_, stream_), "cublasSetStream");
}
Blas::~Blas() {
  if (handle_) g_api.destroy(handle_);
  if (ptrs_) cudaFree(ptrs_);
}

void Blas::gemm_batch(bool ta, bool tb, const std::vector<Desc>& all, DType at, DType bt, DType ct, bool accumulate) {
  std::vector<Desc> ds;
  for (const Desc& d : all)
    if (d.M > 0 && d.N > 0 && (d.K > 0 || !accumulate)) ds.push_back(d);
  const unsigned combo = 1u << ((at == DType::BF16) * 4 + (bt == DType::BF16) * 2 + (ct == DType::BF16));
  static const bool disabled = [] { const char* e = getenv("FLAME_CUBLAS_GROUPED"); return e && std::string(e) == "0"; }();
  const bool tryGrouped = g_api.groupedEx && !disabled && at == DType::BF16 && bt == DType::BF16 && !(groupedRejected_ & combo) &&
                          ds.size() > 1 && std::all_of(ds.begin(), ds.end(), [](const Desc& d) { return d.K > 0; });
  if (tryGrouped) {
    const size_t n = ds.size();
    std::vector<int> opA(n, tb ? OP_T : OP_N), opB(n, ta ? OP_T : OP_N), m(n), nn(n), k(n), lda(n), ldb(n), ldc(n), size(n, 1);
    std::vector<float> alpha(n, 1.0f), beta(n, accumulate ? 1.0f : 0.0f);
    std::vector<const void*> ptrs(3 * n);
    for (size_t i = 0; i < n; i++) {  // row-major -> column-major: swap the operands, as in gemm()
      m[i] = ds[i].N; nn[i] = ds[i].M; k[i] = ds[i].K;
      ptrs[i] = ds[i].B; lda[i] = ds[i].ldb;
      ptrs[n + i] = ds[i].A; ldb[i] = ds[i].lda;
      ptrs[2 * n + i] = ds[i].C; ldc[i] = ds[i].ldc;
    }
    if (3 * n > ptrsCap_) {
      if (ptrs_) CUDA_CHECK(cudaFree(ptrs_));
      ptrs_ = nullptr; ptrsCap_ = 0;
      CUDA_CHECK(cudaMalloc((void**)&ptrs_, 3 * n * sizeof(void*)));
      ptrsCap_ = 3 * n;
    }
    CUDA_CHECK(cudaMemcpyAsync(ptrs_, ptrs.data(), 3 * n * sizeof(void*), cudaMemcpyHostToDevice, stream_));
    cublasStatus s = g_api.groupedEx(handle_, opA.data(), opB.data(), m.data(), nn.data(), k.data(), alpha.data(), (const void* const*)ptrs_,
                                     dtype(bt), lda.data(), (const void* const*)(ptrs_ + n), dtype(at), ldb.data(), beta.data(), ptrs_ + 2 * n,
                                     dtype(ct), ldc.data(), (int)n, size.data(), COMPUTE_32F);
    if (s == 0) { groupedUsed_ = true; return; }
    if (s != 7 && s != 15) check(s, "cublasGemmGroupedBatchedEx");  // other than INVALID_VALUE / NOT_SUPPORTED: a real failure
    groupedRejected_ |= combo;  // this combination is not supported: use the loop from now on
  }
  for (const Desc& d : ds) gemm(ta, tb, d.M, d.N, d.K, d.A, at, d.lda, d.B, bt, d.ldb, d.C, ct, d.ldc, accumulate);
}

void Blas::gemm(bool ta, bool tb, int M, int N, int K, const void* A, DType at, int lda, const void* B, DType bt, int ldb, void* C,
                DType ct, int ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // empty sum: C stays (accumulate) or becomes 0
    if (!accumulate) {
      size_t es = ct == DType::F32 ? 4 : 2;
      CUDA_CHECK(cudaMemset2DAsync(C, (size_t)ldc * es, 0, (size_t)N * es, M, stream_));
    }
    return;
  }
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands and
  // pass each one's own transpose flag (a row-major matrix read column-major is its transpose).
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  bool allF32 = at == DType::F32 && bt == DType::F32 && ct == DType::F32;
  int compute = allF32 ? COMPUTE_32F_PEDANTIC : COMPUTE_32F;
  check(g_api.gemmEx(handle_, tb ? OP_T : OP_N, ta ? OP_T : OP_N, N, M, K, &alpha, B, dtype(bt), ldb, A, dtype(at), lda, &beta, C,
                     dtype(ct), ldc, compute, GEMM_DEFAULT),
        "cublasGemmEx");
}

}}  // namespace flame::cuda
