/* SPDX-License-Identifier: MIT */
/*
 * Prepared weights and the GEMM call: weight tiles placed once per lane, activations converted per
 * call, in waves of rows with one job per lane each (tasks in order, then a completion-canary task),
 * outputs gathered back.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npu_internal.h"
#include "npu_parallel.h"
#include "npu_precision.h"

#define JOB_WAIT_NS INT64_C(5000000000) /* the driver resets a job after 500 ms; this only bounds a stuck wait */
#define CANARY_ROWS 4u
#define CANARY_CHANNELS 32u
#define CANARY_FEATURE_BYTES (2u * CANARY_ROWS * NPU_ATOM_BYTES)       /* 32 int8 channels = 2 surfaces */
#define CANARY_INPUT_BYTES (CANARY_FEATURE_BYTES + CANARY_CHANNELS * CANARY_CHANNELS)
#define CANARY_OUTPUT_BYTES (CANARY_CHANNELS / 4 * CANARY_ROWS * NPU_ATOM_BYTES)
#define CANARY_POISON 0x7fu /* int32 0x7f7f7f7f: no int8 x identity product can produce it */

struct weight_lane {
	struct npu_bo bo;
	int placed;
	size_t bytes;
};

struct npu_weight {
	struct npu_dev *dev;       /* the device whose lanes hold the tiles */
	struct npu_weight_plan plan;
	struct weight_lane lanes[NPU_MAX_LANES];
	unsigned *tile_lane;       /* [n_tiles] */
	unsigned *tile_channel;    /* [n_tiles]: first output channel of the tile inside its lane */
	uint32_t *tile_offset;     /* [n_tiles * k_tiles]: byte offset of the tile in its lane's BO */
	unsigned lane_channels[NPU_MAX_LANES];
	float *column_scales;      /* [groups][n] (transposed from the caller's [n][groups]) or NULL (1.0) */
};

static size_t align64(size_t value)
{
	return (value + 63) & ~(size_t)63;
}

static int check_aligned(const void *pointer, size_t alignment, const char *what)
{
	if ((uintptr_t)pointer % alignment)
		return npu_fail(NPU_ERR_INVALID, "%s at %p is not %zu-byte aligned, as its element type needs", what,
				pointer, alignment);
	return NPU_OK;
}

/* An array of type `type` whose elements take `bytes` bytes (1: any address will do). */
static int check_elements(const void *pointer, unsigned bytes, const char *type, const char *what)
{
	char name[64];
	snprintf(name, sizeof name, "%s %s", type, what);
	return bytes > 1 ? check_aligned(pointer, bytes, name) : NPU_OK;
}

/* The weight exists and was prepared on this device: another device's BO handles and NPU addresses
 * name other memory (on a board, another fd's). */
static int check_weight(const struct npu_dev *dev, const struct npu_weight *w, const char *caller)
{
	if (!dev || !w)
		return npu_fail(NPU_ERR_INVALID, "%s: NULL device or weight", caller);
	if (w->dev != dev)
		return npu_fail(NPU_ERR_INVALID, "%s: the weight was prepared on another device (%p, not %p)", caller,
				(const void *)w->dev, (const void *)dev);
	return NPU_OK;
}

static int check_weight_options(const struct npu_dev *dev, const struct npu_precision_info *info,
				const struct npu_weight_options *options)
{
	if (options->k_group && (!info || !info->scaled))
		return npu_fail(NPU_ERR_INVALID, "K groups (k_group %u) apply to INT8 weights only", options->k_group);
	if (options->placement == NPU_PLACE_LANE && options->lane >= dev->info.lanes)
		return npu_fail(NPU_ERR_INVALID, "weight placement on lane %u: the device has %u lanes", options->lane,
				dev->info.lanes);
	if (options->placement != NPU_PLACE_LANE && options->placement != NPU_PLACE_SPLIT_N)
		return npu_fail(NPU_ERR_INVALID, "weight placement %d unknown", (int)options->placement);
	return NPU_OK;
}

/* Lays the tiles out lane by lane: tile j of N goes to lane j % lanes (split) or to one lane; each lane's
 * tiles are contiguous in its BO, so its output channels are too. */
static int assign_tiles(struct npu_weight *w, const struct npu_weight_options *options, unsigned lanes)
{
	const struct npu_weight_plan *p = &w->plan;
	w->tile_lane = calloc(p->n_tiles, sizeof *w->tile_lane);
	w->tile_channel = calloc(p->n_tiles, sizeof *w->tile_channel);
	w->tile_offset = calloc((size_t)p->n_tiles * p->k_tiles, sizeof *w->tile_offset);
	if (!w->tile_lane || !w->tile_channel || !w->tile_offset)
		return npu_fail(NPU_ERR_NOMEM, "out of memory");
	for (unsigned j = 0; j < p->n_tiles; j++) {
		unsigned lane = options->placement == NPU_PLACE_LANE ? options->lane : j % lanes;
		unsigned nt = npu_plan_n_tile(p, j, NULL);
		w->tile_lane[j] = lane;
		w->tile_channel[j] = w->lane_channels[lane];
		w->lane_channels[lane] += nt;
		for (unsigned i = 0; i < p->k_tiles; i++) {
			unsigned kt = npu_plan_k_tile(p, i, NULL);
			w->tile_offset[(size_t)j * p->k_tiles + i] = (uint32_t)w->lanes[lane].bytes;
			w->lanes[lane].bytes += align64(npu_weight_tile_bytes(p, nt, kt));
		}
	}
	return NPU_OK;
}

/* One lane's BO, its tiles converted into it, handed to the NPU. */
static int place_lane(struct npu_dev *dev, struct npu_weight *w, unsigned lane, const void *b_nk)
{
	const struct npu_weight_plan *p = &w->plan;
	struct weight_lane *wl = &w->lanes[lane];
	int status = npu_bo_create(dev, lane, wl->bytes, &wl->bo);
	if (status)
		return status;
	wl->placed = 1;
	for (unsigned j = 0; j < p->n_tiles; j++) {
		if (w->tile_lane[j] != lane)
			continue;
		unsigned n0, nt = npu_plan_n_tile(p, j, &n0);
		for (unsigned i = 0; i < p->k_tiles; i++) {
			unsigned k0, kt = npu_plan_k_tile(p, i, &k0);
			uint8_t *tile = (uint8_t *)wl->bo.map + w->tile_offset[(size_t)j * p->k_tiles + i];
			if (p->precision == NPU_INT8)
				npu_weight_tile_from_rows_i8((int8_t *)tile, b_nk, p->k, p->n, p->k, n0, nt, k0, kt);
			else
				npu_weight_tile_from_rows_f16((uint16_t *)(void *)tile, b_nk, p->k, p->n, p->k, n0, nt, k0,
							      kt);
		}
	}
	return npu_bo_cpu_end(dev, &wl->bo);
}

int npu_weight_prepare(struct npu_dev *dev, enum npu_precision precision, unsigned n, unsigned k,
		       const void *b_nk, const struct npu_weight_options *options, struct npu_weight **out)
{
	if (!dev || !b_nk || !out)
		return npu_fail(NPU_ERR_INVALID, "npu_weight_prepare: NULL argument");
	*out = NULL;
	const struct npu_precision_info *info = npu_precision_info(precision);
	if (info && check_elements(b_nk, info->in_bytes, info->name, "weight matrix b_nk"))
		return NPU_ERR_INVALID;
	struct npu_weight_options defaults = {NPU_PLACE_SPLIT_N, 0, 0};
	if (!options)
		options = &defaults;
	int status = check_weight_options(dev, info, options);
	if (status)
		return status;
	struct npu_weight *w = calloc(1, sizeof *w);
	if (!w)
		return npu_fail(NPU_ERR_NOMEM, "out of memory");
	w->dev = dev;
	unsigned min_tiles = options->placement == NPU_PLACE_SPLIT_N ? dev->info.lanes : 1;
	status = npu_plan_weights_grouped(precision, n, k, options->k_group, min_tiles, &w->plan);
	if (status)
		goto fail_plan;
	status = assign_tiles(w, options, dev->info.lanes);
	for (unsigned lane = 0; lane < dev->info.lanes && !status; lane++)
		if (w->lanes[lane].bytes)
			status = place_lane(dev, w, lane, b_nk);
	if (status)
		goto fail_placed;
	*out = w;
	return NPU_OK;

fail_placed:
	npu_weight_free(dev, w);
	return status;
fail_plan:
	free(w);
	return status;
}

/* The tiles go back to the device that holds them, whichever device the caller names. */
void npu_weight_free(struct npu_dev *dev, struct npu_weight *w)
{
	(void)dev;
	if (!w)
		return;
	for (unsigned lane = 0; lane < NPU_MAX_LANES; lane++)
		if (w->lanes[lane].placed)
			npu_bo_destroy(w->dev, &w->lanes[lane].bo);
	free(w->tile_lane);
	free(w->tile_channel);
	free(w->tile_offset);
	free(w->column_scales);
	free(w);
}

int npu_weight_set_column_scales(struct npu_weight *w, const float *column_scales)
{
	if (!w || !column_scales)
		return npu_fail(NPU_ERR_INVALID, "npu_weight_set_column_scales: NULL argument");
	if (!npu_precision_info(w->plan.precision)->scaled)
		return npu_fail(NPU_ERR_INVALID, "column scales apply to INT8 weights only");
	unsigned groups = npu_weight_k_groups(w), n = w->plan.n;
	float *copy = malloc((size_t)n * groups * sizeof *copy);
	if (!copy)
		return npu_fail(NPU_ERR_NOMEM, "out of memory");
	for (unsigned j = 0; j < n; j++)
		for (unsigned g = 0; g < groups; g++)
			copy[(size_t)g * n + j] = column_scales[(size_t)j * groups + g];
	free(w->column_scales);
	w->column_scales = copy;
	return NPU_OK;
}

unsigned npu_weight_k_groups(const struct npu_weight *w)
{
	if (!w)
		return 0;
	return w->plan.k_grouped ? w->plan.k_tiles : 1;
}

size_t npu_weight_lane_bytes(const struct npu_weight *w, unsigned lane)
{
	return w && lane < NPU_MAX_LANES ? w->lanes[lane].bytes : 0;
}

size_t npu_weight_total_bytes(const struct npu_weight *w)
{
	size_t total = 0;
	for (unsigned lane = 0; w && lane < NPU_MAX_LANES; lane++)
		total += w->lanes[lane].bytes;
	return total;
}

/* Grows a scratch BO to at least size bytes (contents are not kept). */
static int ensure_bo(struct npu_dev *dev, unsigned lane, struct npu_bo *bo, int *has, size_t size)
{
	if (*has && bo->size >= size)
		return NPU_OK;
	if (*has)
		npu_bo_destroy(dev, bo);
	*has = 0;
	int status = npu_bo_create(dev, lane, size, bo);
	if (!status)
		*has = 1;
	return status;
}

static int8_t canary_value(uint32_t sequence, unsigned m, unsigned k)
{
	if (m == 0 && k < 4) /* the sequence number itself, so a stale canary never matches */
		return (int8_t)(uint8_t)(sequence >> (8 * k));
	return (int8_t)(uint8_t)(sequence * 13u + m * 37u + k * 11u);
}

/* Canary task input: A = canary values (4 x 32), B = identity, so C = A. */
static void write_canary_input(uint8_t *map, uint32_t sequence)
{
	int8_t a[CANARY_ROWS * CANARY_CHANNELS], b[CANARY_CHANNELS * CANARY_CHANNELS];
	for (unsigned m = 0; m < CANARY_ROWS; m++)
		for (unsigned k = 0; k < CANARY_CHANNELS; k++)
			a[m * CANARY_CHANNELS + k] = canary_value(sequence, m, k);
	memset(b, 0, sizeof b);
	for (unsigned i = 0; i < CANARY_CHANNELS; i++)
		b[i * CANARY_CHANNELS + i] = 1;
	npu_layout_ops_portable()->feature_from_rows_i8(map, a, CANARY_ROWS, CANARY_CHANNELS, CANARY_CHANNELS,
							CANARY_ROWS, CANARY_CHANNELS);
	npu_weight_tile_from_rows_i8((int8_t *)(map + CANARY_FEATURE_BYTES), b, CANARY_CHANNELS, CANARY_CHANNELS,
				     CANARY_CHANNELS, 0, CANARY_CHANNELS, 0, CANARY_CHANNELS);
}

static int check_canary(const uint8_t *output, uint32_t sequence, unsigned lane)
{
	for (unsigned m = 0; m < CANARY_ROWS; m++)
		for (unsigned n = 0; n < CANARY_CHANNELS; n++) {
			int32_t value;
			memcpy(&value, output + npu_output_offset(m, n, CANARY_ROWS), sizeof value);
			if (value != canary_value(sequence, m, n))
				return npu_fail(NPU_ERR_JOB_LOST, "lane %u: the job's completion canary reads 0x%08x at "
						"(%u, %u), expected %d: the driver rejected the job or reset it after "
						"its timeout; results discarded", lane, (uint32_t)value, m, n,
						canary_value(sequence, m, n));
		}
	return NPU_OK;
}

/*
 * A call runs in waves of rows, each a GEMM of its own on every lane: while the NPU has one wave, the CPU
 * converts the next and gathers the one before, and each lane keeps NPU_JOB_SLOTS waves' buffers so its
 * next job is queued when it finishes the current one. Only the first wave's conversion and the last
 * one's gather are left where no job is in flight.
 */
struct lane_job {
	unsigned tasks;
	size_t partial_bytes;  /* one K-tile's output for this lane's channels */
	size_t canary_offset;  /* canary output inside the output BO */
	uint32_t sequence;
	int used;              /* submitted: it must be waited for, whatever else fails */
};

/* Writes the lane's columns of C: int32 or fp32 sums, or (scaled) f32 = sum over K groups of
 * (float)acc * row * column (one group unless the weight is grouped). */
struct gather_target {
	void *c;                   /* int32_t / float [M][N] */
	const float *row_scales;   /* non-NULL: INT8 output dequantized into float c; [groups][M] */
	const float *column_scales; /* [groups][N] */
};

/* The activations as the caller gave them: rows already in the weight's precision (npu_gemm) or f32 to
 * convert (npu_gemm_f32; INT8 row scales are written per wave at row_scales + m0 x groups, [groups][rows]). */
struct call_input {
	const void *a;
	unsigned element_bytes;
	float *row_scales;
};

struct wave {
	unsigned m0;                  /* its first row */
	struct npu_row_plan rows;
	struct lane_job jobs[NPU_MAX_LANES];
	float *row_scales;            /* its rows' INT8 scales, [groups][rows], which the conversion writes */
	struct gather_target target;  /* its rows of C (and of the scales when the gather dequantizes) */
	int64_t submitted_ns, waited_ns; /* its jobs are in flight in between: CPU work then is hidden */
};

struct gemm_call {
	struct npu_dev *dev;
	const struct npu_weight *w;
	struct call_input input;
	struct gather_target target;
	unsigned m, wave_rows, waves;
	struct wave *wave;             /* [waves] */
	unsigned jobs, tasks;
	int64_t device_ns;             /* inside SUBMIT and waiting */
	int lane_status[NPU_MAX_LANES];
	int status;                    /* the first failure; its message below */
	int stopped;                   /* a wave could not be started: start no more */
	char message[512];
};

static void record_failure(struct gemm_call *call, unsigned lane, int status)
{
	if (!call->status) {
		call->status = status;
		snprintf(call->message, sizeof call->message, "%s", npu_error());
	}
	if (!call->lane_status[lane])
		call->lane_status[lane] = status;
}

/* The lane's scratch BOs of this slot, grown to the wave's sizes. */
static int lane_job_buffers(struct npu_dev *dev, const struct npu_weight *w, const struct npu_row_plan *rows,
			    unsigned lane, struct npu_job_buffers *b, struct lane_job *job)
{
	const struct npu_weight_plan *p = &w->plan;
	unsigned tiles = 0;
	for (unsigned j = 0; j < p->n_tiles; j++)
		tiles += w->tile_lane[j] == lane;
	job->tasks = tiles * p->k_tiles * rows->m_tiles + 1;
	job->partial_bytes = align64(npu_output_bytes(rows->mp, w->lane_channels[lane]));
	job->canary_offset = job->partial_bytes * p->k_tiles;
	size_t regcmd_bytes = (size_t)job->tasks * NPU_TASK_WORDS * 8;
	int status;
	if ((status = ensure_bo(dev, lane, &b->feature, &b->has_feature, npu_feature_bytes(p, rows))) ||
	    (status = ensure_bo(dev, lane, &b->output, &b->has_output, job->canary_offset + CANARY_OUTPUT_BYTES)) ||
	    (status = ensure_bo(dev, lane, &b->regcmd, &b->has_regcmd, regcmd_bytes)) ||
	    (status = ensure_bo(dev, lane, &b->canary_input, &b->has_canary, CANARY_INPUT_BYTES)))
		return status;
	return NPU_OK;
}

/* One task per (N tile of this lane, K tile, M tile); each K tile writes its own partial output. */
static int lane_job_commands(const struct npu_weight *w, const struct npu_row_plan *rows, unsigned lane,
			     const struct npu_job_buffers *b, const struct lane_job *job)
{
	const struct npu_weight_plan *p = &w->plan;
	uint64_t *words = b->regcmd.map;
	const struct npu_bo *wbo = &w->lanes[lane].bo;
	unsigned task = 0;
	int status;
	for (unsigned j = 0; j < p->n_tiles; j++) {
		if (w->tile_lane[j] != lane)
			continue;
		unsigned nt = npu_plan_n_tile(p, j, NULL);
		for (unsigned i = 0; i < p->k_tiles; i++) {
			unsigned k0, kt = npu_plan_k_tile(p, i, &k0);
			for (unsigned r = 0; r < rows->m_tiles; r++) {
				unsigned m0, mt = npu_plan_m_tile(rows, r, &m0);
				struct npu_task_geometry g = {
					.precision = p->precision, .mt = mt, .nt = nt, .kt = kt,
					.feature_rows = rows->mp, .output_rows = rows->mp,
					.feature_address = (uint32_t)(b->feature.dma_address +
								      ((size_t)(k0 / p->feature_c2) * rows->mp + m0) * 16),
					.weight_address = (uint32_t)(wbo->dma_address +
								     w->tile_offset[(size_t)j * p->k_tiles + i]),
					.output_address = (uint32_t)(b->output.dma_address + i * job->partial_bytes +
								     ((size_t)(w->tile_channel[j] / 4) * rows->mp + m0) * 16),
				};
				if ((status = npu_emit_gemm_task(&g, words + (size_t)task * NPU_TASK_WORDS)))
					return status;
				task++;
			}
		}
	}
	return NPU_OK;
}

/* The job's last task copies this job's sequence number to poisoned output: only a job that ran to its
 * end leaves it there (the driver's SUBMIT says nothing about a rejected or reset job). */
static int lane_job_canary(struct npu_lane_scratch *s, const struct npu_job_buffers *b, struct lane_job *job)
{
	job->sequence = ++s->sequence;
	write_canary_input(b->canary_input.map, job->sequence);
	memset((uint8_t *)b->output.map + job->canary_offset, CANARY_POISON, CANARY_OUTPUT_BYTES);
	struct npu_task_geometry canary = {
		.precision = NPU_INT8, .mt = CANARY_ROWS, .nt = CANARY_CHANNELS, .kt = CANARY_CHANNELS,
		.feature_rows = CANARY_ROWS, .output_rows = CANARY_ROWS,
		.feature_address = (uint32_t)b->canary_input.dma_address,
		.weight_address = (uint32_t)(b->canary_input.dma_address + CANARY_FEATURE_BYTES),
		.output_address = (uint32_t)(b->output.dma_address + job->canary_offset),
	};
	uint64_t *words = b->regcmd.map;
	return npu_emit_gemm_task(&canary, words + (size_t)(job->tasks - 1) * NPU_TASK_WORDS);
}

/* Hands the buffers to the NPU and submits the job's tasks in order. */
static int lane_job_submit(struct npu_dev *dev, const struct npu_bo *weights, unsigned lane,
			   const struct npu_job_buffers *b, struct lane_job *job)
{
	int status;
	if ((status = npu_bo_cpu_end(dev, &b->feature)) || (status = npu_bo_cpu_end(dev, &b->regcmd)) ||
	    (status = npu_bo_cpu_end(dev, &b->canary_input)) || (status = npu_bo_cpu_end(dev, &b->output)))
		return status;
	struct npu_task *tasks = malloc(job->tasks * sizeof *tasks);
	if (!tasks)
		return npu_fail(NPU_ERR_NOMEM, "out of memory");
	for (unsigned t = 0; t < job->tasks; t++) {
		tasks[t].regcmd = (uint32_t)(b->regcmd.dma_address + (size_t)t * NPU_TASK_WORDS * 8);
		tasks[t].regcmd_count = NPU_TASK_WORDS;
	}
	const struct npu_bo *in_bos[] = {&b->feature, &b->regcmd, &b->canary_input, weights};
	const struct npu_bo *out_bos[] = {&b->output};
	status = npu_submit(dev, lane, tasks, job->tasks, in_bos, 4, out_bos, 1);
	free(tasks);
	job->used = !status;
	return status;
}

/* The wave's rows of A into the feature map at dst. */
static int convert_wave(const struct gemm_call *call, const struct wave *wave, uint8_t *dst)
{
	const struct npu_weight_plan *p = &call->w->plan;
	const struct npu_layout_ops *ops = npu_layout_ops();
	const uint8_t *a = (const uint8_t *)call->input.a + (size_t)wave->m0 * p->k * call->input.element_bytes;
	unsigned rows = wave->rows.m;
	if (call->input.element_bytes == sizeof(float)) {
		struct npu_f32_feature f = {
			.precision = p->precision, .a = (const float *)(const void *)a, .rows = rows, .cols = p->k,
			.rows_padded = wave->rows.mp, .cols_padded = p->kp,
			.group = p->k_grouped ? p->kt : p->k, /* one group covers K unless grouped */
			.scales = wave->row_scales, .dst = dst,
		};
		return npu_feature_from_f32(&f, call->dev->threads);
	}
	if (p->precision == NPU_INT8)
		ops->feature_from_rows_i8(dst, (const int8_t *)a, rows, p->k, p->k, wave->rows.mp, p->kp);
	else
		ops->feature_from_rows_f16(dst, (const uint16_t *)(const void *)a, rows, p->k, p->k, wave->rows.mp, p->kp);
	return NPU_OK;
}

/* One lane's job of the wave: the feature map converted into the first lane's buffer and copied to the
 * others (each lane is its own NPU address space), commands, canary, SUBMIT. */
static int start_lane(struct gemm_call *call, struct wave *wave, unsigned lane, unsigned slot,
		      const uint8_t **feature)
{
	struct npu_lane_scratch *s = &call->dev->scratch[lane];
	struct npu_job_buffers *b = &s->slots[slot];
	struct lane_job *job = &wave->jobs[lane];
	size_t feature_bytes = npu_feature_bytes(&call->w->plan, &wave->rows);
	int status = lane_job_buffers(call->dev, call->w, &wave->rows, lane, b, job);
	if (status)
		return status;
	if (*feature)
		memcpy(b->feature.map, *feature, feature_bytes);
	else if ((status = convert_wave(call, wave, b->feature.map)))
		return status;
	*feature = b->feature.map;
	if ((status = lane_job_commands(call->w, &wave->rows, lane, b, job)) || (status = lane_job_canary(s, b, job)))
		return status;
	int64_t submit_start = npu_monotonic_ns(); /* the software model computes inside SUBMIT */
	status = lane_job_submit(call->dev, &call->w->lanes[lane].bo, lane, b, job);
	call->device_ns += npu_monotonic_ns() - submit_start;
	if (status)
		return status;
	if (!wave->submitted_ns)
		wave->submitted_ns = submit_start;
	call->jobs++;
	call->tasks += job->tasks;
	return NPU_OK;
}

static void start_wave(struct gemm_call *call, unsigned index)
{
	const struct npu_weight_plan *p = &call->w->plan;
	struct wave *wave = &call->wave[index];
	wave->m0 = index * call->wave_rows;
	unsigned rows = call->m - wave->m0 < call->wave_rows ? call->m - wave->m0 : call->wave_rows;
	int status = npu_plan_rows(p, rows, &wave->rows);
	if (status) {
		record_failure(call, 0, status);
		call->stopped = 1;
		return;
	}
	float *row_scales = call->input.row_scales;
	wave->row_scales = row_scales ? row_scales + (size_t)wave->m0 * npu_weight_k_groups(call->w) : NULL;
	wave->target = (struct gather_target){
		(uint8_t *)call->target.c + (size_t)wave->m0 * p->n * 4, /* int32 or float */
		call->target.row_scales ? wave->row_scales : NULL, call->target.column_scales,
	};
	const uint8_t *feature = NULL;
	for (unsigned lane = 0; lane < call->dev->info.lanes; lane++) {
		if (!call->w->lanes[lane].placed)
			continue;
		if ((status = start_lane(call, wave, lane, index % NPU_JOB_SLOTS, &feature))) {
			record_failure(call, lane, status);
			call->stopped = 1;
			return;
		}
	}
}

static void gather_lane(const struct npu_weight *w, const struct npu_row_plan *rows, unsigned lane,
			const struct lane_job *job, const uint8_t *output, const struct gather_target *target)
{
	const struct npu_weight_plan *p = &w->plan;
	const struct npu_layout_ops *ops = npu_layout_ops();
	for (unsigned j = 0; j < p->n_tiles; j++) {
		if (w->tile_lane[j] != lane)
			continue;
		unsigned n0, nt = npu_plan_n_tile(p, j, &n0);
		if (n0 >= p->n)
			continue;
		unsigned columns = p->n - n0 < nt ? p->n - n0 : nt;
		struct npu_partials partials = {
			.src = output + (size_t)(w->tile_channel[j] / 4) * rows->mp * 16, .tiles = p->k_tiles,
			.tile_bytes = job->partial_bytes, .rows = rows->m, .cols = columns, .rows_padded = rows->mp,
		};
		if (target->row_scales) {
			struct npu_partial_scales scales = {target->row_scales, rows->m, target->column_scales + n0, p->n};
			ops->rows_from_output_i32_scaled((float *)target->c + n0, p->n, &partials, &scales);
		} else if (p->precision == NPU_INT8) {
			ops->rows_from_output_i32((int32_t *)target->c + n0, p->n, &partials);
		} else {
			ops->rows_from_output_f32((float *)target->c + n0, p->n, &partials);
		}
	}
}

/* Lanes write disjoint columns, so they gather in parallel: the gather is the largest CPU share of a
 * grouped GEMM. */
struct wave_gather {
	const struct gemm_call *call;
	const struct wave *wave;
	unsigned slot;
	unsigned lanes[NPU_MAX_LANES];
};

static void gather_lanes(void *context, unsigned index, size_t begin, size_t end)
{
	const struct wave_gather *g = context;
	(void)index;
	for (size_t i = begin; i < end; i++) {
		unsigned lane = g->lanes[i];
		const struct npu_bo *output = &g->call->dev->scratch[lane].slots[g->slot].output;
		gather_lane(g->call->w, &g->wave->rows, lane, &g->wave->jobs[lane], output->map, &g->wave->target);
	}
}

/* Waits for the wave's jobs (every one submitted, even after a failure, so no buffer is reused while the
 * NPU may still read or write it), checks their canaries and gathers the columns of C of every lane
 * that has not failed: a lost job fails its lane, and the others are still checked. */
static void finish_wave(struct gemm_call *call, unsigned index)
{
	struct wave *wave = &call->wave[index];
	struct wave_gather gather = {call, wave, index % NPU_JOB_SLOTS, {0}};
	unsigned lanes = 0;
	for (unsigned lane = 0; lane < call->dev->info.lanes; lane++) {
		const struct lane_job *job = &wave->jobs[lane];
		if (!job->used)
			continue;
		const struct npu_bo *output = &call->dev->scratch[lane].slots[gather.slot].output;
		int64_t wait_start = npu_monotonic_ns();
		int status = npu_bo_cpu_begin(call->dev, output, JOB_WAIT_NS);
		call->device_ns += npu_monotonic_ns() - wait_start;
		if (!status)
			status = check_canary((const uint8_t *)output->map + job->canary_offset, job->sequence, lane);
		if (status)
			record_failure(call, lane, status);
		if (!call->lane_status[lane])
			gather.lanes[lanes++] = lane;
	}
	wave->waited_ns = npu_monotonic_ns();
	if (lanes)
		npu_parallel_for(lanes, lanes, gather_lanes, &gather);
}

/* Of the call's time, how long some wave was in flight. */
static int64_t in_flight_ns(const struct wave *waves, unsigned count)
{
	int64_t total = 0, covered = INT64_MIN;
	for (unsigned i = 0; i < count; i++) {
		if (!waves[i].submitted_ns)
			continue;
		int64_t begin = waves[i].submitted_ns > covered ? waves[i].submitted_ns : covered;
		if (waves[i].waited_ns > begin)
			total += waves[i].waited_ns - begin;
		if (waves[i].waited_ns > covered)
			covered = waves[i].waited_ns;
	}
	return total;
}

/* Waves of whole M tiles of the call's row plan, so the NPU runs the same tasks as in one wave (plus a
 * canary task per job); a tile longer than a wave is cut to the wave, its weights then loaded once per
 * wave. */
static int plan_waves(struct gemm_call *call)
{
	struct npu_row_plan rows;
	int status = npu_plan_rows(&call->w->plan, call->m, &rows);
	if (status)
		return status;
	unsigned wave_rows = call->dev->wave_rows;
	call->wave_rows = rows.mt <= wave_rows ? wave_rows / rows.mt * rows.mt : wave_rows;
	call->waves = npu_div_up(call->m, call->wave_rows);
	return NPU_OK;
}

/* C = A x B in waves: up to NPU_JOB_SLOTS waves started ahead of the oldest one not yet finished. */
static int run_gemm(struct gemm_call *call, struct npu_gemm_stats *stats, int64_t start)
{
	int status = plan_waves(call);
	if (status)
		return status;
	call->wave = calloc(call->waves, sizeof *call->wave);
	if (!call->wave)
		return npu_fail(NPU_ERR_NOMEM, "out of memory for %u waves", call->waves);
	unsigned started = 0, finished = 0;
	while (finished < started || (started < call->waves && !call->stopped)) {
		if (!call->stopped && started < call->waves && started - finished < NPU_JOB_SLOTS)
			start_wave(call, started++);
		else
			finish_wave(call, finished++);
	}
	if (stats) {
		int64_t wall = npu_monotonic_ns() - start;
		stats->jobs = call->jobs;
		stats->tasks = call->tasks;
		stats->waves = started;
		stats->seconds = (double)wall / 1e9;
		stats->device_seconds = (double)call->device_ns / 1e9;
		stats->exposed_seconds = (double)(wall - in_flight_ns(call->wave, started)) / 1e9;
		memcpy(stats->lane_status, call->lane_status, sizeof call->lane_status);
	}
	free(call->wave);
	if (call->status)
		return npu_fail(call->status, "%s", call->message);
	return NPU_OK;
}

int npu_gemm(struct npu_dev *dev, const struct npu_weight *w, unsigned m, const void *a_mk, void *c_mn,
	     struct npu_gemm_stats *stats)
{
	if (check_weight(dev, w, "npu_gemm"))
		return NPU_ERR_INVALID;
	if (!a_mk || !c_mn)
		return npu_fail(NPU_ERR_INVALID, "npu_gemm: NULL activations or result");
	const struct npu_precision_info *info = npu_precision_info(w->plan.precision);
	if (check_elements(a_mk, info->in_bytes, info->name, "activations a_mk") ||
	    check_elements(c_mn, info->out_bytes, info->out_type, "results c_mn"))
		return NPU_ERR_INVALID;
	struct gemm_call call = {.dev = dev, .w = w, .input = {a_mk, info->in_bytes, NULL}, .target = {c_mn, NULL, NULL},
				 .m = m};
	return run_gemm(&call, stats, npu_monotonic_ns());
}

int npu_gemm_f32(struct npu_dev *dev, const struct npu_weight *w, unsigned m, const float *a_mk, float *c_mn,
		 struct npu_gemm_stats *stats)
{
	if (check_weight(dev, w, "npu_gemm_f32"))
		return NPU_ERR_INVALID;
	if (!a_mk || !c_mn)
		return npu_fail(NPU_ERR_INVALID, "npu_gemm_f32: NULL activations or result");
	if (check_aligned(a_mk, 4, "float activations a_mk") || check_aligned(c_mn, 4, "float results c_mn"))
		return NPU_ERR_INVALID;
	if (m == 0)
		return npu_fail(NPU_ERR_INVALID, "empty activation matrix: M=0");
	int64_t start = npu_monotonic_ns();
	const struct npu_weight_plan *p = &w->plan;
	struct gemm_call call = {.dev = dev, .w = w, .input = {a_mk, sizeof(float), NULL}, .target = {c_mn, NULL, NULL},
				 .m = m};
	if (p->precision == NPU_FP16)
		return run_gemm(&call, stats, start);
	unsigned groups = npu_weight_k_groups(w);
	float *row_scales = malloc((size_t)m * groups * sizeof *row_scales);
	float *ones = w->column_scales ? NULL : malloc((size_t)p->n * groups * sizeof *ones);
	/* several K tiles of one group: sum the exact int32 partials first, then dequantize once */
	int32_t *sums = p->k_tiles > 1 && !p->k_grouped ? malloc((size_t)m * p->n * sizeof *sums) : NULL;
	if (!row_scales || (!w->column_scales && !ones) || (p->k_tiles > 1 && !p->k_grouped && !sums)) {
		free(row_scales), free(ones), free(sums);
		return npu_fail(NPU_ERR_NOMEM, "out of memory");
	}
	for (size_t j = 0; ones && j < (size_t)p->n * groups; j++)
		ones[j] = 1.0f;
	const float *column_scales = w->column_scales ? w->column_scales : ones;
	call.input.row_scales = row_scales; /* [groups][rows] per wave, as the gather reads them */
	call.target = sums ? (struct gather_target){sums, NULL, NULL}
			   : (struct gather_target){c_mn, row_scales, column_scales};
	int status = run_gemm(&call, stats, start);
	int64_t jobs_done = npu_monotonic_ns();
	for (size_t i = 0; sums && !status && i < (size_t)m * p->n; i++)
		c_mn[i] = (float)sums[i] * row_scales[i / p->n] * column_scales[i % p->n];
	if (!status && stats) { /* the dequantization after the last job is CPU work no job hides */
		int64_t end = npu_monotonic_ns();
		stats->seconds = (double)(end - start) / 1e9;
		stats->exposed_seconds += (double)(end - jobs_done) / 1e9;
	}
	free(row_scales), free(ones), free(sums);
	return status;
}
