// Flash attention on tensor cores (mma.sync m16n8k16, bf16 operands, fp32 accumulation) for bf16
// activations and head dims 16, 32, 64, 96 and 128 (those of the published scales): the same algorithm as the SIMT
// flash kernels in attention.cuh (online softmax forward saving lse; backward with one kernel per
// key tile for dK / dV and one per query tile for dQ, P recomputed, no atomics), with the tile
// products done by warp-level matrix instructions.
//
// Fragment layouts of mma.m16n8k16 (PTX ISA), lane = 4 * gr + tq:
//   A (16x16, row):  a0 = (gr, 2tq..2tq+1)  a1 = (gr+8, 2tq..)  a2 = (gr, 2tq+8..)  a3 = (gr+8, 2tq+8..)
//   B (16x8, col):   b0 = (k = 2tq..2tq+1, n = gr)  b1 = (k = 2tq+8.., n = gr)
//   C (16x8, f32):   c0, c1 = (gr, 2tq..2tq+1)  c2, c3 = (gr+8, 2tq..2tq+1)
// so a C tile pair converts in registers into the A operand of the next product (P V, P^T dO, ...),
// and B operands are read as 32-bit pairs from shared-memory rows that hold the k index
// contiguously (K rows for Q K^T, transposed V / Q / dO / K tiles for the products over keys or
// queries). Each warp owns 16 rows of the block's tile.
#include "cuda/kernels.h"
#include <cfloat>

namespace flame { namespace cuda {

namespace {

struct Geo {
  int S, H, d, h, ld;
  float scale;
};

__device__ __forceinline__ void mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
#ifdef FLAME_CUDA_EMULATION
  flame_emu::mma_m16n8k16_bf16(c, a, b0, b1);  // the CPU emulation (emu/): the instruction's semantics and layouts
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}
// two floats -> one register of two bf16, the first in the low half (the lower column index)
__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t ld2(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}
// A fragment of rows [r0, r0+16) (zero beyond row S), columns [c0, c0+16), read from global memory
// (row i at base + i * ld; pairs are 4-byte aligned because ld, the head offset and c0 are even)
__device__ __forceinline__ void load_a_global(uint32_t a[4], const bf16* base, size_t ld, int r0, int S, int c0, int gr, int tq) {
  const int ra = r0 + gr, rb = r0 + gr + 8;
  a[0] = ra < S ? ld2(base + (size_t)ra * ld + c0 + 2 * tq) : 0u;
  a[1] = rb < S ? ld2(base + (size_t)rb * ld + c0 + 2 * tq) : 0u;
  a[2] = ra < S ? ld2(base + (size_t)ra * ld + c0 + 2 * tq + 8) : 0u;
  a[3] = rb < S ? ld2(base + (size_t)rb * ld + c0 + 2 * tq + 8) : 0u;
}
// A fragment (16 x 16) from two C tiles (16 x 8 each, columns [0,8) and [8,16))
__device__ __forceinline__ void c_to_a(uint32_t a[4], const float lo[4], const float hi[4]) {
  a[0] = pack(lo[0], lo[1]); a[1] = pack(lo[2], lo[3]); a[2] = pack(hi[0], hi[1]); a[3] = pack(hi[2], hi[3]);
}

constexpr int WARPS = 4, THREADS = 32 * WARPS, ROWS = 16 * WARPS;  // 64 rows of the block's own tile

// ---------------------------------------------------------------- forward
template <int D>
__global__ void __launch_bounds__(THREADS) k_forward(bf16* out, float* lse, const bf16* qkv, Geo g) {
  constexpr int BK = 64, LD = D + 8, LV = BK + 8;
  __shared__ __align__(16) bf16 Ks[BK][LD];  // K tile: [key][dim]
  __shared__ __align__(16) bf16 Vt[D][LV];   // V tile transposed: [dim][key]
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H, q0 = blockIdx.x * ROWS;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gr = lane >> 2, tq = lane & 3, r0 = warp * 16;
  const bf16* base = qkv + (size_t)b * g.S * g.ld + hd * g.d;
  const bf16 zero = __float2bfloat16(0.0f);
  uint32_t qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) load_a_global(qa[kk], base, g.ld, q0 + r0, g.S, kk * 16, gr, tq);
  float o[D / 8][4];
#pragma unroll
  for (int nt = 0; nt < D / 8; nt++) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const int row[2] = {q0 + r0 + gr, q0 + r0 + gr + 8};
  const int last = min(g.S - 1, q0 + ROWS - 1);
  for (int k0 = 0; k0 <= last; k0 += BK) {
    __syncthreads();
    for (int e = threadIdx.x; e < BK * D; e += THREADS) {
      const int j = e / D, c = e % D, key = k0 + j;
      const bool in = key < g.S && c < g.d;
      Ks[j][c] = in ? base[(size_t)key * g.ld + g.h + c] : zero;
      Vt[c][j] = in ? base[(size_t)key * g.ld + 2 * g.h + c] : zero;
    }
    __syncthreads();
    float s[BK / 8][4];
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) mma(s[nt], qa[kk], ld2(&Ks[nt * 8 + gr][kk * 16 + 2 * tq]), ld2(&Ks[nt * 8 + gr][kk * 16 + 2 * tq + 8]));
    }
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int col = k0 + nt * 8 + 2 * tq + (e & 1), hr = e >> 1;
        s[nt][e] = (col <= row[hr] && col < g.S) ? s[nt][e] * g.scale : -INFINITY;
        mx[hr] = fmaxf(mx[hr], s[nt][e]);
      }
    float alpha[2], mb[2];
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
      const float mn = fmaxf(m[hr], quad_max(mx[hr]));
      mb[hr] = mn == -INFINITY ? 0.0f : mn;  // a row with nothing unmasked yet stays at zero
      alpha[hr] = expf(m[hr] - mb[hr]);
      m[hr] = mn;
    }
    float ls[2] = {0.0f, 0.0f};
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int hr = e >> 1;
        s[nt][e] = expf(s[nt][e] - mb[hr]);
        ls[hr] += s[nt][e];
      }
#pragma unroll
    for (int hr = 0; hr < 2; hr++) l[hr] = l[hr] * alpha[hr] + ls[hr];  // per-thread partial sums; the quad adds them at the end
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) { o[nt][0] *= alpha[0]; o[nt][1] *= alpha[0]; o[nt][2] *= alpha[1]; o[nt][3] *= alpha[1]; }
#pragma unroll
    for (int kk = 0; kk < BK / 16; kk++) {
      uint32_t pa[4];
      c_to_a(pa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int nt = 0; nt < D / 8; nt++) mma(o[nt], pa, ld2(&Vt[nt * 8 + gr][kk * 16 + 2 * tq]), ld2(&Vt[nt * 8 + gr][kk * 16 + 2 * tq + 8]));
    }
  }
#pragma unroll
  for (int hr = 0; hr < 2; hr++) {
    const float lt = quad_sum(l[hr]);
    if (row[hr] >= g.S) continue;
    const float inv = 1.0f / lt;
    bf16* dst = out + ((size_t)b * g.S + row[hr]) * g.h + hd * g.d;
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) {
      const int c = nt * 8 + 2 * tq;
      if (c < g.d) dst[c] = __float2bfloat16(o[nt][2 * hr] * inv);
      if (c + 1 < g.d) dst[c + 1] = __float2bfloat16(o[nt][2 * hr + 1] * inv);
    }
    if (tq == 0) lse[(size_t)bh * g.S + row[hr]] = m[hr] + logf(lt);
  }
}

// ---------------------------------------------------------------- backward: dK, dV per key tile
// S^T = K Q^T (keys x queries), P^T = exp(S^T scale - lse[q]), dV += P^T dO, dP^T = V dO^T,
// dS^T = P^T (dP^T - D[q]) scale, dK += dS^T Q.
template <int D>
__global__ void __launch_bounds__(THREADS) k_dkdv(bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse, const float* rowdot, Geo g) {
  // 32-query tiles above head dim 64 keep the four tiles within 48 KiB of static shared memory
  constexpr int BQ = D > 64 ? 32 : 64, LD = D + 8, LQ = BQ + 8;
  __shared__ __align__(16) bf16 Qs[BQ][LD], dOs[BQ][LD];  // [query][dim]
  __shared__ __align__(16) bf16 Qt[D][LQ], dOt[D][LQ];    // [dim][query]
  __shared__ float Ls[BQ], Ds[BQ];
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H, k0 = blockIdx.x * ROWS;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gr = lane >> 2, tq = lane & 3, r0 = warp * 16;
  const bf16* base = qkv + (size_t)b * g.S * g.ld + hd * g.d;
  const bf16* dO = dout + (size_t)b * g.S * g.h + hd * g.d;
  const bf16 zero = __float2bfloat16(0.0f);
  uint32_t ka[D / 16][4], va[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    load_a_global(ka[kk], base + g.h, g.ld, k0 + r0, g.S, kk * 16, gr, tq);
    load_a_global(va[kk], base + 2 * g.h, g.ld, k0 + r0, g.S, kk * 16, gr, tq);
  }
  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int nt = 0; nt < D / 8; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[nt][e] = dv[nt][e] = 0.0f;
  const int key[2] = {k0 + r0 + gr, k0 + r0 + gr + 8};
  for (int i0 = k0; i0 < g.S; i0 += BQ) {
    __syncthreads();
    for (int e = threadIdx.x; e < BQ * D; e += THREADS) {
      const int r = e / D, c = e % D, i = i0 + r;
      const bool in = i < g.S && c < g.d;
      const bf16 q = in ? base[(size_t)i * g.ld + c] : zero, o = in ? dO[(size_t)i * g.h + c] : zero;
      Qs[r][c] = q; Qt[c][r] = q; dOs[r][c] = o; dOt[c][r] = o;
    }
    for (int r = threadIdx.x; r < BQ; r += THREADS) {
      const int i = i0 + r;
      Ls[r] = i < g.S ? lse[(size_t)bh * g.S + i] : 0.0f;
      Ds[r] = i < g.S ? rowdot[(size_t)bh * g.S + i] : 0.0f;
    }
    __syncthreads();
    float p[BQ / 8][4], ds[BQ / 8][4];
#pragma unroll
    for (int nt = 0; nt < BQ / 8; nt++) {
      float s[4] = {0.0f, 0.0f, 0.0f, 0.0f}, dp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        mma(s, ka[kk], ld2(&Qs[nt * 8 + gr][kk * 16 + 2 * tq]), ld2(&Qs[nt * 8 + gr][kk * 16 + 2 * tq + 8]));
        mma(dp, va[kk], ld2(&dOs[nt * 8 + gr][kk * 16 + 2 * tq]), ld2(&dOs[nt * 8 + gr][kk * 16 + 2 * tq + 8]));
      }
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int qc = nt * 8 + 2 * tq + (e & 1), i = i0 + qc, j = key[e >> 1];
        const bool live = i < g.S && j < g.S && i >= j;
        const float pe = live ? expf(s[e] * g.scale - Ls[qc]) : 0.0f;
        p[nt][e] = pe;
        ds[nt][e] = pe * (dp[e] - Ds[qc]) * g.scale;
      }
    }
#pragma unroll
    for (int kk = 0; kk < BQ / 16; kk++) {
      uint32_t pa[4], sa[4];
      c_to_a(pa, p[2 * kk], p[2 * kk + 1]);
      c_to_a(sa, ds[2 * kk], ds[2 * kk + 1]);
#pragma unroll
      for (int nt = 0; nt < D / 8; nt++) {
        mma(dv[nt], pa, ld2(&dOt[nt * 8 + gr][kk * 16 + 2 * tq]), ld2(&dOt[nt * 8 + gr][kk * 16 + 2 * tq + 8]));
        mma(dk[nt], sa, ld2(&Qt[nt * 8 + gr][kk * 16 + 2 * tq]), ld2(&Qt[nt * 8 + gr][kk * 16 + 2 * tq + 8]));
      }
    }
  }
#pragma unroll
  for (int hr = 0; hr < 2; hr++) {
    if (key[hr] >= g.S) continue;
    bf16* dst = dqkv + ((size_t)b * g.S + key[hr]) * g.ld + hd * g.d;
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int c = nt * 8 + 2 * tq + e;
        if (c < g.d) { dst[g.h + c] = __float2bfloat16(dk[nt][2 * hr + e]); dst[2 * g.h + c] = __float2bfloat16(dv[nt][2 * hr + e]); }
      }
  }
}

// ---------------------------------------------------------------- backward: dQ per query tile
// S = Q K^T, P = exp(S scale - lse), dP = dO V^T, dS = P (dP - D) scale, dQ += dS K.
template <int D>
__global__ void __launch_bounds__(THREADS) k_dq(bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse, const float* rowdot, Geo g) {
  constexpr int BK = D >= 128 ? 32 : 64, LD = D + 8, LK = BK + 8;
  __shared__ __align__(16) bf16 Ks[BK][LD], Vs[BK][LD];  // [key][dim]
  __shared__ __align__(16) bf16 Kt[D][LK];               // [dim][key]
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H, q0 = blockIdx.x * ROWS;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gr = lane >> 2, tq = lane & 3, r0 = warp * 16;
  const bf16* base = qkv + (size_t)b * g.S * g.ld + hd * g.d;
  const bf16* dO = dout + (size_t)b * g.S * g.h + hd * g.d;
  const bf16 zero = __float2bfloat16(0.0f);
  uint32_t qa[D / 16][4], oa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    load_a_global(qa[kk], base, g.ld, q0 + r0, g.S, kk * 16, gr, tq);
    load_a_global(oa[kk], dO, g.h, q0 + r0, g.S, kk * 16, gr, tq);
  }
  const int row[2] = {q0 + r0 + gr, q0 + r0 + gr + 8};
  float L[2], Dr[2];
#pragma unroll
  for (int hr = 0; hr < 2; hr++) {
    L[hr] = row[hr] < g.S ? lse[(size_t)bh * g.S + row[hr]] : 0.0f;
    Dr[hr] = row[hr] < g.S ? rowdot[(size_t)bh * g.S + row[hr]] : 0.0f;
  }
  float dq[D / 8][4];
#pragma unroll
  for (int nt = 0; nt < D / 8; nt++) dq[nt][0] = dq[nt][1] = dq[nt][2] = dq[nt][3] = 0.0f;
  const int last = min(g.S - 1, q0 + ROWS - 1);
  for (int j0 = 0; j0 <= last; j0 += BK) {
    __syncthreads();
    for (int e = threadIdx.x; e < BK * D; e += THREADS) {
      const int r = e / D, c = e % D, j = j0 + r;
      const bool in = j < g.S && c < g.d;
      const bf16 k = in ? base[(size_t)j * g.ld + g.h + c] : zero;
      Ks[r][c] = k; Kt[c][r] = k;
      Vs[r][c] = in ? base[(size_t)j * g.ld + 2 * g.h + c] : zero;
    }
    __syncthreads();
    float ds[BK / 8][4];
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++) {
      float s[4] = {0.0f, 0.0f, 0.0f, 0.0f}, dp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        mma(s, qa[kk], ld2(&Ks[nt * 8 + gr][kk * 16 + 2 * tq]), ld2(&Ks[nt * 8 + gr][kk * 16 + 2 * tq + 8]));
        mma(dp, oa[kk], ld2(&Vs[nt * 8 + gr][kk * 16 + 2 * tq]), ld2(&Vs[nt * 8 + gr][kk * 16 + 2 * tq + 8]));
      }
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int hr = e >> 1, j = j0 + nt * 8 + 2 * tq + (e & 1);
        const bool live = row[hr] < g.S && j <= row[hr];
        const float pe = live ? expf(s[e] * g.scale - L[hr]) : 0.0f;
        ds[nt][e] = pe * (dp[e] - Dr[hr]) * g.scale;
      }
    }
#pragma unroll
    for (int kk = 0; kk < BK / 16; kk++) {
      uint32_t sa[4];
      c_to_a(sa, ds[2 * kk], ds[2 * kk + 1]);
#pragma unroll
      for (int nt = 0; nt < D / 8; nt++) mma(dq[nt], sa, ld2(&Kt[nt * 8 + gr][kk * 16 + 2 * tq]), ld2(&Kt[nt * 8 + gr][kk * 16 + 2 * tq + 8]));
    }
  }
#pragma unroll
  for (int hr = 0; hr < 2; hr++) {
    if (row[hr] >= g.S) continue;
    bf16* dst = dqkv + ((size_t)b * g.S + row[hr]) * g.ld + hd * g.d;
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int c = nt * 8 + 2 * tq + e;
        if (c < g.d) dst[c] = __float2bfloat16(dq[nt][2 * hr + e]);
      }
  }
}

Geo geo(int S, int H, int d) { return Geo{S, H, d, H * d, 3 * H * d, (float)(1.0 / std::sqrt((double)d))}; }

template <int D> void forward_d(bf16* out, float* lse, const bf16* qkv, int B, const Geo& g, cudaStream_t st) {
  k_forward<D><<<dim3(blocks_for(g.S, ROWS), B * g.H), THREADS, 0, st>>>(out, lse, qkv, g);
  CUDA_LAUNCH();
}
template <int D> void backward_d(bf16* dqkv, const float* rowdot, const bf16* dout, const bf16* qkv, const float* lse, int B, const Geo& g,
                                 cudaStream_t st) {
  k_dkdv<D><<<dim3(blocks_for(g.S, ROWS), B * g.H), THREADS, 0, st>>>(dqkv, dout, qkv, lse, rowdot, g);
  CUDA_LAUNCH();
  k_dq<D><<<dim3(blocks_for(g.S, ROWS), B * g.H), THREADS, 0, st>>>(dqkv, dout, qkv, lse, rowdot, g);
  CUDA_LAUNCH();
}

}  // namespace

bool flash_mma_supports(int d) { return d == 16 || d == 32 || d == 64 || d == 96 || d == 128; }

void attention_forward_mma(bf16* out, float* lse, const bf16* qkv, int B, int S, int H, int d, cudaStream_t st) {
  if (B * S == 0) return;
  const Geo g = geo(S, H, d);
  switch (d) {
    case 16: forward_d<16>(out, lse, qkv, B, g, st); break;
    case 32: forward_d<32>(out, lse, qkv, B, g, st); break;
    case 64: forward_d<64>(out, lse, qkv, B, g, st); break;
    case 96: forward_d<96>(out, lse, qkv, B, g, st); break;
    case 128: forward_d<128>(out, lse, qkv, B, g, st); break;
    default: fail(EXIT_OTHER, "internal: tensor-core attention for head dim " + std::to_string(d));
  }
}
// rowdot (D_i = <dO_i, O_i>) must already be computed.
void attention_backward_mma(bf16* dqkv, const float* rowdot, const bf16* dout, const bf16* qkv, const float* lse, int B, int S, int H, int d,
                            cudaStream_t st) {
  if (B * S == 0) return;
  const Geo g = geo(S, H, d);
  switch (d) {
    case 16: backward_d<16>(dqkv, rowdot, dout, qkv, lse, B, g, st); break;
    case 32: backward_d<32>(dqkv, rowdot, dout, qkv, lse, B, g, st); break;
    case 64: backward_d<64>(dqkv, rowdot, dout, qkv, lse, B, g, st); break;
    case 96: backward_d<96>(dqkv, rowdot, dout, qkv, lse, B, g, st); break;
    case 128: backward_d<128>(dqkv, rowdot, dout, qkv, lse, B, g, st); break;
    default: fail(EXIT_OTHER, "internal: tensor-core attention for head dim " + std::to_string(d));
  }
}

}}  // namespace flame::cuda
