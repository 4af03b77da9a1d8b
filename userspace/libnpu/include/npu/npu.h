/* SPDX-License-Identifier: MIT */
/*
 * libnpu: RK3588 NPU matrix multiply on the mainline rocket DRM-accel driver.
 *
 * A device is a set of lanes; a lane is one open file descriptor on /dev/accel/accelN (or one
 * context of the software model). The 7.2 driver schedules each fd as one entity whose jobs run
 * one at a time, and gives each fd its own 4 GiB NPU address space with private BOs, so using
 * the three cores means three lanes with their own buffers (see docs/npu-userspace.md).
 *
 * All functions return NPU_OK (0) or a negative npu_status; npu_error() then holds a message for
 * the calling thread naming what failed (with errno text for ioctl failures). Nothing aborts.
 * A device is used from one thread at a time (its lanes keep scratch buffers between calls).
 * Every entry point checks its arguments: NULL pointers, lanes, alignment (each array aligned to
 * its element type: 2 bytes for fp16, 4 for int32 and float) and ownership (a BO or a weight is
 * used only with the device that made it: on a board, its addresses mean nothing in another fd).
 */
#ifndef NPU_NPU_H
#define NPU_NPU_H

#include <stddef.h>
#include <stdint.h>

#include "npu/export.h"

#ifdef __cplusplus
extern "C" {
#endif

enum npu_status {
	NPU_OK = 0,
	NPU_ERR_INVALID = -1,   /* bad argument or impossible request */
	NPU_ERR_NOMEM = -2,     /* host allocation failed */
	NPU_ERR_IO = -3,        /* an ioctl/open/mmap failed (errno in the message) */
	NPU_ERR_NO_DEVICE = -4, /* no device, or not a rocket device */
	NPU_ERR_TIMEOUT = -5,   /* waiting for a job passed its deadline */
	NPU_ERR_JOB_LOST = -6,  /* the job's completion canary is wrong: rejected or reset job */
	NPU_ERR_REFUSED = -7,   /* the software model refused a register or mode it does not model */
	NPU_ERR_LIMIT = -8,     /* request exceeds an address-space or hardware limit */
};

enum npu_precision {
	NPU_INT8 = 0, /* int8 x int8 -> int32 */
	NPU_FP16 = 1, /* fp16 x fp16 -> fp32 */
};

/* "int8" / "fp16", and the bytes of one input element (1 / 2); NULL and 0 for an unknown value. */
NPU_API const char *npu_precision_name(enum npu_precision precision);
NPU_API size_t npu_precision_element_bytes(enum npu_precision precision);

enum npu_backend {
	NPU_BACKEND_ROCKET = 0, /* /dev/accel/accelN driven by the rocket driver */
	NPU_BACKEND_MODEL = 1,  /* the software NPU model (interprets the same register commands) */
};

/* Environment variable naming the backend when npu_open() gets no explicit one: "rocket" or "model". */
#define NPU_BACKEND_ENV "NPU_BACKEND"

#define NPU_MAX_LANES 3

struct npu_open_options {
	int backend_from_env;     /* nonzero: read NPU_BACKEND (unset means rocket); else use .backend */
	enum npu_backend backend;
	const char *device_path;  /* rocket: accel node; NULL = first /dev/accel/accel* naming rocket */
	unsigned lanes;           /* 0 = one per NPU core (rocket: cores bound to the driver; model: 3) */
};

struct npu_dev_info {
	const char *backend;      /* "rocket" or "model" */
	char device_path[64];
	char driver_name[32];     /* DRM_IOCTL_VERSION name ("rocket") */
	char driver_version[32];  /* "major.minor.patch" */
	char driver_desc[64];
	unsigned lanes;
	unsigned cores;           /* NPU cores found (sysfs for rocket) */
};

struct npu_dev;

/* Message of the last failure in this thread ("" if none). */
NPU_API const char *npu_error(void);
NPU_API const char *npu_status_name(int status);

NPU_API int npu_open(struct npu_dev **dev, const struct npu_open_options *options);
NPU_API void npu_close(struct npu_dev *dev);
NPU_API int npu_get_info(const struct npu_dev *dev, struct npu_dev_info *info);

/* ---- Buffer objects (per lane) ---- */
struct npu_bo {
	uint32_t handle;
	uint32_t size;
	uint64_t dma_address; /* NPU address in this lane's window; 0 is a valid address */
	uint64_t mmap_offset;
	void *map;
	unsigned lane;
	const struct npu_dev *dev; /* the device that made it */
};

NPU_API int npu_bo_create(struct npu_dev *dev, unsigned lane, size_t size, struct npu_bo *bo);
NPU_API void npu_bo_destroy(struct npu_dev *dev, struct npu_bo *bo);
/* Wait for NPU writers and make the BO coherent for the CPU; timeout_ns is relative (the library
 * converts it to the absolute CLOCK_MONOTONIC deadline the driver expects). */
NPU_API int npu_bo_cpu_begin(struct npu_dev *dev, const struct npu_bo *bo, int64_t timeout_ns);
/* Hand the BO back to the NPU after CPU writes (cache clean). */
NPU_API int npu_bo_cpu_end(struct npu_dev *dev, const struct npu_bo *bo);

/* One task: a register-command buffer (NPU address, number of 64-bit words incl. the tail). */
struct npu_task {
	uint32_t regcmd;
	uint32_t regcmd_count;
};

/* Submit one job (tasks run in order on one core). SUBMIT returning 0 does not mean the job ran:
 * the driver ignores per-job errors, so callers check output canaries (npu_gemm does). */
NPU_API int npu_submit(struct npu_dev *dev, unsigned lane, const struct npu_task *tasks, unsigned task_count,
		       const struct npu_bo *const *in_bos, unsigned in_count,
		       const struct npu_bo *const *out_bos, unsigned out_count);

/* ---- GEMM: C[M,N] = A[M,K] x B[K,N] ---- */

enum npu_placement {
	NPU_PLACE_SPLIT_N = 0, /* N tiles dealt round-robin over all lanes: one copy of the weights in
				  total, every GEMM uses every core, A is copied to each lane */
	NPU_PLACE_LANE = 1,    /* whole matrix in one lane (npu-probe uses it to test each core) */
};

struct npu_weight_options {
	enum npu_placement placement;
	unsigned lane;    /* for NPU_PLACE_LANE */
	unsigned k_group; /* INT8 only, 0 = off: quantization groups of k_group channels along K (a multiple of
			     32, <= 4096), each with its own weight and activation scales (group-wise INT8) */
};

struct npu_weight;

/* Convert B once into the NPU weight layout and place it. b_nk is B transposed, row-major [N][K]
 * (ggml's layout of a weight matrix: one row of K per output): int8_t for NPU_INT8, IEEE fp16 bits
 * (uint16_t) for NPU_FP16. options may be NULL (split over all lanes). */
NPU_API int npu_weight_prepare(struct npu_dev *dev, enum npu_precision precision, unsigned n, unsigned k,
			       const void *b_nk, const struct npu_weight_options *options, struct npu_weight **weight);
NPU_API void npu_weight_free(struct npu_dev *dev, struct npu_weight *weight);
/* NPU memory the weight occupies in one lane (BO bytes), and in total over lanes (0 for NULL). */
NPU_API size_t npu_weight_lane_bytes(const struct npu_weight *weight, unsigned lane);
NPU_API size_t npu_weight_total_bytes(const struct npu_weight *weight);

struct npu_gemm_stats {
	unsigned waves;      /* row ranges run one after another (npu_set_wave_rows) */
	unsigned jobs;       /* one per wave and lane used */
	unsigned tasks;      /* register-command tasks incl. one canary task per job */
	double seconds;      /* wall time of the call */
	double device_seconds; /* of which inside SUBMIT and waiting for the jobs; the rest is the CPU's share
				  (conversions, register commands, gathering); the software model runs in SUBMIT */
	double exposed_seconds; /* of the wall time, the part with no wave in flight (submitted, not yet waited
				   for): CPU work the NPU's jobs cannot hide, such as the first wave's conversion
				   and the last one's gather. A job that ends before the CPU waits for it counts as
				   in flight until then: with an NPU faster than the CPU's work, more is exposed */
	int lane_status[NPU_MAX_LANES]; /* per lane: NPU_OK, or why its job failed (others still checked) */
};

/* C = A x B. a_mk row-major [M][K] (int8_t / fp16 bits), c_mn row-major [M][N] (int32_t / float).
 * stats may be NULL. */
NPU_API int npu_gemm(struct npu_dev *dev, const struct npu_weight *weight, unsigned m, const void *a_mk,
		     void *c_mn, struct npu_gemm_stats *stats);

/* Scales of an INT8 weight, copied: [n][groups] floats, groups = npu_weight_k_groups() (1 without
 * k_group: one scale per output channel). npu_gemm_f32 multiplies each group's int32 sum by
 * row_scale[m][group] * column_scale[n][group]. Without them the column scales are 1. */
NPU_API int npu_weight_set_column_scales(struct npu_weight *weight, const float *column_scales);
/* Quantization groups along K: ceil(K / k_group) with k_group, else 1 (0 for NULL). */
NPU_API unsigned npu_weight_k_groups(const struct npu_weight *weight);

/* C = A x B from f32 activations, f32 result: INT8 weights quantize A per row, or per row and K group
 * (npu_quantize_rows_i8 on each group), and dequantize the exact int32 sums as
 * sum over groups of (float)acc * row_scale * column_scale; FP16 weights convert A to fp16 (round to
 * nearest even) and return the fp32 sums. NaN and infinities propagate as on the CPU: an INT8 row
 * (or row group) holding one gets a NaN scale, so its outputs are NaN; FP16 carries them through. */
NPU_API int npu_gemm_f32(struct npu_dev *dev, const struct npu_weight *weight, unsigned m, const float *a_mk, float *c_mn,
			 struct npu_gemm_stats *stats);
/* CPU threads npu_gemm_f32 converts A with (1 after npu_open; more than 16 count as 16): the caller's own
 * thread count, as a ggml backend is given llama.cpp's. */
NPU_API int npu_set_threads(struct npu_dev *dev, unsigned threads);
/* Rows per wave of a GEMM call (128 after npu_open): the CPU converts one wave and gathers another while
 * the NPU runs a third. Rounded down to whole M tiles of the call, so the NPU runs the same tasks as in
 * one wave; a tile longer than the wave is cut to it (its weights then load once per wave). Fewer rows
 * hide more of the CPU's work and make more jobs (each a SUBMIT and a canary task). */
NPU_API int npu_set_wave_rows(struct npu_dev *dev, unsigned rows);

/* ---- Software model controls (NPU_BACKEND_MODEL only) ---- */
enum npu_model_fault {
	NPU_FAULT_NONE = 0,
	NPU_FAULT_REJECT = 1,  /* the next job on the lane is dropped; SUBMIT still returns 0 */
	NPU_FAULT_TIMEOUT = 2, /* the next job stops half way and leaves garbage, as after a reset */
};
NPU_API int npu_model_inject_fault(struct npu_dev *dev, unsigned lane, enum npu_model_fault fault);

/* ---- Conversions used around the GEMM (NEON on aarch64, portable C elsewhere) ---- */
NPU_API uint16_t npu_fp16_from_f32(float value);
NPU_API float npu_f32_from_fp16(uint16_t bits);
NPU_API void npu_f32_to_fp16_array(uint16_t *dst, const float *src, size_t count);
/* Symmetric per-row int8 quantization: q = round_half_even(x * 127 / absmax(row)), scale =
 * absmax / 127 (0 for an all-zero row; NaN, with q = 0, for a row holding a NaN or an infinity). */
NPU_API void npu_quantize_rows_i8(int8_t *q, float *scales, const float *x, unsigned rows, unsigned cols);
/* The same per group of `group` channels along each row (the last group may be shorter; group >= cols is one
 * group): the scale of row r, group g goes to scales[r * row_stride + g * group_stride], so a caller keeps
 * them per row ([rows][groups]: row_stride = groups, group_stride = 1) or per group. */
NPU_API void npu_quantize_groups_i8(int8_t *q, float *scales, size_t row_stride, size_t group_stride, const float *x,
				    unsigned rows, unsigned cols, unsigned group);

#ifdef __cplusplus
}
#endif

#endif
