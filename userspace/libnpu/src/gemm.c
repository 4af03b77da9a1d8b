/* SPDX-License-Identifier: MIT */
/*
 * Prepared weights and the GEMM call: weight tiles placed once per lane, activations converted per
 * call, one job per lane (tasks in order, then a completion-canary task), outputs gathered back.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npu_internal.h"
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

struct lane_job {
	unsigned tasks;
	size_t partial_bytes;  /* one K-tile's output for this lane's channels */
	size_t canary_offset;  /* canary output inside the output BO */
	uint32_t sequence;
	int used;
	int64_t submit_ns;     /* time inside SUBMIT (the software model computes there) */
};

/* The lane's scratch BOs, grown to this call's sizes; the feature map copied in. */
static int lane_job_buffers(struct npu_dev *dev, const struct npu_weight *w, const struct npu_row_plan *rows,
			    unsigned lane, const uint8_t *feature, size_t feature_bytes, struct lane_job *job)
{
	const struct npu_weight_plan *p = &w->plan;
	struct npu_lane_scratch *s = &dev->scratch[lane];
	unsigned tiles = 0;
	for (unsigned j = 0; j < p->n_tiles; j++)
		tiles += w->tile_lane[j] == lane;
	job->tasks = tiles * p->k_tiles * rows->m_tiles + 1;
	job->partial_bytes = align64(npu_output_bytes(rows->mp, w->lane_channels[lane]));
	job->canary_offset = job->partial_bytes * p->k_tiles;
	size_t regcmd_bytes = (size_t)job->tasks * NPU_TASK_WORDS * 8;
	int status;
	if ((status = ensure_bo(dev, lane, &s->feature, &s->has_feature, feature_bytes)) ||
	    (status = ensure_bo(dev, lane, &s->output, &s->has_output, job->canary_offset + CANARY_OUTPUT_BYTES)) ||
	    (status = ensure_bo(dev, lane, &s->regcmd, &s->has_regcmd, regcmd_bytes)) ||
	    (status = ensure_bo(dev, lane, &s->canary_input, &s->has_canary, CANARY_INPUT_BYTES)))
		return status;
	memcpy(s->feature.map, feature, feature_bytes);
	return NPU_OK;
}

/* One task per (N tile of this lane, K tile, M tile); each K tile writes its own partial output. */
static int lane_job_commands(struct npu_dev *dev, const struct npu_weight *w, const struct npu_row_plan *rows,
			     unsigned lane, const struct lane_job *job)
{
	const struct npu_weight_plan *p = &w->plan;
	struct npu_lane_scratch *s = &dev->scratch[lane];
	uint64_t *words = s->regcmd.map;
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
					.feature_address = (uint32_t)(s->feature.dma_address +
								      ((size_t)(k0 / p->feature_c2) * rows->mp + m0) * 16),
					.weight_address = (uint32_t)(wbo->dma_address +
								     w->tile_offset[(size_t)j * p->k_tiles + i]),
					.output_address = (uint32_t)(s->output.dma_address + i * job->partial_bytes +
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
static int lane_job_canary(struct npu_dev *dev, unsigned lane, struct lane_job *job)
{
	struct npu_lane_scratch *s = &dev->scratch[lane];
	job->sequence = ++s->sequence;
	write_canary_input(s->canary_input.map, job->sequence);
	memset((uint8_t *)s->output.map + job->canary_offset, CANARY_POISON, CANARY_OUTPUT_BYTES);
	struct npu_task_geometry canary = {
		.precision = NPU_INT8, .mt = CANARY_ROWS, .nt = CANARY_CHANNELS, .kt = CANARY_CHANNELS,
		.feature_rows = CANARY_ROWS, .output_rows = CANARY_ROWS,
		.feature_address = (uint32_t)s->canary_input.dma_address,
		.weight_address = (uint32_t)(s->canary_input.dma_address + CANARY_FEATURE_BYTES),
		.output_address = (uint32_t)(s->output.dma_address + job->canary_offset),
	};
	uint64_t *words = s->regcmd.map;
	return npu_emit_gemm_task(&canary, words + (size_t)(job->tasks - 1) * NPU_TASK_WORDS);
}

/* Hands the buffers to the NPU and submits the job's tasks in order. */
static int lane_job_submit(struct npu_dev *dev, const struct npu_weight *w, unsigned lane, struct lane_job *job)
{
	struct npu_lane_scratch *s = &dev->scratch[lane];
	int status;
	if ((status = npu_bo_cpu_end(dev, &s->feature)) || (status = npu_bo_cpu_end(dev, &s->regcmd)) ||
	    (status = npu_bo_cpu_end(dev, &s->canary_input)) || (status = npu_bo_cpu_end(dev, &s->output)))
		return status;
	struct npu_task *tasks = malloc(job->tasks * sizeof *tasks);
	if (!tasks)
		return npu_fail(NPU_ERR_NOMEM, "out of memory");
	for (unsigned t = 0; t < job->tasks; t++) {
		tasks[t].regcmd = (uint32_t)(s->regcmd.dma_address + (size_t)t * NPU_TASK_WORDS * 8);
		tasks[t].regcmd_count = NPU_TASK_WORDS;
	}
	const struct npu_bo *in_bos[] = {&s->feature, &s->regcmd, &s->canary_input, &w->lanes[lane].bo};
	const struct npu_bo *out_bos[] = {&s->output};
	int64_t submit_start = npu_monotonic_ns();
	status = npu_submit(dev, lane, tasks, job->tasks, in_bos, 4, out_bos, 1);
	job->submit_ns = npu_monotonic_ns() - submit_start;
	free(tasks);
	job->used = !status;
	return status;
}

static int build_lane_job(struct npu_dev *dev, const struct npu_weight *w, const struct npu_row_plan *rows,
			  unsigned lane, const uint8_t *feature, size_t feature_bytes, struct lane_job *job)
{
	int status;
	if ((status = lane_job_buffers(dev, w, rows, lane, feature, feature_bytes, job)) ||
	    (status = lane_job_commands(dev, w, rows, lane, job)) || (status = lane_job_canary(dev, lane, job)))
		return status;
	return lane_job_submit(dev, w, lane, job);
}

/* Writes the lane's columns of C: int32 or fp32 sums, or (scaled) f32 = sum over K groups of
 * (float)acc * row * column (one group unless the weight is grouped). */
struct gather_target {
	void *c;                   /* int32_t / float [M][N] */
	const float *row_scales;   /* non-NULL: INT8 output dequantized into float c; [groups][M] */
	const float *column_scales; /* [groups][N] */
};

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

/* Waiting for one lane's job, checking its canary and gathering its columns of C. Lanes write disjoint
 * columns, so they finish in parallel threads: the gather is the largest CPU share of a grouped GEMM. */
struct lane_finish {
	struct npu_dev *dev;
	const struct npu_weight *w;
	const struct npu_row_plan *rows;
	const struct gather_target *target;
	const struct lane_job *job;
	unsigned lane;
	int status;
	int64_t wait_ns;
	char message[512]; /* npu_error() of the thread that finished the lane */
};

static void *finish_lane(void *argument)
{
	struct lane_finish *f = argument;
	struct npu_lane_scratch *s = &f->dev->scratch[f->lane];
	int64_t wait_start = npu_monotonic_ns();
	f->status = npu_bo_cpu_begin(f->dev, &s->output, JOB_WAIT_NS);
	f->wait_ns = npu_monotonic_ns() - wait_start;
	if (!f->status)
		f->status = check_canary((const uint8_t *)s->output.map + f->job->canary_offset, f->job->sequence, f->lane);
	if (!f->status)
		gather_lane(f->w, f->rows, f->lane, f->job, s->output.map, f->target);
	if (f->status)
		snprintf(f->message, sizeof f->message, "%s", npu_error());
	return NULL;
}

/* The call's row tiling, and the feature map buffer it needs, kept in the device between calls: a fresh
 * allocation of megabytes pays its page faults again on every call. */
static int plan_call(struct npu_dev *dev, const struct npu_weight_plan *p, unsigned m, struct npu_row_plan *rows)
{
	int status = npu_plan_rows(p, m, rows);
	if (status)
		return status;
	size_t bytes = npu_feature_bytes(p, rows);
	if (dev->feature_bytes < bytes) {
		free(dev->feature);
		dev->feature = malloc(bytes);
		dev->feature_bytes = dev->feature ? bytes : 0;
	}
	if (!dev->feature)
		return npu_fail(NPU_ERR_NOMEM, "out of memory for a %zu-byte feature map", bytes);
	return NPU_OK;
}

/* Submits the jobs of C = A x B on every lane holding tiles, A being the feature map in dev->feature, and
 * gathers C into the target. */
static int run_gemm(struct npu_dev *dev, const struct npu_weight *w, const struct npu_row_plan *row_plan,
		    const struct gather_target *target, struct npu_gemm_stats *stats, int64_t start)
{
	const struct npu_row_plan rows = *row_plan;
	const uint8_t *feature = dev->feature;
	size_t feature_bytes = npu_feature_bytes(&w->plan, &rows);
	int status = NPU_OK;
	struct lane_job jobs[NPU_MAX_LANES] = {0};
	int lane_status[NPU_MAX_LANES] = {0};
	unsigned tasks = 0, job_count = 0;
	/* Submit on every lane first so the cores run in parallel, then wait. */
	for (unsigned lane = 0; lane < dev->info.lanes && !status; lane++) {
		if (!w->lanes[lane].placed)
			continue;
		status = build_lane_job(dev, w, &rows, lane, feature, feature_bytes, &jobs[lane]);
		lane_status[lane] = status;
		tasks += jobs[lane].tasks;
		job_count++;
	}
	int first_error = status;
	char message[512] = "";
	if (first_error)
		memcpy(message, npu_error(), sizeof message - 1);
	int64_t device_ns = 0, longest_wait = 0;
	struct lane_finish finish[NPU_MAX_LANES];
	pthread_t threads[NPU_MAX_LANES];
	int threaded[NPU_MAX_LANES] = {0};
	for (unsigned lane = 0; lane < dev->info.lanes; lane++) {
		device_ns += jobs[lane].submit_ns;
		if (!jobs[lane].used)
			continue;
		finish[lane] = (struct lane_finish){dev, w, &rows, target, &jobs[lane], lane, NPU_OK, 0, ""};
		/* one lane (or no thread to be had): finish it here */
		threaded[lane] = job_count > 1 && !pthread_create(&threads[lane], NULL, finish_lane, &finish[lane]);
		if (!threaded[lane])
			finish_lane(&finish[lane]);
	}
	for (unsigned lane = 0; lane < dev->info.lanes; lane++) {
		if (!jobs[lane].used)
			continue;
		if (threaded[lane])
			pthread_join(threads[lane], NULL);
		longest_wait = finish[lane].wait_ns > longest_wait ? finish[lane].wait_ns : longest_wait;
		lane_status[lane] = finish[lane].status;
		if (finish[lane].status && !first_error) {
			first_error = finish[lane].status;
			memcpy(message, finish[lane].message, sizeof message);
		}
	}
	device_ns += longest_wait; /* the lanes are waited for at the same time */
	if (stats) {
		stats->jobs = job_count;
		stats->tasks = tasks;
		stats->seconds = (double)(npu_monotonic_ns() - start) / 1e9;
		stats->device_seconds = (double)device_ns / 1e9;
		memcpy(stats->lane_status, lane_status, sizeof lane_status);
	}
	if (first_error)
		return npu_fail(first_error, "%s", message);
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
	int64_t start = npu_monotonic_ns();
	const struct npu_weight_plan *p = &w->plan;
	struct npu_row_plan rows;
	int status = plan_call(dev, p, m, &rows);
	if (status)
		return status;
	if (p->precision == NPU_INT8)
		npu_layout_ops()->feature_from_rows_i8(dev->feature, a_mk, m, p->k, p->k, rows.mp, p->kp);
	else
		npu_layout_ops()->feature_from_rows_f16(dev->feature, a_mk, m, p->k, p->k, rows.mp, p->kp);
	struct gather_target target = {c_mn, NULL, NULL};
	return run_gemm(dev, w, &rows, &target, stats, start);
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
	struct npu_row_plan rows;
	int status = plan_call(dev, p, m, &rows);
	if (status)
		return status;
	struct npu_f32_feature feature = {
		.precision = p->precision, .a = a_mk, .rows = m, .cols = p->k, .rows_padded = rows.mp,
		.cols_padded = p->kp, .group = p->k_grouped ? p->kt : p->k, /* one group covers K unless grouped */
		.dst = dev->feature,
	};
	if (p->precision == NPU_FP16) {
		struct gather_target target = {c_mn, NULL, NULL};
		if ((status = npu_feature_from_f32(&feature, dev->threads)))
			return status;
		return run_gemm(dev, w, &rows, &target, stats, start);
	}
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
	feature.scales = row_scales; /* [groups][M], as the gather reads them */
	status = npu_feature_from_f32(&feature, dev->threads);
	if (!status && sums) {
		struct gather_target target = {sums, NULL, NULL};
		status = run_gemm(dev, w, &rows, &target, stats, start);
		for (size_t i = 0; !status && i < (size_t)m * p->n; i++)
			c_mn[i] = (float)sums[i] * row_scales[i / p->n] * column_scales[i % p->n];
	} else if (!status) {
		struct gather_target target = {c_mn, row_scales, column_scales};
		status = run_gemm(dev, w, &rows, &target, stats, start);
	}
	if (!status && stats)
		stats->seconds = (double)(npu_monotonic_ns() - start) / 1e9;
	free(row_scales), free(ones), free(sums);
	return status;
}
