/* SPDX-License-Identifier: MIT */
#ifndef NPU_INTERNAL_H
#define NPU_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "npu/jobs.h"
#include "npu/layout.h"
#include "npu/npu.h"

/* Records the message for npu_error() and returns status, so call sites read
 * `return npu_fail(NPU_ERR_INVALID, "...", ...);`. */
int npu_fail(int status, const char *format, ...) __attribute__((format(printf, 2, 3)));

static inline unsigned npu_align_up(unsigned value, unsigned alignment)
{
	return (value + alignment - 1) / alignment * alignment;
}

static inline unsigned npu_div_up(unsigned value, unsigned divisor)
{
	return (value + divisor - 1) / divisor;
}

/* Backend operations behind struct npu_dev (rocket ioctls or the software model). */
struct npu_backend_ops {
	int (*bo_create)(struct npu_dev *dev, unsigned lane, size_t size, struct npu_bo *bo);
	void (*bo_destroy)(struct npu_dev *dev, struct npu_bo *bo);
	int (*bo_cpu_begin)(struct npu_dev *dev, const struct npu_bo *bo, int64_t deadline_ns);
	int (*bo_cpu_end)(struct npu_dev *dev, const struct npu_bo *bo);
	int (*submit)(struct npu_dev *dev, unsigned lane, const struct npu_task *tasks, unsigned task_count,
		      const struct npu_bo *const *in_bos, unsigned in_count,
		      const struct npu_bo *const *out_bos, unsigned out_count);
	void (*close)(struct npu_dev *dev);
};

/* Waves of one call a lane holds buffers for: one the NPU runs, one queued behind it, one the CPU
 * prepares or gathers (gemm.c). */
#define NPU_JOB_SLOTS 3u
#define NPU_DEFAULT_WAVE_ROWS 128u

/* The buffers of one job. */
struct npu_job_buffers {
	struct npu_bo feature;      /* A in NC1HWC2 */
	struct npu_bo output;       /* partial outputs + canary output */
	struct npu_bo regcmd;       /* register commands of all tasks */
	struct npu_bo canary_input; /* canary task: A (4x32 int8) and B (32x32 identity) */
	int has_feature, has_output, has_regcmd, has_canary;
};

struct npu_lane_scratch {
	struct npu_job_buffers slots[NPU_JOB_SLOTS];
	uint32_t sequence;          /* job counter: the canary value of the next job */
};

/* An f32 activation matrix [rows][cols] and the feature map it becomes (npu_layout.h's NC1HWC2):
 * fp16, or int8 quantized in K groups of `group` channels with scales [groups][rows]. */
struct npu_f32_feature {
	enum npu_precision precision;
	const float *a;
	unsigned rows, cols, rows_padded, cols_padded;
	unsigned group;
	float *scales;
	uint8_t *dst;
};

/* Converts f->a into f->dst with up to `threads` threads. */
int npu_feature_from_f32(const struct npu_f32_feature *f, unsigned threads);

/* What every back end shares; its own state (fds, the model's address spaces) stays behind `backend`,
 * which only its ops read. */
struct npu_dev {
	const struct npu_backend_ops *ops;
	void *backend;
	struct npu_dev_info info;
	struct npu_lane_scratch scratch[NPU_MAX_LANES];
	unsigned threads;           /* CPU threads for the conversions of npu_gemm_f32 (npu_set_threads) */
	unsigned wave_rows;         /* rows per wave of a GEMM call (npu_set_wave_rows) */
};

int npu_rocket_open(struct npu_dev *dev, const struct npu_open_options *options);
#ifdef NPU_HAVE_MODEL
int npu_model_open(struct npu_dev *dev, unsigned lanes);
#else
static inline int npu_model_open(struct npu_dev *dev, unsigned lanes)
{
	(void)dev, (void)lanes;
	return npu_fail(NPU_ERR_NO_DEVICE, "libnpu was built without the software model (NPU_MODEL=OFF)");
}
#endif

/* Monotonic clock in ns (the clock the driver's PREP_BO deadline uses). */
int64_t npu_monotonic_ns(void);

#endif
