#include "data/indexed_dataset.h"
#include "common.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace flame {

static int itemsize_of(int code) {
  switch (code) { case 1: case 2: return 1; case 3: case 8: return 2; case 4: return 4; case 5: return 8; default: return 0; }
}

IndexedDataset::IndexedDataset(const std::string& p) : prefix(p) {
  std::string idxPath = p + ".idx", binPath = p + ".bin";
  auto bad = [&](const std::string& what) { fail(EXIT_DATA, "corrupt dataset index " + idxPath + ": " + what); };
  FILE* f = fopen(idxPath.c_str(), "rb");
  if (!f) fail(EXIT_DATA, "cannot open dataset index " + idxPath + ": " + strerror(errno));
  std::string idx; { char buf[1 << 16]; size_t n; while ((n = fread(buf, 1, sizeof buf, f)) > 0) idx.append(buf, n); fclose(f); }
  const size_t hdr = 9 + 8 + 1 + 8 + 8;
  if (idx.size() < hdr) bad("file too short (" + std::to_string(idx.size()) + " bytes)");
  if (memcmp(idx.data(), "MMIDIDX\0\0", 9) != 0) bad("bad magic (not a Megatron MMIDIDX file)");
  uint64_t version, S, D; uint8_t code;
  memcpy(&version, idx.data() + 9, 8); memcpy(&code, idx.data() + 17, 1);
  memcpy(&S, idx.data() + 18, 8); memcpy(&D, idx.data() + 26, 8);
  if (version != 1) bad("unsupported version " + std::to_string(version));
  dtype_ = code; itemsize_ = itemsize_of(code);
  if (!itemsize_) bad("unsupported token dtype code " + std::to_string(code) + " (need an integer dtype)");
  if (S > (uint64_t)1 << 40 || D > (uint64_t)1 << 40 || D < 1) bad("implausible counts (sequences " + std::to_string(S) + ", document index entries " + std::to_string(D) + ")");
  uint64_t expect = hdr + 4 * S + 8 * S + 8 * D;
  if (idx.size() != expect) bad("size " + std::to_string(idx.size()) + " bytes, expected " + std::to_string(expect) + " for " + std::to_string(S) + " sequences");
  lengths_.resize(S); pointers_.resize(S); docIdx_.resize(D);
  memcpy(lengths_.data(), idx.data() + hdr, 4 * S);
  memcpy(pointers_.data(), idx.data() + hdr + 4 * S, 8 * S);
  memcpy(docIdx_.data(), idx.data() + hdr + 12 * S, 8 * D);
  uint64_t pos = 0;
  for (size_t i = 0; i < S; i++) {
    if (lengths_[i] < 0) bad("negative length of sequence " + std::to_string(i));
    if ((uint64_t)pointers_[i] != pos) bad("pointer of sequence " + std::to_string(i) + " is " + std::to_string(pointers_[i]) + ", expected " + std::to_string(pos));
    pos += (uint64_t)lengths_[i] * itemsize_;
  }
  totalTokens_ = pos / itemsize_;
  if (docIdx_[0] != 0) bad("document indices must start with 0");
  for (size_t i = 1; i < D; i++) if (docIdx_[i] < docIdx_[i - 1]) bad("document indices decrease at entry " + std::to_string(i));
  if ((uint64_t)docIdx_[D - 1] != S) bad("last document index " + std::to_string(docIdx_[D - 1]) + " != sequence count " + std::to_string(S));

  int fd = open(binPath.c_str(), O_RDONLY);
  if (fd < 0) fail(EXIT_DATA, "cannot open dataset data " + binPath + ": " + strerror(errno));
  struct stat st; fstat(fd, &st);
  binSize_ = (size_t)st.st_size;
  if (binSize_ != pos) { close(fd); fail(EXIT_DATA, "corrupt dataset data " + binPath + ": size " + std::to_string(binSize_) + " bytes, index expects " + std::to_string(pos)); }
  if (binSize_ > 0) {
    void* m = mmap(nullptr, binSize_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) { close(fd); fail(EXIT_DATA, "cannot map " + binPath + ": " + strerror(errno)); }
    bin_ = (const uint8_t*)m;
  }
  close(fd);
}

IndexedDataset::~IndexedDataset() { if (bin_) munmap((void*)bin_, binSize_); }

void IndexedDataset::read(size_t seq, size_t offset, size_t n, int32_t* out) const {
  if (seq >= lengths_.size() || offset + n > (size_t)lengths_[seq]) fail(EXIT_DATA, "internal: read past sequence end in " + prefix);
  const uint8_t* p = bin_ + pointers_[seq] + offset * itemsize_;
  for (size_t i = 0; i < n; i++) {
    int64_t v;
    switch (dtype_) {
      case 1: v = p[i]; break;
      case 2: v = (int8_t)p[i]; break;
      case 3: { int16_t x; memcpy(&x, p + 2 * i, 2); v = x; break; }
      case 8: { uint16_t x; memcpy(&x, p + 2 * i, 2); v = x; break; }
      case 4: { int32_t x; memcpy(&x, p + 4 * i, 4); v = x; break; }
      default: { int64_t x; memcpy(&x, p + 8 * i, 8); v = x; break; }
    }
    if (v < 0 || v > INT32_MAX) fail(EXIT_DATA, "corrupt dataset data " + prefix + ".bin: token id " + std::to_string(v) + " out of range");
    out[i] = (int32_t)v;
  }
}

}  // namespace flame
