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

const char* wsd_decay_style_name(WsdDecayStyle style) {
  switch (style) {
    case WsdDecayStyle::Linear: return "linear";
    case WsdDecayStyle::Cosine: return "cosine";
    case WsdDecayStyle::MinusSqrt: return "minus_sqrt";
    case WsdDecayStyle::Exponential: default: return "exponential";
  }
}

// The anneal's rate after n scheduler steps, n > start (Megatron's get_lr, WSD branch).
static double anneal_lr(WsdDecayStyle style, double maxLr, double minLr, double start, double length, double n) {
  double r = (n - start) / length;
  double coeff;
  switch (style) {
    case WsdDecayStyle::Linear: coeff = 1.0 - r; break;
    case WsdDecayStyle::Cosine: coeff = 0.5 * (std::cos(3.141592653589793 * r) + 1.0); break;  // math.pi
    case WsdDecayStyle::MinusSqrt: coeff = 1.0 - std::sqrt(r); break;
    case WsdDecayStyle::Exponential: default: coeff = 2.0 * std::pow(0.5, r) - 1.0; break;
  }
  return minLr + coeff * (maxLr - minLr);
}

double WsdSchedule::lr_at(double n) const {
  if (warmup > 0 && n <= warmup) return maxLr * n / warmup;  // warm-up from init lr 0
  if (n > (double)decayIters) return minLr;
  double start = (double)annealStart();
  if (n <= start) return maxLr;
  return anneal_lr(style, maxLr, minLr, start, (double)wsdIters, n);
}

// Iterations 1..I take the rates after n = 0..I-1 scheduler steps. The warm-up's rates are listed:
// a higher peak over a longer warm-up can give the very same ones. After it the rate is the peak
// until the anneal, which is described by its settings, and only when some n <= I-1 reaches it.
// So a checkpoint's description holds nothing of the run's future (its length, its minLr), and two
// runs that pass through the same state write the same bytes for it.
Json WsdSchedule::describe(long iteration) const {
  long last = iteration - 1, start = annealStart();
  long warmupEnd = warmup > 0 ? (long)std::floor(warmup) : -1;  // lr_at's warm-up: n <= warmup
  Json rates = Json::array();
  for (long n = 0; n <= std::min(last, warmupEnd); n++) rates.push(Json::number(lr_at((double)n)));
  Json d = Json::object();
  d.set("warmupRates", rates);
  long first = warmupEnd + 1;
  if (first <= std::min(last, start)) d.set("peak", Json::number(maxLr));
  if (std::max(first, start + 1) <= last) {
    Json a = Json::object();
    a.set("start", Json::integer(start));
    a.set("length", Json::integer(wsdIters));
    a.set("maxLr", Json::number(maxLr));
    a.set("minLr", Json::number(minLr));
    a.set("style", Json::string(wsd_decay_style_name(style)));
    d.set("anneal", a);
  }
  return d;
}

double WsdSchedule::described_lr(const Json& d, long i) {
  long n = i - 1;
  const Json* rates = d.get("warmupRates");
  if (rates && n >= 0 && (size_t)n < rates->arr.size()) return rates->arr[(size_t)n].num;
  const Json* a = d.get("anneal");
  if (a && a->get("start") && n > (long)a->get("start")->num) {
    WsdDecayStyle style = WsdDecayStyle::Exponential;
    if (const Json* st = a->get("style")) parse_wsd_decay_style(st->str, &style);
    auto num = [&](const char* k) { const Json* v = a->get(k); return v ? v->num : NAN; };
    return anneal_lr(style, num("maxLr"), num("minLr"), num("start"), num("length"), (double)n);
  }
  const Json* peak = d.get("peak");
  return peak ? peak->num : NAN;
}
}
