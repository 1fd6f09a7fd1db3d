#include "schedule.h"
#include <cmath>
namespace flame {
double WsdSchedule::lr_at(double n) const {
  if (warmup > 0 && n <= warmup) return maxLr * n / warmup;  // warm-up from init lr 0
  if (n > (double)decayIters) return minLr;
  double start = (double)annealStart();
  if (n <= start) return maxLr;
  double r = (n - start) / (double)wsdIters;
  double coeff = 2.0 * std::pow(0.5, r) - 1.0;  // lr-wsd-decay-style exponential
  return minLr + coeff * (maxLr - minLr);
}
}
