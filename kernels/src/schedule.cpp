#include "schedule.h"
#include "common.h"
#include <cmath>
namespace flame {

bool parse_wsd_decay_style(const std::string& s, WsdDecayStyle* out) {
  if (s == "exponential") *out = WsdDecayStyle::Exponential;
  else if (s == "linear") *out = WsdDecayStyle::Linear;
  else if (s == "cosine") *out = WsdDecayStyle::Cosine;
  else if (s == "minus_sqrt") *out = WsdDecayStyle::MinusSqrt;
  else return false;
  return true;
}

WsdSchedule WsdSchedule::from(const TrainConfig& t) {
  // An absolute warm-up (Megatron's --lr-warmup-iters) does not move with trainIters.
  double warmup = t.warmupIters >= 0 ? (double)t.warmupIters : t.warmupFraction * (double)t.trainIters;
  WsdSchedule s{t.lr, t.minLr, warmup, t.trainIters, t.resolvedWsdIters()};
  if (!parse_wsd_decay_style(t.wsdDecayStyle, &s.style))
    fail(EXIT_CONFIG, "config.train.wsdDecayStyle: expected \"exponential\", \"linear\", \"cosine\" or \"minus_sqrt\", got " + json_quote(t.wsdDecayStyle));
  return s;
}

double WsdSchedule::lr_at(double n) const {
  if (warmup > 0 && n <= warmup) return maxLr * n / warmup;  // warm-up from init lr 0
  if (n > (double)decayIters) return minLr;
  double start = (double)annealStart();
  if (n <= start) return maxLr;
  double r = (n - start) / (double)wsdIters;
  double coeff;
  switch (style) {  // Megatron's get_lr, WSD branch
    case WsdDecayStyle::Linear: coeff = 1.0 - r; break;
    case WsdDecayStyle::Cosine: coeff = 0.5 * (std::cos(3.141592653589793 * r) + 1.0); break;  // math.pi
    case WsdDecayStyle::MinusSqrt: coeff = 1.0 - std::sqrt(r); break;
    case WsdDecayStyle::Exponential: default: coeff = 2.0 * std::pow(0.5, r) - 1.0; break;
  }
  return minLr + coeff * (maxLr - minLr);
}
}
