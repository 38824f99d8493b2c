// The few Arm semihosting calls the emulated-board programs make directly
// (stdio goes through newlib's librdimon, which uses semihosting too).
#ifndef TFLM_KERNELS_CORTEX_M_SEMIHOSTING_H_
#define TFLM_KERNELS_CORTEX_M_SEMIHOSTING_H_

#include <cstddef>
#include <cstdint>

namespace cortex_m {

// One semihosting call: operation number, pointer to its argument block.
inline int32_t Semihost(int32_t operation, const void* argument) {
  register int32_t r0 __asm__("r0") = operation;
  register const void* r1 __asm__("r1") = argument;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

// Writes a NUL-terminated string to the host's console (SYS_WRITE0).
inline void Write(const char* text) { Semihost(0x04, text); }

// Copies the command line (program name and arguments) into buffer; false on
// failure (SYS_GET_CMDLINE).
inline bool CommandLine(char* buffer, size_t size) {
  struct {
    char* buffer;
    size_t size;
  } block = {buffer, size - 1};
  if (Semihost(0x15, &block) != 0) return false;
  buffer[block.size] = '\0';
  return true;
}

// Ends the emulation: QEMU exits with status 0 for code 0, 1 otherwise
// (SYS_EXIT: ApplicationExit, or RunTimeErrorUnknown).
[[noreturn]] inline void Exit(int code) {
  for (;;) {
    Semihost(0x18, reinterpret_cast<const void*>(code == 0 ? 0x20026u : 0x20023u));
  }
}

}  // namespace cortex_m

#endif  // TFLM_KERNELS_CORTEX_M_SEMIHOSTING_H_
