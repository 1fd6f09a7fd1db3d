// Megatron's OptimizerParamScheduler with --lr-decay-style WSD, in iteration units: warm-up,
// constant, then an anneal over the last wsdIters iterations shaped by --lr-wsd-decay-style.
// Megatron steps the scheduler once before training, so iteration i (1-based) trains with
// lr_at(i - 1): iteration 1 uses lr 0 when there is warm-up.
#pragma once
#include <string>
#include "config.h"
#include "io/json.h"
namespace flame {
enum class WsdDecayStyle { Exponential, Linear, Cosine, MinusSqrt };
// "exponential" | "linear" | "cosine" | "minus_sqrt"; false for anything else
bool parse_wsd_decay_style(const std::string& s, WsdDecayStyle* out);
const char* wsd_decay_style_name(WsdDecayStyle style);

struct WsdSchedule {
  double maxLr, minLr, warmup;  // warmup may be fractional (0.01 * trainIters)
  long decayIters, wsdIters;    // decayIters = trainIters
  WsdDecayStyle style = WsdDecayStyle::Exponential;
  static WsdSchedule from(const TrainConfig& t);
  long annealStart() const { return decayIters - wsdIters; }
  double lr_at(double n) const;                             // n = number of scheduler steps taken
  double lr_for_iteration(long i) const { return lr_at((double)(i - 1)); }
  // The rates of iterations 1..iteration, canonically: runs whose rates agree there describe them
  // alike, however their schedules are parameterised (see schedule.cpp).
  Json describe(long iteration) const;
  // The rate of iteration i (1 <= i <= the described iteration) from such a description.
  static double described_lr(const Json& description, long i);
};
}
