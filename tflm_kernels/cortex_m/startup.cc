// Bare-metal start for the emulated Cortex-M boards (cortex_m.ld): vector
// table, .data / .bss set-up, FPU enable, argv from the semihosting command
// line, and exit through semihosting (QEMU's exit status is the result).
#include <cstdint>
#include <cstring>

#include "semihosting.h"

extern "C" {
extern uint32_t __data_load, __data_start, __data_end, __bss_start__, __bss_end__;
extern uint32_t __stack_top;
extern void (*__preinit_array_start[])();
extern void (*__preinit_array_end[])();
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();
void initialise_monitor_handles();  // librdimon: stdio over semihosting
int main(int argc, char** argv);
void Reset_Handler();
void Fault_Handler();
}

namespace {

constexpr int kMaxArgs = 16;
char command_line[512];
char* arguments[kMaxArgs + 1];

// Splits the semihosting command line (program name first) on spaces.
int ReadArguments() {
  if (!cortex_m::CommandLine(command_line, sizeof(command_line))) return 0;
  int argc = 0;
  char* p = command_line;
  while (*p != '\0' && argc < kMaxArgs) {
    while (*p == ' ') *p++ = '\0';
    if (*p == '\0') break;
    arguments[argc++] = p;
    while (*p != '\0' && *p != ' ') ++p;
  }
  arguments[argc] = nullptr;
  return argc;
}

}  // namespace

extern "C" void Reset_Handler() {
  // Hard-float code needs CP10 / CP11 (the FPU, and on the M55 MVE) enabled
  // before the first floating-point instruction.
  volatile uint32_t* const cpacr = reinterpret_cast<volatile uint32_t*>(0xE000ED88u);
  *cpacr |= 0xFu << 20;
  __asm__ volatile("dsb\n\tisb" ::: "memory");
  std::memcpy(&__data_start, &__data_load,
              reinterpret_cast<char*>(&__data_end) - reinterpret_cast<char*>(&__data_start));
  std::memset(&__bss_start__, 0,
              reinterpret_cast<char*>(&__bss_end__) - reinterpret_cast<char*>(&__bss_start__));
  for (auto f = __preinit_array_start; f < __preinit_array_end; ++f) (*f)();
  for (auto f = __init_array_start; f < __init_array_end; ++f) (*f)();
  initialise_monitor_handles();
  const int argc = ReadArguments();
  cortex_m::Exit(main(argc, arguments));
}

extern "C" void Fault_Handler() {
  cortex_m::Write("fault: hard fault or unexpected exception\n");
  cortex_m::Exit(3);
}

// Initial stack pointer, reset, then every other exception a fault.
__attribute__((section(".vectors"), used)) void (*const kVectors[16])() = {
    reinterpret_cast<void (*)()>(&__stack_top), Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, nullptr, nullptr, nullptr, nullptr,
    Fault_Handler, Fault_Handler, nullptr, Fault_Handler, Fault_Handler};
