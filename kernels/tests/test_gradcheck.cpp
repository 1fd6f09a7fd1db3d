// Finite-difference gradient check of every parameter tensor, in double precision (the model
// sources compiled with real = double), on a tiny config with dense + MoE layers, a shared expert,
// and enlarged aux / z-loss coefficients so their gradients are visible.
#include "model.h"
#include "testing.h"
#include <random>

using namespace flame;

static double objective(Model& m, const std::vector<int32_t>& in, const std::vector<int32_t>& tg, int B, int S, double auxScale) {
  StepOptions o; o.grad = false;
  StepResult r = m.step(in.data(), tg.data(), B, S, o);
  return r.lmLossSum / (B * S) + auxScale * (r.aux + r.z);
}

static void run(const char* label, ModelConfig mc, double auxScale) {
  Model m(mc);
  m.init(7);
  for (auto& t : m.tensors)  // larger weights: a less linear function, well separated router scores
    if (t.decay) for (size_t i = 0; i < t.numel; i++) m.params[t.offset + i] *= 12;
    else for (size_t i = 0; i < t.numel; i++) m.params[t.offset + i] = 1 + 0.1 * std::sin(i + 1.0);
  int B = 2, S = (int)mc.seqLength;
  std::mt19937 rng(3);
  std::vector<int32_t> in(B * S), tg(B * S);
  for (auto& v : in) v = rng() % mc.vocabSize;
  for (auto& v : tg) v = rng() % mc.vocabSize;
  m.zero_grad();
  StepOptions o; o.grad = true; o.lmScale = 1.0 / (B * S); o.auxScale = auxScale;
  StepResult r = m.step(in.data(), tg.data(), B, S, o);
  printf("[%s] loss %.6f aux %.6f z %.6f\n", label, r.lmLossSum / (B * S), r.aux, r.z);
  std::vector<double> analytic(m.grads.begin(), m.grads.end());
  for (auto& t : m.tensors) {
    double worst = 0; int checked = 0;
    std::vector<size_t> picks;
    size_t best = 0;
    for (size_t i = 0; i < t.numel; i++) if (std::fabs(analytic[t.offset + i]) > std::fabs(analytic[t.offset + best])) best = i;
    picks.push_back(best);
    for (int j = 0; j < 12 && (size_t)j < t.numel; j++) picks.push_back(rng() % t.numel);
    for (size_t i : picks) {
      double& p = m.params[t.offset + i]; double save = p, eps = 1e-5;
      p = save + eps; double lp = objective(m, in, tg, B, S, auxScale);
      p = save - eps; double lm = objective(m, in, tg, B, S, auxScale);
      p = save;
      double num = (lp - lm) / (2 * eps), an = analytic[t.offset + i];
      double err = std::fabs(num - an) / std::max(1e-7, std::fabs(num) + std::fabs(an));
      worst = std::max(worst, err); checked++;
    }
    double gmax = std::fabs(analytic[t.offset + best]);
    CHECK(worst < 2e-5, "[%s] %s: worst relative error %.3g", label, t.name.c_str(), worst);
    CHECK(gmax > 0, "[%s] %s: gradient is identically zero", label, t.name.c_str());
    printf("[%s] %-32s max|g| %.3e  worst rel err %.2e (%d elements)\n", label, t.name.c_str(), gmax, worst, checked);
  }
}

int main() {
  ModelConfig mc;
  mc.vocabSize = 13; mc.hiddenSize = 16; mc.numLayers = 3; mc.numAttentionHeads = 4;
  mc.ffnHiddenSize = 12; mc.moeFfnHiddenSize = 6; mc.numExperts = 8; mc.topK = 3; mc.sharedExpertSize = 12;
  mc.moeLayers = {false, true, true}; mc.seqLength = 7; mc.auxLossCoeff = 0.3; mc.zLossCoeff = 0.05;
  run("moe", mc, 0.5);
  // only the balancing losses: isolates router aux / z gradients
  ModelConfig aux = mc; aux.auxLossCoeff = 1.0; aux.zLossCoeff = 1.0;
  run("aux+z", aux, 1.0);
  TEST_MAIN_END();
}
