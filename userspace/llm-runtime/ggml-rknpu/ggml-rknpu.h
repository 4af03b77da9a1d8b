/* SPDX-License-Identifier: MIT */
/* ggml-rknpu: ggml backend for the RK3588 NPU (docs/ggml-rknpu.md). Loaded by ggml's registry from
 * GGML_BACKEND_PATH=/path/to/libggml-rknpu.so; these entry points are for programs that link it. */
#ifndef GGML_RKNPU_H
#define GGML_RKNPU_H

#include "ggml-backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The registry: one ACCEL device named RKNPU when libnpu opens a device (NPU_BACKEND=model selects the
 * software NPU model), none otherwise. */
GGML_BACKEND_API ggml_backend_reg_t ggml_backend_rknpu_reg(void);

#ifdef __cplusplus
}
#endif

#endif
