// Token permutation by expert, shared by the CPU and CUDA backends (host code):
// the (token, slot) pairs of the top-k map are sorted by expert id with a stable counting sort,
// so within an expert the rows keep (token, slot) order and the result is a pure function of idx.
//   counts[e]  number of pairs routed to expert e          offsets[e] = sum_{e' < e} counts[e']
//   rowTok[r]  token of grouped row r                      tokRow[t*k + j] = grouped row of (t, j)
#pragma once
#include <cstdint>
#include <vector>
namespace flame {
inline void build_expert_permutation(const int32_t* idx, int T, int k, int E, int32_t* counts, int32_t* offsets,
                                     int32_t* rowTok, int32_t* tokRow) {
  for (int e = 0; e < E; e++) counts[e] = 0;
  for (long i = 0; i < (long)T * k; i++) counts[idx[i]]++;
  offsets[0] = 0;
  for (int e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
  std::vector<int32_t> fill(offsets, offsets + E);
  for (int t = 0; t < T; t++)
    for (int j = 0; j < k; j++) {
      int r = fill[idx[(size_t)t * k + j]]++;
      rowTok[r] = t; tokRow[(size_t)t * k + j] = r;
    }
}

// Token positions grouped by token id, for a deterministic embedding-gradient scatter: ids are the
// distinct tokens in ascending order, positions of ids[i] are pos[start[i] .. start[i+1]) in
// ascending order (so each embedding row sums its gradients in token order, as the CPU does).
inline void build_token_groups(const int32_t* tokens, int T, std::vector<int32_t>& ids, std::vector<int32_t>& start,
                               std::vector<int32_t>& pos) {
  int32_t maxId = 0;
  for (int t = 0; t < T; t++) maxId = tokens[t] > maxId ? tokens[t] : maxId;
  std::vector<int32_t> cnt((size_t)maxId + 2, 0);
  for (int t = 0; t < T; t++) cnt[(size_t)tokens[t] + 1]++;
  for (size_t v = 1; v < cnt.size(); v++) cnt[v] += cnt[v - 1];  // cnt[v] = first slot of id v
  pos.assign(T, 0); ids.clear(); start.clear();
  std::vector<int32_t> fill(cnt.begin(), cnt.end() - 1);
  for (int t = 0; t < T; t++) pos[fill[tokens[t]]++] = t;
  for (int32_t v = 0; v <= maxId; v++)
    if (cnt[(size_t)v + 1] > cnt[v]) { ids.push_back(v); start.push_back(cnt[v]); }
  start.push_back(T);
}
}  // namespace flame
