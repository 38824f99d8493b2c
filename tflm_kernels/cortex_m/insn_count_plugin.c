/* QEMU TCG plugin: counts the guest instructions executed between two
 * addresses (a call of the program's CountBegin marker and the next of its
 * CountEnd), summed over every such interval, and the whole run's total.
 *
 *   qemu-system-arm ... -plugin ./insn_count_plugin.so,begin=0x...,end=0x...
 *
 * Prints "instructions_between_markers N" and "instructions_total N" at exit
 * (QEMU's log, stderr). Executed instructions are not cycles: no pipeline,
 * wait state or multiply latency is modelled. Counting is per translation
 * block, so an exception in the middle of a block would count the whole block.
 *
 * Debian's QEMU loads plugins but ships no qemu-plugin.h: the declarations
 * below are those of the plugin C API, version 1 (QEMU 6.0 - 7.2), which is
 * versioned and stable; QEMU refuses a plugin built for another version. */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_outs(const char *string);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t total;  /* instructions so far (single vCPU boards) */
static uint64_t region_start, between;
static uint64_t begin_address = UINT64_MAX, end_address = UINT64_MAX;

static void on_begin(unsigned int vcpu, void *userdata) {
  (void)vcpu, (void)userdata;
  region_start = total;
}

static void on_end(unsigned int vcpu, void *userdata) {
  (void)vcpu, (void)userdata;
  between += total - region_start;
}

/* The marker callbacks are registered before the block's own count, so an
 * interval runs from the first instruction of CountBegin up to CountEnd. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  const uint64_t pc = qemu_plugin_tb_vaddr(tb);
  if (pc == begin_address) {
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
  } else if (pc == end_address) {
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
  }
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &total,
                                           qemu_plugin_tb_n_insns(tb));
}

static void report_counts(qemu_plugin_id_t id, void *userdata) {
  (void)id, (void)userdata;
  char line[128];
  snprintf(line, sizeof(line), "instructions_between_markers %" PRIu64 "\n", between);
  qemu_plugin_outs(line);
  snprintf(line, sizeof(line), "instructions_total %" PRIu64 "\n", total);
  qemu_plugin_outs(line);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv) {
  (void)info;
  for (int i = 0; i < argc; ++i) {
    /* Thumb addresses: the symbol's low bit (1) is not part of the PC. */
    if (strncmp(argv[i], "begin=", 6) == 0) {
      begin_address = strtoull(argv[i] + 6, NULL, 0) & ~(uint64_t)1;
    } else if (strncmp(argv[i], "end=", 4) == 0) {
      end_address = strtoull(argv[i] + 4, NULL, 0) & ~(uint64_t)1;
    } else {
      fprintf(stderr, "insn_count_plugin: unknown argument %s\n", argv[i]);
      return -1;
    }
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, report_counts, NULL);
  return 0;
}
