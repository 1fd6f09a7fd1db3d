// Self-test of the cuBLAS stand-in (emu/cublas.cpp), loaded the way gemm.cu loads libcublas: with
// dlopen and dlsym, through function pointers of gemm.cu's types. Results are compared with a
// naive double-precision column-major reference written here independently of the library, and
// the grouped call with the equivalent GemmEx calls, bitwise.
//
//   g++ -std=c++17 -O2 kernels/emu/test_cublas.cpp -o kernels/build/emu/test-cublas -ldl
//   kernels/build/emu/test-cublas kernels/build/emu/libcublas-emu.so
//
// One line per check; exit status 1 if any check fails.
#include <dlfcn.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

typedef int (*CreateFn)(void**);
typedef int (*DestroyFn)(void*);
typedef int (*SetStreamFn)(void*, void*);
typedef const char* (*StatusStringFn)(int);
typedef int (*GemmExFn)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int, const void*, void*, int,
                        int, int, int);
typedef int (*GroupedExFn)(void*, const int*, const int*, const int*, const int*, const int*, const void*, const void* const*, int,
                           const int*, const void* const*, int, const int*, const void*, void* const*, int, const int*, int, const int*,
                           int);
typedef void (*SetThreadsFn)(int);

enum : int { N = 0, T = 1 };
enum : int { F32 = 0, BF16 = 14, F16 = 2, F64 = 1 };
enum : int { COMPUTE_16F = 64, COMPUTE_32F = 68, COMPUTE_32F_PEDANTIC = 69 };
enum : int { ALGO_DEFAULT = -1 };

CreateFn create;
DestroyFn destroy;
SetStreamFn setStream;
StatusStringFn statusString;
GemmExFn gemmEx;
GroupedExFn groupedEx;

int failures = 0, checks = 0;
void report(bool ok, const std::string& what, const std::string& detail = "") {
  checks++;
  if (!ok) failures++;
  std::printf("%s  %s%s%s\n", ok ? "PASS" : "FAIL", what.c_str(), detail.empty() ? "" : "  -- ", detail.c_str());
}

float bits_f(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
uint32_t f_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
double bf16_value(uint16_t h) { return bits_f(uint32_t(h) << 16); }
const char* tname(int t) { return t == F32 ? "f32" : "bf16"; }

// A column-major matrix of rows x cols with leading dimension ld, stored as fp32 or bf16. The rows
// between rows and ld are padding: filled with a marker that must never be read (NaN, for inputs)
// or never be written (for outputs).
struct Mat {
  int type, rows, cols, ld;
  std::vector<float> f;
  std::vector<uint16_t> h;
  Mat(int type_, int rows_, int cols_, int ld_) : type(type_), rows(rows_), cols(cols_), ld(ld_) {
    size_t n = size_t(ld) * size_t(cols > 0 ? cols : 0);
    if (type == F32) f.assign(n, 0.0f); else h.assign(n, 0);
  }
  void* ptr() { return type == F32 ? (void*)f.data() : (void*)h.data(); }
  size_t at(int i, int j) const { return size_t(i) + size_t(j) * size_t(ld); }
  double get(int i, int j) const { return type == F32 ? double(f[at(i, j)]) : bf16_value(h[at(i, j)]); }
  void set_bits(size_t idx, uint32_t fbits) { if (type == F32) f[idx] = bits_f(fbits); else h[idx] = uint16_t(fbits >> 16); }
  // Random values exactly representable in the storage type (a bf16 keeps the top half of a float).
  void fill_random(std::mt19937& rng, uint32_t padBits) {
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    for (int j = 0; j < cols; j++)
      for (int i = 0; i < ld; i++) set_bits(at(i, j), i < rows ? f_bits(d(rng)) : padBits);
  }
  void fill_interior(uint32_t fbits) {
    for (int j = 0; j < cols; j++)
      for (int i = 0; i < rows; i++) set_bits(at(i, j), fbits);
  }
  bool same_bits(const Mat& o) const {  // not operator== on floats: NaN != NaN
    return type == o.type && f.size() == o.f.size() && h.size() == o.h.size() &&
           (f.empty() || std::memcmp(f.data(), o.f.data(), f.size() * 4) == 0) &&
           (h.empty() || std::memcmp(h.data(), o.h.data(), h.size() * 2) == 0);
  }
  bool padding_is(uint32_t fbits) const {
    for (int j = 0; j < cols; j++)
      for (int i = rows; i < ld; i++)
        if (type == F32 ? f_bits(f[at(i, j)]) != fbits : h[at(i, j)] != uint16_t(fbits >> 16)) return false;
    return true;
  }
  uint64_t hash() const {
    uint64_t x = 1469598103934665603ull;
    auto mix = [&](const unsigned char* p, size_t n) { for (size_t i = 0; i < n; i++) { x ^= p[i]; x *= 1099511628211ull; } };
    if (type == F32) mix((const unsigned char*)f.data(), f.size() * 4); else mix((const unsigned char*)h.data(), h.size() * 2);
    return x;
  }
};

const uint32_t kNaN = 0x7fc00001u;   // quiet NaN; its bf16 half (0x7fc0) is a NaN too
const uint32_t kPadC = 0x4640e400u;  // 12345.0f (and 12352 in bf16): a marker the library must leave alone

// op(X)(r, c) for a stored matrix X, cuBLAS conventions.
double opget(const Mat& X, int op, int r, int c) { return op == N ? X.get(r, c) : X.get(c, r); }

// Compares C (after the call) with alpha op(A) op(B) + beta C0 in double. Tolerance: the fp32
// accumulation error, relative to sum |terms|, plus for bf16 outputs the final half-ulp rounding.
bool compare(const Mat& A, int ta, const Mat& B, int tb, const Mat& C0, const Mat& C, float alpha, float beta, int m, int n, int k,
             std::string& detail) {
  double worst = 0;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      double s = 0, mag = 0;
      for (int p = 0; p < k; p++) {
        double t = opget(A, ta, i, p) * opget(B, tb, p, j);
        s += t; mag += std::fabs(t);
      }
      double ref = double(alpha) * s, scale = std::fabs(double(alpha)) * mag;
      if (beta != 0.0f) { ref += double(beta) * C0.get(i, j); scale += std::fabs(double(beta) * C0.get(i, j)); }
      double got = C.get(i, j);
      double tol = 1e-5 * scale + 1e-30;
      if (C.type == BF16) tol = std::ldexp(std::fabs(ref), -8) + 2e-5 * scale + 1e-30;
      double err = std::fabs(got - ref);
      if (!(err <= tol)) {  // also catches NaN
        char b[200];
        std::snprintf(b, sizeof b, "C(%d,%d) = %.9g, reference %.9g, |err| %.3g > tol %.3g", i, j, got, ref, err, tol);
        detail = b;
        return false;
      }
      if (tol > 0 && err / tol > worst) worst = err / tol;
    }
  if (!C.padding_is(kPadC)) { detail = "padding rows of C were written"; return false; }
  char b[64];
  std::snprintf(b, sizeof b, "max |err|/tol %.3f", worst);
  detail = b;
  return true;
}

struct Shape { int m, n, k, padA, padB, padC; };

// Random operands of the given shape, padding NaN (a stray read of A or B shows); C's padding is
// a marker that must survive, and with beta == 0 C itself is NaN: it must not be read.
struct Operands { Mat A, B, C; };
Operands operands(std::mt19937& rng, int ta, int tb, int at, int bt, int ct, Shape s, float beta) {
  const int rA = ta == N ? s.m : s.k, cA = ta == N ? s.k : s.m;
  const int rB = tb == N ? s.k : s.n, cB = tb == N ? s.n : s.k;
  Mat A(at, rA, cA, rA + s.padA), B(bt, rB, cB, rB + s.padB), C(ct, s.m, s.n, s.m + s.padC);
  A.fill_random(rng, kNaN);
  B.fill_random(rng, kNaN);
  C.fill_random(rng, kPadC);
  if (beta == 0.0f) C.fill_interior(kNaN);
  return Operands{A, B, C};
}

// One GemmEx against the reference.
uint64_t gemm_case(void* h, std::mt19937& rng, int ta, int tb, int at, int bt, int ct, Shape s, float alpha, float beta, int compute) {
  Operands o = operands(rng, ta, tb, at, bt, ct, s, beta);
  Mat &A = o.A, &B = o.B, &C = o.C;
  Mat C0 = C;
  int st = gemmEx(h, ta, tb, s.m, s.n, s.k, &alpha, A.ptr(), at, A.ld, B.ptr(), bt, B.ld, &beta, C.ptr(), ct, C.ld, compute, ALGO_DEFAULT);
  char name[200];
  std::snprintf(name, sizeof name, "GemmEx %c%c A=%-4s B=%-4s C=%-4s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g%s",
                ta == N ? 'N' : 'T', tb == N ? 'N' : 'T', tname(at), tname(bt), tname(ct), s.m, s.n, s.k, A.ld, B.ld, C.ld, alpha, beta,
                beta == 0.0f ? " (C=NaN)" : "");
  std::string detail;
  if (st != 0) { report(false, name, "status " + std::to_string(st)); return 0; }
  report(compare(A, ta, B, tb, C0, C, alpha, beta, s.m, s.n, s.k, detail), name, detail);
  return C.hash();
}

// The stand-in's arithmetic is specified exactly: each element a float fmaf chain in increasing k
// order, then alpha and beta in float, bf16 stored with round-to-nearest-even. With alpha = 1 and
// beta in {0, 1} that leaves one possible result (acc, or acc + C), so compare bit for bit.
uint16_t round_bf16(float x) {  // independent of the library's: ties to even by explicit comparison
  uint32_t u = f_bits(x);
  if (std::isnan(x)) return 0x7fc0;
  uint32_t hi = u >> 16, lo = u & 0xffffu;
  if (lo > 0x8000u || (lo == 0x8000u && (hi & 1u))) hi++;
  return uint16_t(hi);
}
void exact_case(void* h, std::mt19937& rng, int ta, int tb, int at, int bt, int ct, Shape s, float beta) {
  Operands o = operands(rng, ta, tb, at, bt, ct, s, beta);
  Mat &A = o.A, &B = o.B, &C = o.C;
  Mat E = C;
  for (int j = 0; j < s.n; j++)
    for (int i = 0; i < s.m; i++) {
      float acc = 0.0f;
      for (int p = 0; p < s.k; p++) acc = std::fmaf(float(opget(A, ta, i, p)), float(opget(B, tb, p, j)), acc);
      if (beta != 0.0f) acc = acc + float(C.get(i, j));
      E.set_bits(E.at(i, j), ct == F32 ? f_bits(acc) : uint32_t(round_bf16(acc)) << 16);
    }
  const float alpha = 1.0f;
  int st =
      gemmEx(h, ta, tb, s.m, s.n, s.k, &alpha, A.ptr(), at, A.ld, B.ptr(), bt, B.ld, &beta, C.ptr(), ct, C.ld, COMPUTE_32F, ALGO_DEFAULT);
  char name[160];
  std::snprintf(name, sizeof name, "GemmEx %c%c A=%-4s B=%-4s C=%-4s beta=%g: bitwise the fmaf chain in increasing k", ta == N ? 'N' : 'T',
                tb == N ? 'N' : 'T', tname(at), tname(bt), tname(ct), beta);
  report(st == 0 && C.same_bits(E), name, "status " + std::to_string(st));
}

// gemm.cu computes row-major C[M,N] = op(A) op(B) as the column-major C^T = op(B)^T op(A)^T by
// swapping the operands; check that this use gives the row-major product.
void rowmajor_case(void* h, std::mt19937& rng, bool ta, bool tb) {
  const int M = 9, Nn = 14, K = 23;
  // Row-major storage: a row-major R x C matrix with row stride ld is a column-major C x R one.
  const int rA = ta ? K : M, cA = ta ? M : K, rB = tb ? Nn : K, cB = tb ? K : Nn;
  Mat A(BF16, cA, rA, cA + 2), B(BF16, cB, rB, cB + 1), C(F32, Nn, M, Nn + 3);  // column-major views
  A.fill_random(rng, kNaN);
  B.fill_random(rng, kNaN);
  C.fill_random(rng, kPadC);
  C.fill_interior(kNaN);
  const float alpha = 1.0f, beta = 0.0f;
  int st = gemmEx(h, tb ? T : N, ta ? T : N, Nn, M, K, &alpha, B.ptr(), BF16, B.ld, A.ptr(), BF16, A.ld, &beta, C.ptr(), F32, C.ld,
                  COMPUTE_32F, ALGO_DEFAULT);
  std::string name = std::string("row-major via operand swap (as gemm.cu) ta=") + (ta ? "T" : "N") + " tb=" + (tb ? "T" : "N");
  if (st != 0) { report(false, name, "status " + std::to_string(st)); return; }
  double worst = 0;
  for (int r = 0; r < M; r++)
    for (int c = 0; c < Nn; c++) {
      double s = 0, mag = 0;
      for (int p = 0; p < K; p++) {
        double a = ta ? A.get(r, p) : A.get(p, r);  // row-major A[r][p]: column-major view element (p, r)
        double b = tb ? B.get(p, c) : B.get(c, p);
        s += a * b; mag += std::fabs(a * b);
      }
      double got = C.get(c, r), err = std::fabs(got - s), tol = 1e-5 * mag + 1e-30;
      if (!(err <= tol)) {
        char b[160];
        std::snprintf(b, sizeof b, "C[%d][%d] = %.9g, reference %.9g", r, c, got, s);
        report(false, name, b);
        return;
      }
      worst = std::max(worst, err / tol);
    }
  char b[64];
  std::snprintf(b, sizeof b, "max |err|/tol %.3f", worst);
  report(C.padding_is(kPadC), name, C.padding_is(kPadC) ? b : "padding written");
}

// A 1x1x1 product whose exact value is given, stored to bf16: checks round-to-nearest-even and NaN.
void bf16_round_case(void* h, uint32_t aBits, uint16_t expect, const char* what) {
  float a = bits_f(aBits), b = 1.0f, alpha = 1.0f, beta = 0.0f;
  uint16_t c = 0xffff;
  int st = gemmEx(h, N, N, 1, 1, 1, &alpha, &a, F32, 1, &b, F32, 1, &beta, &c, BF16, 1, COMPUTE_32F, ALGO_DEFAULT);
  bool isNaN = (expect & 0x7fff) > 0x7f80;
  bool ok = st == 0 && (isNaN ? (c & 0x7fff) > 0x7f80 : c == expect);
  char d[96];
  std::snprintf(d, sizeof d, "input 0x%08x -> 0x%04x, expected %s0x%04x", aBits, c, isNaN ? "a NaN like " : "", expect);
  report(ok, std::string("bf16 store: ") + what, d);
}

void status_case(const std::string& what, int got, int want) {
  report(got == want, what, "status " + std::to_string(got) + ", expected " + std::to_string(want));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) { std::fprintf(stderr, "usage: %s path/to/libcublas-emu.so\n", argv[0]); return 2; }
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) { std::fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
  create = (CreateFn)dlsym(lib, "cublasCreate_v2");
  destroy = (DestroyFn)dlsym(lib, "cublasDestroy_v2");
  setStream = (SetStreamFn)dlsym(lib, "cublasSetStream_v2");
  statusString = (StatusStringFn)dlsym(lib, "cublasGetStatusString");
  gemmEx = (GemmExFn)dlsym(lib, "cublasGemmEx");
  groupedEx = (GroupedExFn)dlsym(lib, "cublasGemmGroupedBatchedEx");
  report(create && destroy && setStream && statusString && gemmEx && groupedEx, "all six entry points resolve with dlsym");
  if (!(create && destroy && setStream && statusString && gemmEx && groupedEx)) return 1;

  void* h = nullptr;
  status_case("cublasCreate_v2", create(&h), 0);
  status_case("cublasSetStream_v2 (any stream)", setStream(h, (void*)0x1234), 0);
  report(statusString(7) && std::string(statusString(7)) == "CUBLAS_STATUS_INVALID_VALUE", "cublasGetStatusString(7)",
         statusString(7) ? statusString(7) : "(null)");

  std::mt19937 rng(12345);
  const Shape odd{37, 29, 53, 3, 5, 2};
  const int types[2] = {F32, BF16};
  const float ab[3][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.75f, -1.25f}};
  for (int ta : {N, T})
    for (int tb : {N, T})
      for (int at : types)
        for (int bt : types)
          for (int ct : types)
            for (auto& s : ab) {
              int compute = (at == F32 && bt == F32 && ct == F32) ? COMPUTE_32F_PEDANTIC : COMPUTE_32F;
              gemm_case(h, rng, ta, tb, at, bt, ct, odd, s[0], s[1], compute);
            }
  // Other shapes (vectors, a single output, a long k), and the legacy compute type CUDA_R_32F.
  for (Shape s : {Shape{1, 7, 5, 0, 2, 0}, Shape{6, 1, 130, 1, 0, 3}, Shape{1, 1, 1, 0, 0, 0}, Shape{64, 48, 96, 0, 0, 0}})
    for (int ta : {N, T})
      for (int tb : {N, T}) {
        gemm_case(h, rng, ta, tb, BF16, BF16, BF16, s, 1.0f, 0.0f, COMPUTE_32F);
        gemm_case(h, rng, ta, tb, F32, F32, F32, s, 1.0f, 1.0f, 0);
      }
  for (bool ta : {false, true})
    for (bool tb : {false, true}) rowmajor_case(h, rng, ta, tb);
  for (int ta : {N, T})
    for (int tb : {N, T})
      for (int ct : types) {
        exact_case(h, rng, ta, tb, F32, BF16, ct, Shape{23, 17, 301, 1, 2, 1}, 0.0f);
        exact_case(h, rng, ta, tb, BF16, F32, ct, Shape{23, 17, 301, 1, 2, 1}, 1.0f);
      }

  // Results must not depend on the number of threads (libgomp is reachable through the library).
  if (auto setThreads = (SetThreadsFn)dlsym(lib, "omp_set_num_threads")) {
    uint64_t hs[2];
    for (int r = 0; r < 2; r++) {
      setThreads(r == 0 ? 1 : 7);
      std::mt19937 g(777);
      hs[r] = gemm_case(h, g, T, N, BF16, BF16, F32, Shape{130, 77, 65, 1, 2, 3}, 1.0f, 1.0f, COMPUTE_32F) ^
              gemm_case(h, g, N, T, F32, BF16, BF16, Shape{130, 77, 65, 1, 2, 3}, 1.0f, 0.0f, COMPUTE_32F);
    }
    report(hs[0] == hs[1], "same bits with 1 and 7 OpenMP threads");
  } else {
    std::printf("SKIP  thread-count independence (omp_set_num_threads not found)\n");
  }

  // bf16 rounding: ties to even, above a tie up, overflow to infinity, NaN stays NaN.
  bf16_round_case(h, 0x3f808000u, 0x3f80, "tie 1+2^-8 -> 1 (even)");
  bf16_round_case(h, 0x3f818000u, 0x3f82, "tie 1+3*2^-8 -> 1+2^-6 (even)");
  bf16_round_case(h, 0xbf808000u, 0xbf80, "tie -(1+2^-8) -> -1 (even)");
  bf16_round_case(h, 0x3f808001u, 0x3f81, "just above a tie rounds up");
  bf16_round_case(h, 0x3f807fffu, 0x3f80, "just below a tie rounds down");
  bf16_round_case(h, 0x7f7fffffu, 0x7f80, "FLT_MAX -> +inf");
  bf16_round_case(h, 0x7f800000u, 0x7f80, "+inf stays +inf");
  bf16_round_case(h, 0x7fc00000u, 0x7fc0, "quiet NaN stays NaN");
  bf16_round_case(h, 0x7f800001u, 0x7fc0, "NaN with a low-bits-only payload stays NaN");

  // Empty products. k == 0: C = beta C, or 0 when beta == 0 (C not read); m or n == 0: nothing.
  {
    float C[6], one = 1.0f, zero = 0.0f, two = 2.0f, a = 0, b = 0;
    for (float& c : C) c = bits_f(kNaN);
    int st = gemmEx(h, N, N, 2, 3, 0, &one, &a, F32, 2, &b, F32, 1, &zero, C, F32, 2, COMPUTE_32F, ALGO_DEFAULT);
    bool ok = st == 0;
    for (float c : C) ok = ok && c == 0.0f;
    report(ok, "k=0, beta=0, C=NaN: C becomes 0", "status " + std::to_string(st));
    for (int i = 0; i < 6; i++) C[i] = float(i) - 2.5f;
    st = gemmEx(h, N, N, 2, 3, 0, &one, &a, F32, 2, &b, F32, 1, &two, C, F32, 2, COMPUTE_32F, ALGO_DEFAULT);
    ok = st == 0;
    for (int i = 0; i < 6; i++) ok = ok && C[i] == 2.0f * (float(i) - 2.5f);
    report(ok, "k=0, beta=2: C becomes 2C", "status " + std::to_string(st));
    for (float& c : C) c = bits_f(kNaN);
    st = gemmEx(h, N, N, 0, 3, 4, &one, &a, F32, 1, &b, F32, 4, &zero, C, F32, 1, COMPUTE_32F, ALGO_DEFAULT);
    ok = st == 0;
    for (float c : C) ok = ok && f_bits(c) == kNaN;
    report(ok, "m=0: success, C untouched", "status " + std::to_string(st));
    st = gemmEx(h, N, N, 2, 0, 4, &one, &a, F32, 2, &b, F32, 4, &zero, C, F32, 2, COMPUTE_32F, ALGO_DEFAULT);
    ok = st == 0;
    for (float c : C) ok = ok && f_bits(c) == kNaN;
    report(ok, "n=0: success, C untouched", "status " + std::to_string(st));
  }

  // Grouped: 2 groups of 2 and 1 problems with different shapes, transposes, leading dimensions,
  // alpha and beta; must equal the three GemmEx calls bit for bit (C padding included).
  for (int ct : types) {
    const int at = BF16, bt = BF16;
    int tA[2] = {N, T}, tB[2] = {T, N}, m[2] = {13, 5}, n[2] = {7, 11}, k[2] = {19, 8};
    int pad[2] = {2, 0}, gsize[2] = {2, 1};
    float alpha[2] = {1.0f, 0.5f}, beta[2] = {0.0f, 1.0f};
    std::vector<Mat> A, B, C;
    for (int g = 0; g < 2; g++)
      for (int i = 0; i < gsize[g]; i++) {
        int rA = tA[g] == N ? m[g] : k[g], cA = tA[g] == N ? k[g] : m[g], rB = tB[g] == N ? k[g] : n[g], cB = tB[g] == N ? n[g] : k[g];
        A.emplace_back(at, rA, cA, rA + pad[g]);
        B.emplace_back(bt, rB, cB, rB + pad[g] + 1);
        C.emplace_back(ct, m[g], n[g], m[g] + pad[g]);
        A.back().fill_random(rng, kNaN);
        B.back().fill_random(rng, kNaN);
        C.back().fill_random(rng, kPadC);
        if (beta[g] == 0.0f) C.back().fill_interior(kNaN);
      }
    std::vector<Mat> Cg = C, Cs = C;
    int lda[2], ldb[2], ldc[2];
    std::vector<const void*> pa, pb;
    std::vector<void*> pc;
    for (size_t i = 0; i < A.size(); i++) { pa.push_back(A[i].ptr()); pb.push_back(B[i].ptr()); pc.push_back(Cg[i].ptr()); }
    lda[0] = A[0].ld; ldb[0] = B[0].ld; ldc[0] = C[0].ld;
    lda[1] = A[2].ld; ldb[1] = B[2].ld; ldc[1] = C[2].ld;
    int st = groupedEx(h, tA, tB, m, n, k, alpha, pa.data(), at, lda, pb.data(), bt, ldb, beta, pc.data(), ct, ldc, 2, gsize, COMPUTE_32F);
    bool ok = st == 0;
    for (int i = 0; i < 3 && ok; i++) {
      int g = i < 2 ? 0 : 1;
      ok = gemmEx(h, tA[g], tB[g], m[g], n[g], k[g], &alpha[g], A[i].ptr(), at, lda[g], B[i].ptr(), bt, ldb[g], &beta[g], Cs[i].ptr(), ct,
                  ldc[g], COMPUTE_32F, ALGO_DEFAULT) == 0;
    }
    for (int i = 0; i < 3 && ok; i++) ok = Cg[i].same_bits(Cs[i]);
    std::string detail;
    // And the GemmEx results themselves against the reference, so that the equality means something.
    for (int i = 0; i < 3 && ok; i++) {
      int g = i < 2 ? 0 : 1;
      ok = compare(A[i], tA[g], B[i], tB[g], C[i], Cs[i], alpha[g], beta[g], m[g], n[g], k[g], detail);
    }
    report(ok, std::string("GroupedBatchedEx 2 groups (sizes 2, 1) A=bf16 B=bf16 C=") + tname(ct) + " == 3 GemmEx, bitwise",
           "status " + std::to_string(st) + (detail.empty() ? "" : ", " + detail));

    // An invalid leading dimension in the second group: INVALID_VALUE, and nothing computed.
    std::vector<Mat> Cb = C;
    for (size_t i = 0; i < Cb.size(); i++) pc[i] = Cb[i].ptr();
    int lda_bad[2] = {lda[0], tA[1] == N ? m[1] - 1 : k[1] - 1};
    st = groupedEx(h, tA, tB, m, n, k, alpha, pa.data(), at, lda_bad, pb.data(), bt, ldb, beta, pc.data(), ct, ldc, 2, gsize, COMPUTE_32F);
    ok = st == 7;
    for (size_t i = 0; i < Cb.size(); i++) ok = ok && Cb[i].same_bits(C[i]);
    report(ok, std::string("GroupedBatchedEx lda too small in group 2 (C=") + tname(ct) + "): 7, no C written",
           "status " + std::to_string(st));
  }
  {
    int one = 1, op = N, dim = 4, ld = 4;
    float a[16] = {}, b[16] = {}, c[16] = {}, al = 1, be = 0;
    const void* pa[1] = {a};
    const void* pb[1] = {b};
    void* pc[1] = {c};
    int neg = -1;
    auto call = [&](void* hh, int at, int count, const int* sizes) {
      return groupedEx(hh, &op, &op, &dim, &dim, &dim, &al, pa, at, &ld, pb, F32, &ld, &be, pc, F32, &ld, count, sizes, COMPUTE_32F);
    };
    status_case("GroupedBatchedEx group_size < 0", call(h, F32, 1, &neg), 7);
    status_case("GroupedBatchedEx group_count < 0", call(h, F32, -1, &one), 7);
    status_case("GroupedBatchedEx Atype CUDA_R_16F: not supported", call(h, F16, 1, &one), 15);
    status_case("GroupedBatchedEx group_count 0", call(h, F32, 0, &one), 0);
    status_case("GroupedBatchedEx null handle", call(nullptr, F32, 1, &one), 1);
  }

  // Argument validation, as cuBLAS: INVALID_VALUE for dimensions / leading dimensions, NOT_SUPPORTED
  // for types, NOT_INITIALIZED for a null handle. The matrices are big enough for the valid calls.
  {
    std::vector<float> a(64, bits_f(kNaN)), b(64, bits_f(kNaN)), c(64, bits_f(kNaN));
    float one = 1, zero = 0;
    auto call = [&](void* hh, int ta, int tb, int m, int n, int k, int at, int lda, int bt, int ldb, int ct, int ldc, int compute) {
      return gemmEx(hh, ta, tb, m, n, k, &one, a.data(), at, lda, b.data(), bt, ldb, &zero, c.data(), ct, ldc, compute, ALGO_DEFAULT);
    };
    status_case("GemmEx N: lda=4 < m=5", call(h, N, N, 5, 3, 4, F32, 4, F32, 4, F32, 5, COMPUTE_32F), 7);
    status_case("GemmEx T: lda=3 < k=4 (though >= m)", call(h, T, N, 3, 3, 4, F32, 3, F32, 4, F32, 3, COMPUTE_32F), 7);
    status_case("GemmEx N: ldb=3 < k=4", call(h, N, N, 3, 3, 4, F32, 3, F32, 3, F32, 3, COMPUTE_32F), 7);
    status_case("GemmEx T: ldb=2 < n=3", call(h, N, T, 3, 3, 4, F32, 3, F32, 2, F32, 3, COMPUTE_32F), 7);
    status_case("GemmEx ldc=2 < m=3", call(h, N, N, 3, 3, 4, F32, 3, F32, 4, F32, 2, COMPUTE_32F), 7);
    status_case("GemmEx m=0 but lda=0 < max(1, m)", call(h, N, N, 0, 3, 4, F32, 0, F32, 4, F32, 1, COMPUTE_32F), 7);
    status_case("GemmEx m=-1", call(h, N, N, -1, 3, 4, F32, 1, F32, 4, F32, 1, COMPUTE_32F), 7);
    status_case("GemmEx k=-1", call(h, N, N, 3, 3, -1, F32, 3, F32, 1, F32, 3, COMPUTE_32F), 7);
    status_case("GemmEx transa=5", call(h, 5, N, 3, 3, 4, F32, 4, F32, 4, F32, 3, COMPUTE_32F), 7);
    status_case("GemmEx Atype CUDA_R_16F: not supported", call(h, N, N, 3, 3, 4, F16, 3, F32, 4, F32, 3, COMPUTE_32F), 15);
    status_case("GemmEx Ctype CUDA_R_64F: not supported", call(h, N, N, 3, 3, 4, F32, 3, F32, 4, F64, 3, COMPUTE_32F), 15);
    status_case("GemmEx compute CUBLAS_COMPUTE_16F: not supported", call(h, N, N, 3, 3, 4, BF16, 3, BF16, 4, BF16, 3, COMPUTE_16F), 15);
    status_case("GemmEx null handle", call(nullptr, N, N, 3, 3, 4, F32, 3, F32, 4, F32, 3, COMPUTE_32F), 1);
    bool untouched = true;
    for (float x : c) untouched = untouched && f_bits(x) == kNaN;
    report(untouched, "rejected calls wrote nothing");
    status_case("GemmEx OP_C on real types (as T)", call(h, 2, 2, 3, 3, 4, F32, 4, F32, 3, F32, 3, COMPUTE_32F), 0);
  }

  status_case("cublasDestroy_v2", destroy(h), 0);
  status_case("cublasDestroy_v2 null handle", destroy(nullptr), 1);
  std::printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
