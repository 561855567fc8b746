// The fingerprint of fingerprint.h: a position-keyed sum of 64-bit words, split over threads.
#include "cpu/fingerprint/fingerprint.h"

#include <algorithm>
#include <cstring>

#include "cpu/common/parallel.h"

namespace dk::cpu {
namespace {

constexpr uint64_t kPosition = 0x9E3779B97F4A7C15ull;  // odd: i * kPosition differs for every i < 2^64
constexpr uint64_t kMix = 0xD6E8FEB86659FD93ull;       // odd: multiplication by it is a bijection

// Word i contributes ((w ^ i*kPosition) * kMix), a bijection of w for fixed i; the fingerprint
// is the sum mod 2^64 of all contributions, so changing one word always changes it, the words'
// positions matter, and the sum is the same however the words are split among threads.
inline uint64_t term(uint64_t w, uint64_t i) { return (w ^ (i * kPosition)) * kMix; }

uint64_t sum_words(const unsigned char* p, int64_t first, int64_t last) {
  uint64_t acc[4] = {0, 0, 0, 0};  // independent chains, so the multiplies overlap
  int64_t i = first;
  for (; i + 4 <= last; i += 4) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + 8 * (i + l), 8);
      acc[l] += term(w, static_cast<uint64_t>(i + l));
    }
  }
  for (; i < last; ++i) {
    uint64_t w;
    std::memcpy(&w, p + 8 * i, 8);
    acc[0] += term(w, static_cast<uint64_t>(i));
  }
  return acc[0] + acc[1] + acc[2] + acc[3];
}

}  // namespace

uint64_t fingerprint(const void* data, int64_t nbytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  const int64_t words = nbytes / 8;
  // Small buffers on the calling thread: a parallel region costs more than hashing 256 KiB.
  constexpr int64_t kWordsPerThreadMin = 32 * 1024;
  const int threads = static_cast<int>(std::clamp<int64_t>(words / kWordsPerThreadMin, 1, num_threads()));
  uint64_t total = 0;
  if (threads == 1) {
    total = sum_words(p, 0, words);
  } else {
#pragma omp parallel for num_threads(team(threads)) reduction(+ : total) schedule(static)
    for (int t = 0; t < threads; ++t) total += sum_words(p, words * t / threads, words * (t + 1) / threads);
  }
  const int64_t tail = nbytes - 8 * words;
  if (tail > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p + 8 * words, static_cast<size_t>(tail));
    total += term(w, static_cast<uint64_t>(words));
  }
  // Finalise with the length and an avalanche, so buffers of different sizes rarely agree.
  uint64_t h = total ^ (static_cast<uint64_t>(nbytes) * kPosition);
  h ^= h >> 33;
  h *= kMix;
  h ^= h >> 29;
  return h;
}

}  // namespace dk::cpu
