"""The kernel core cross-compiled for Cortex-M and run on QEMU (see README.md)."""
