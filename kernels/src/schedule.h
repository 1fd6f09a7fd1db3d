// Megatron's OptimizerParamScheduler with --lr-decay-style WSD (exponential anneal), in
// iteration units. Megatron steps the scheduler once before training, so iteration i (1-based)
// trains with lr_at(i - 1): iteration 1 uses lr 0 when there is warm-up.
#pragma once
#include "config.h"
namespace flame {
struct WsdSchedule {
  double maxLr, minLr, warmup;  // warmup may be fractional (0.01 * trainIters)
  long decayIters, wsdIters;    // decayIters = trainIters
  static WsdSchedule from(const TrainConfig& t) {
    // An absolute warm-up (Megatron's --lr-warmup-iters) does not move with trainIters.
    double warmup = t.warmupIters >= 0 ? (double)t.warmupIters : t.warmupFraction * (double)t.trainIters;
    return WsdSchedule{t.lr, t.minLr, warmup, t.trainIters, t.resolvedWsdIters()};
  }
  long annealStart() const { return decayIters - wsdIters; }
  double lr_at(double n) const;                             // n = number of scheduler steps taken
  double lr_for_iteration(long i) const { return lr_at((double)(i - 1)); }
};
}
