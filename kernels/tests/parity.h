// How the CUDA backend is compared with the CPU backend (used by test_cuda.cpp; the logic itself
// is unit-tested on the CPU in test_units.cpp).
//
// Tensors: relative L2 error ||got - ref|| / ||ref|| (robust to a few small elements), plus the
// largest absolute difference for the report. Routing: slot by slot the expert ids must be equal;
// a difference is accepted only as a near tie, i.e. where the two backends' j-th largest router
// probabilities of that token differ by less than tieTol (two experts whose probabilities are that
// close can swap places under any change of summation order). The fp32 path must have no
// mismatch other than near ties; the test reports how many there were.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace flame { namespace parity {

struct TensorDiff {
  double relL2 = 0, maxAbs = 0, refNorm = 0;
  size_t worst = 0;
};
template <typename A, typename B>
TensorDiff compare(const A* got, const B* ref, size_t n) {
  TensorDiff d;
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    const double e = (double)got[i] - (double)ref[i];
    num += e * e; den += (double)ref[i] * (double)ref[i];
    if (std::fabs(e) > d.maxAbs || std::isnan(e)) { d.maxAbs = std::isnan(e) ? INFINITY : std::fabs(e); d.worst = i; }
  }
  d.refNorm = std::sqrt(den);
  d.relL2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  if (std::isnan(d.relL2)) d.relL2 = INFINITY;
  return d;
}
inline bool within(const TensorDiff& d, double tol) { return d.relL2 <= tol; }

struct RoutingDiff {
  size_t slots = 0, mismatches = 0, nearTies = 0;
  long firstBad = -1;  // first slot that differs and is not a near tie
};
// idx / gate [T*k] of both backends (slot j = j-th largest probability).
inline RoutingDiff compare_routing(const int32_t* refIdx, const float* refGate, const int32_t* gotIdx, const float* gotGate, size_t slots,
                                   double tieTol) {
  RoutingDiff r;
  r.slots = slots;
  for (size_t i = 0; i < slots; i++) {
    if (refIdx[i] == gotIdx[i]) continue;
    r.mismatches++;
    const double a = refGate[i], b = gotGate[i];
    if (std::fabs(a - b) <= tieTol * std::max(std::fabs(a), 1e-30)) r.nearTies++;
    else if (r.firstBad < 0) r.firstBad = (long)i;
  }
  return r;
}
inline bool routing_ok(const RoutingDiff& r) { return r.mismatches == r.nearTies; }

}}  // namespace flame::parity
