// Damages a valid flexbuffer options blob many ways (byte changes,
// truncation) and reads each with ReadFlexOptions, in a heap block of
// exactly its length, so ASan / UBSan see any read past the end.
//   flexbuffer_map_fuzz OPTIONS_FILE ITERATIONS SEED
// Prints the undamaged map's entry count, then how many damaged blobs still
// read as a map. Run by tests/kernels/test_flexbuffer_map_fuzz.py.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "flexbuffer_map.h"

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  FILE* file = std::fopen(argv[1], "rb");
  if (file == nullptr) return 2;
  std::vector<uint8_t> good(1 << 16);
  good.resize(std::fread(good.data(), 1, good.size(), file));
  std::fclose(file);
  rnnpool::OptionValue values[64];
  const rnnpool::OpOptions read =
      rnnpool_litert::ReadFlexOptions(good.data(), good.size(), values, 64);
  if (read.status != rnnpool::OptionsStatus::kOk || read.count > 64) return 3;
  std::printf("entries %d\n", static_cast<int>(read.count));
  std::mt19937 random(static_cast<unsigned>(std::atoi(argv[3])));
  const long iterations = std::atol(argv[2]);
  long still_maps = 0;
  for (long i = 0; i < iterations; ++i) {
    std::vector<uint8_t> blob(good);
    for (int k = 1 + random() % 4; k > 0; --k) blob[random() % blob.size()] = random() % 256;
    if (random() % 3 == 0) blob.resize(random() % (blob.size() + 1));
    std::vector<uint8_t> exact(blob);  // capacity == size: ASan guards the end
    exact.shrink_to_fit();
    if (rnnpool_litert::ReadFlexOptions(exact.data(), exact.size(), values, 64).status ==
        rnnpool::OptionsStatus::kOk) {
      ++still_maps;
    }
  }
  std::printf("still maps %ld of %ld\n", still_maps, iterations);
  return 0;
}
