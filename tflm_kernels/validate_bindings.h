// Adds `validate_op` (rnnpool_validate.h) to the tflm_kernels._rnnpool_core module.
#ifndef TFLM_KERNELS_VALIDATE_BINDINGS_H_
#define TFLM_KERNELS_VALIDATE_BINDINGS_H_

#include <pybind11/pybind11.h>

void RegisterValidateOp(pybind11::module_& m);

#endif  // TFLM_KERNELS_VALIDATE_BINDINGS_H_
