/* SPDX-License-Identifier: MIT */
/*
 * ggml-rknpu: a ggml backend (registry name RKNPU, device type ACCEL) that runs the weight matrix
 * multiplications of an LLM (attention and FFN projections) on the RK3588 NPU through libnpu: the rocket
 * DRM-accel driver, or the software NPU model when NPU_BACKEND=model is set explicitly.
 *
 * Weights the model loader places in this backend's buffer type are converted once, when they are
 * loaded, into the NPU layout (INT8 with per-output-channel scales, or FP16); their original bytes stay
 * in the buffer, which is host memory to ggml, so the CPU backend reads them for batches smaller than
 * GGML_RKNPU_MIN_BATCH (decode): supports_op declines those, and ggml's scheduler runs them on the CPU as
 * it does everything else. Design and measurements: docs/ggml-rknpu.md.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ggml-backend-impl.h"
#include "ggml-impl.h" /* GGML_LOG_*, as ggml's own backends log */
#include "ggml-backend.h"
#include "ggml.h"
#include "npu/npu.h"

#include "ggml-rknpu.h"

#define RKNPU_NAME "RKNPU"
#define RKNPU_ALIGNMENT 64
/* Batches (rows of activations) below this are left to the CPU backend (supports_op says no): on the
 * board, decode (one row) is bound by memory bandwidth, where the original quantized weights beat the
 * NPU's 8- or 16-bit copy. */
#define RKNPU_DEFAULT_MIN_BATCH 32
/* INT8 quantization groups along K, each with its own weight and activation scale: per-row scales alone
 * lose too much on real activations (their outliers); measurements in docs/ggml-rknpu.md. */
#define RKNPU_DEFAULT_INT8_GROUP 256

/* The NPU form of one weight tensor (tensor->extra), kept until its buffer is freed or reset. */
struct rknpu_weight {
	struct npu_weight *npu;
	size_t bytes_loaded; /* set_tensor progress: converted once the whole tensor has arrived */
	struct rknpu_weight *next;
};

/* Only what reaches this backend: batches below the minimum never do (the scheduler runs them on the CPU
 * backend), so they are not counted here. */
struct rknpu_stats {
	uint64_t npu_ops, npu_macs;
	uint64_t weights_converted, weight_npu_bytes, weight_source_bytes;
	double convert_seconds, npu_seconds, npu_device_seconds;
	double npu_exposed_seconds; /* of npu_seconds, with no NPU job in flight (npu_gemm_stats) */
};

struct rknpu_device {
	struct npu_dev *npu;
	enum npu_precision precision;
	unsigned min_batch;
	unsigned int8_group; /* 0: one scale per output channel and activation row */
	unsigned wave_rows;  /* GGML_RKNPU_WAVE_ROWS; 0: libnpu's default (npu_set_wave_rows) */
	unsigned threads;    /* the CPU threads libnpu converts activations with (llama.cpp's count) */
	char description[256];
	char open_error[256];
	const char *stats_path;
	pthread_mutex_t lock; /* libnpu: one thread at a time per device; the counters */
	struct rknpu_stats stats;
};

struct rknpu_buffer {
	struct rknpu_device *device;
	void *data;
	size_t size;
	struct rknpu_weight *weights;
};

struct rknpu_backend {
	struct rknpu_device *device;
};

static struct rknpu_device rknpu_device_state = {.lock = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t rknpu_open_once = PTHREAD_ONCE_INIT;

static double rknpu_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* An unsigned setting from the environment, or its default; false (message in open_error) when malformed. */
static bool rknpu_setting(struct rknpu_device *device, const char *name, unsigned maximum, unsigned step,
			  unsigned *value)
{
	const char *text = getenv(name);
	char *end = NULL;
	unsigned long parsed;

	if (!text || !*text)
		return true;
	errno = 0;
	parsed = strtoul(text, &end, 10);
	if (errno || *end != '\0' || parsed > maximum || parsed % step) {
		snprintf(device->open_error, sizeof(device->open_error),
			 "%s is '%s' (expected a whole number from 0 to %u%s)", name, text, maximum,
			 step > 1 ? ", a multiple of 32" : "");
		return false;
	}
	*value = (unsigned)parsed;
	return true;
}

static bool rknpu_parse_settings(struct rknpu_device *device)
{
	const char *precision = getenv("GGML_RKNPU_PRECISION");

	/* FP16 by default: as accurate as the best INT8 scheme, with a fraction of its partial-sum traffic
	 * (docs/ggml-rknpu.md); the board's measurements may move it. */
	device->precision = NPU_FP16;
	if (precision && strcmp(precision, "int8") == 0) {
		device->precision = NPU_INT8;
	} else if (precision && *precision && strcmp(precision, "fp16") != 0) {
		snprintf(device->open_error, sizeof(device->open_error),
			 "GGML_RKNPU_PRECISION is '%s' (expected int8 or fp16)", precision);
		return false;
	}
	device->min_batch = RKNPU_DEFAULT_MIN_BATCH;
	device->int8_group = RKNPU_DEFAULT_INT8_GROUP;
	device->stats_path = getenv("GGML_RKNPU_STATS");
	return rknpu_setting(device, "GGML_RKNPU_MIN_BATCH", 1u << 20, 1, &device->min_batch) &&
	       rknpu_setting(device, "GGML_RKNPU_INT8_GROUP", 4096, 32, &device->int8_group) &&
	       rknpu_setting(device, "GGML_RKNPU_WAVE_ROWS", 1u << 20, 1, &device->wave_rows);
}

static void rknpu_open_device(void)
{
	struct rknpu_device *device = &rknpu_device_state;
	struct npu_open_options options = {.backend_from_env = 1};
	struct npu_dev_info info;
	char precision[48];

	if (!rknpu_parse_settings(device))
		return;
	if (npu_open(&device->npu, &options) != NPU_OK) {
		snprintf(device->open_error, sizeof(device->open_error), "%s", npu_error());
		device->npu = NULL;
		return;
	}
	npu_get_info(device->npu, &info);
	device->threads = 1; /* libnpu's own until llama.cpp gives its count */
	if (device->wave_rows)
		npu_set_wave_rows(device->npu, device->wave_rows);
	if (device->precision == NPU_INT8 && device->int8_group)
		snprintf(precision, sizeof(precision), "INT8 GEMM, K groups of %u", device->int8_group);
	else {
		snprintf(precision, sizeof(precision), "%s GEMM", npu_precision_name(device->precision));
		for (char *c = precision; *c; c++) /* "FP16 GEMM", as the description has always read */
			*c = (char)toupper((unsigned char)*c);
	}
	/* The driver's own description, so an emulated device or the software model says so here. */
	snprintf(device->description, sizeof(device->description), "RK3588 NPU via %s %s (%s), %u lanes, %s",
		 info.backend, info.device_path, info.driver_desc, info.lanes, precision);
}

static struct rknpu_device *rknpu_device(void)
{
	pthread_once(&rknpu_open_once, rknpu_open_device);
	return rknpu_device_state.npu ? &rknpu_device_state : NULL;
}

/* ---- weights ---- */

static bool rknpu_weight_type_supported(enum ggml_type type)
{
	switch (type) {
	case GGML_TYPE_F32:
	case GGML_TYPE_F16:
	case GGML_TYPE_BF16:
	case GGML_TYPE_Q4_0:
	case GGML_TYPE_Q4_1:
	case GGML_TYPE_Q5_0:
	case GGML_TYPE_Q5_1:
	case GGML_TYPE_Q8_0:
	case GGML_TYPE_Q2_K:
	case GGML_TYPE_Q3_K:
	case GGML_TYPE_Q4_K:
	case GGML_TYPE_Q5_K:
	case GGML_TYPE_Q6_K:
		return true;
	default:
		return false;
	}
}

/* Ops that only describe memory (views, reshapes): nothing to compute. */
static bool rknpu_op_is_layout(enum ggml_op op)
{
	switch (op) {
	case GGML_OP_NONE:
	case GGML_OP_RESHAPE:
	case GGML_OP_VIEW:
	case GGML_OP_PERMUTE:
	case GGML_OP_TRANSPOSE:
		return true;
	default:
		return false;
	}
}

static bool rknpu_is_weight_matrix(const struct ggml_tensor *tensor)
{
	return rknpu_weight_type_supported(tensor->type) && ggml_is_contiguous(tensor) && tensor->ne[1] > 1 &&
	       tensor->ne[2] == 1 && tensor->ne[3] == 1;
}

/* Dequantizes each output channel (row of K) to f32 and converts it: INT8 with one absmax scale per
 * group of K (or per row), or FP16. Runs once per weight; the caller holds the device lock. */
static enum ggml_status rknpu_convert(struct rknpu_device *device, const struct ggml_tensor *tensor,
				      struct npu_weight **converted)
{
	const unsigned n = (unsigned)tensor->ne[1], k = (unsigned)tensor->ne[0];
	const struct ggml_type_traits *traits = ggml_get_type_traits(tensor->type);
	const bool int8 = device->precision == NPU_INT8;
	const unsigned group = int8 && device->int8_group ? device->int8_group : k;
	const unsigned groups = (k + group - 1) / group;
	const struct npu_weight_options options = {.placement = NPU_PLACE_SPLIT_N,
						   .k_group = int8 ? device->int8_group : 0};
	float *row = malloc((size_t)k * sizeof(float));
	float *scales = int8 ? malloc((size_t)n * groups * sizeof(float)) : NULL;
	void *packed = malloc((size_t)n * k * npu_precision_element_bytes(device->precision));
	enum ggml_status status = GGML_STATUS_ALLOC_FAILED;
	double started = rknpu_now();

	if (!row || !packed || (int8 && !scales))
		goto out;
	for (unsigned i = 0; i < n; i++) {
		const char *source = (const char *)tensor->data + (size_t)i * tensor->nb[1];
		if (tensor->type == GGML_TYPE_F32)
			memcpy(row, source, (size_t)k * sizeof(float));
		else
			traits->to_float(source, row, k);
		if (int8)
			npu_quantize_groups_i8((int8_t *)packed + (size_t)i * k, &scales[(size_t)i * groups], 1, 1, row, 1, k,
					       group);
		else
			npu_f32_to_fp16_array((uint16_t *)packed + (size_t)i * k, row, k);
	}
	status = GGML_STATUS_FAILED;
	if (npu_weight_prepare(device->npu, device->precision, n, k, packed, &options, converted) != NPU_OK) {
		GGML_LOG_ERROR("rknpu: cannot place weight %s [%u x %u]: %s\n", tensor->name, n, k, npu_error());
		goto out;
	}
	if (int8 && npu_weight_set_column_scales(*converted, scales) != NPU_OK) {
		GGML_LOG_ERROR("rknpu: weight %s: %s\n", tensor->name, npu_error());
		npu_weight_free(device->npu, *converted);
		*converted = NULL;
		goto out;
	}
	device->stats.weights_converted++;
	device->stats.weight_npu_bytes += npu_weight_total_bytes(*converted);
	device->stats.weight_source_bytes += ggml_nbytes(tensor);
	device->stats.convert_seconds += rknpu_now() - started;
	status = GGML_STATUS_SUCCESS;
out:
	free(row);
	free(scales);
	free(packed);
	return status;
}

static struct rknpu_weight *rknpu_weight_of(struct rknpu_buffer *buffer, struct ggml_tensor *tensor)
{
	struct rknpu_weight *weight = tensor->extra;

	if (!weight) {
		weight = calloc(1, sizeof(*weight));
		if (!weight)
			return NULL;
		weight->next = buffer->weights;
		buffer->weights = weight;
		tensor->extra = weight;
	}
	return weight;
}

static void rknpu_weight_drop(struct rknpu_device *device, struct rknpu_weight *weight)
{
	if (weight->npu) {
		npu_weight_free(device->npu, weight->npu);
		weight->npu = NULL;
	}
	weight->bytes_loaded = 0;
}

/* ---- buffer ---- */

static void rknpu_buffer_free_weights(struct rknpu_buffer *buffer)
{
	pthread_mutex_lock(&buffer->device->lock);
	while (buffer->weights) {
		struct rknpu_weight *next = buffer->weights->next;
		rknpu_weight_drop(buffer->device, buffer->weights);
		free(buffer->weights);
		buffer->weights = next;
	}
	pthread_mutex_unlock(&buffer->device->lock);
}

/* Every weight's bytes changed (clear): their NPU forms go; the tensors keep their records (tensor->extra). */
static void rknpu_buffer_drop_weights(struct rknpu_buffer *buffer)
{
	pthread_mutex_lock(&buffer->device->lock);
	for (struct rknpu_weight *weight = buffer->weights; weight; weight = weight->next)
		rknpu_weight_drop(buffer->device, weight);
	pthread_mutex_unlock(&buffer->device->lock);
}

static void rknpu_buffer_free(ggml_backend_buffer_t buffer)
{
	struct rknpu_buffer *context = buffer->context;

	rknpu_buffer_free_weights(context);
	free(context->data);
	free(context);
}

static void *rknpu_buffer_get_base(ggml_backend_buffer_t buffer)
{
	return ((struct rknpu_buffer *)buffer->context)->data;
}

static enum ggml_status rknpu_buffer_init_tensor(ggml_backend_buffer_t buffer, struct ggml_tensor *tensor)
{
	(void)buffer;
	tensor->extra = NULL; /* the NPU form is made when the weight's bytes arrive */
	return GGML_STATUS_SUCCESS;
}

static void rknpu_buffer_memset_tensor(ggml_backend_buffer_t buffer, struct ggml_tensor *tensor, uint8_t value,
				       size_t offset, size_t size)
{
	(void)buffer;
	memset((char *)tensor->data + offset, value, size);
}

/* Weights (buffers the loader marks GGML_BACKEND_BUFFER_USAGE_WEIGHTS) are converted as soon as all
 * their bytes are in; a later write to a converted weight drops its NPU form. */
static void rknpu_buffer_set_tensor(ggml_backend_buffer_t buffer, struct ggml_tensor *tensor, const void *data,
				    size_t offset, size_t size)
{
	struct rknpu_buffer *context = buffer->context;
	struct rknpu_device *device = context->device;

	memcpy((char *)tensor->data + offset, data, size);
	if (ggml_backend_buffer_get_usage(buffer) != GGML_BACKEND_BUFFER_USAGE_WEIGHTS || !rknpu_is_weight_matrix(tensor))
		return;
	pthread_mutex_lock(&device->lock);
	struct rknpu_weight *weight = rknpu_weight_of(context, tensor);
	if (weight) {
		if (weight->npu)
			rknpu_weight_drop(device, weight);
		weight->bytes_loaded += size;
		if (weight->bytes_loaded >= ggml_nbytes(tensor))
			rknpu_convert(device, tensor, &weight->npu); /* on failure: converted at first use */
	}
	pthread_mutex_unlock(&device->lock);
}

static void rknpu_buffer_get_tensor(ggml_backend_buffer_t buffer, const struct ggml_tensor *tensor, void *data,
				    size_t offset, size_t size)
{
	(void)buffer;
	memcpy(data, (const char *)tensor->data + offset, size);
}

static bool rknpu_buffer_cpy_tensor(ggml_backend_buffer_t buffer, const struct ggml_tensor *src,
				    struct ggml_tensor *dst)
{
	if (!src->buffer || !ggml_backend_buffer_is_host(src->buffer))
		return false;
	rknpu_buffer_set_tensor(buffer, dst, src->data, 0, ggml_nbytes(src));
	return true;
}

static void rknpu_buffer_clear(ggml_backend_buffer_t buffer, uint8_t value)
{
	struct rknpu_buffer *context = buffer->context;

	rknpu_buffer_drop_weights(context);
	memset(context->data, value, context->size);
}

static void rknpu_buffer_reset(ggml_backend_buffer_t buffer)
{
	rknpu_buffer_free_weights(buffer->context);
}

static const struct ggml_backend_buffer_i rknpu_buffer_interface = {
	.free_buffer = rknpu_buffer_free,
	.get_base = rknpu_buffer_get_base,
	.init_tensor = rknpu_buffer_init_tensor,
	.memset_tensor = rknpu_buffer_memset_tensor,
	.set_tensor = rknpu_buffer_set_tensor,
	.get_tensor = rknpu_buffer_get_tensor,
	.cpy_tensor = rknpu_buffer_cpy_tensor,
	.clear = rknpu_buffer_clear,
	.reset = rknpu_buffer_reset,
};

/* ---- buffer type ---- */

static const char *rknpu_buffer_type_name(ggml_backend_buffer_type_t buffer_type)
{
	(void)buffer_type;
	return RKNPU_NAME;
}

static ggml_backend_buffer_t rknpu_buffer_type_alloc(ggml_backend_buffer_type_t buffer_type, size_t size)
{
	struct rknpu_buffer *context = calloc(1, sizeof(*context));
	size_t rounded = (size + RKNPU_ALIGNMENT - 1) / RKNPU_ALIGNMENT * RKNPU_ALIGNMENT;

	if (!context)
		return NULL;
	context->device = rknpu_device();
	context->size = size;
	context->data = aligned_alloc(RKNPU_ALIGNMENT, rounded ? rounded : RKNPU_ALIGNMENT);
	if (!context->device || !context->data) {
		if (!context->device)
			GGML_LOG_ERROR("rknpu: no buffer of %zu bytes: the NPU did not open: %s\n", size,
				rknpu_device_state.open_error);
		else
			GGML_LOG_ERROR("rknpu: no buffer of %zu bytes: out of memory\n", size);
		free(context->data);
		free(context);
		return NULL;
	}
	return ggml_backend_buffer_init(buffer_type, rknpu_buffer_interface, context, size);
}

static size_t rknpu_buffer_type_alignment(ggml_backend_buffer_type_t buffer_type)
{
	(void)buffer_type;
	return RKNPU_ALIGNMENT;
}

/* Host memory (plain system memory, which the NPU shares), holding the weights' original bytes: the CPU
 * backend reads them for the batches supports_op declines, and the CPU reads results in place. The
 * loader writes into host buffers itself when it does not map the file (--load-mode none) instead of
 * calling set_tensor; such a weight is converted at its first NPU use instead (rknpu_mul_mat). */
static bool rknpu_buffer_type_is_host(ggml_backend_buffer_type_t buffer_type)
{
	(void)buffer_type;
	return true;
}

static struct ggml_backend_buffer_type rknpu_buffer_type_state;

/* ---- backend (stream) ---- */

static const char *rknpu_backend_name(ggml_backend_t backend)
{
	(void)backend;
	return RKNPU_NAME;
}

/* A JSON string: the device description comes from the driver (DRM_IOCTL_VERSION's desc). */
static void rknpu_json_string(FILE *out, const char *text)
{
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else
			fputc(*c, out);
	}
	fputc('"', out);
}

/* The offload counters, when asked for with GGML_RKNPU_STATS: JSON to that file, and one line to ggml's
 * log at INFO (llama.cpp's programs show it with their verbose option). */
static void rknpu_write_stats(const struct rknpu_device *device)
{
	const struct rknpu_stats *stats = &device->stats;

	if (!device->stats_path || !*device->stats_path)
		return;
	GGML_LOG_INFO("rknpu: MUL_MAT on the NPU: %" PRIu64 " ops, %.3f GMAC, %.3f s (%.3f s in the device); batches "
		      "below %u left to the CPU backend; %" PRIu64 " weights converted in %.3f s (%.1f MiB NPU, %.1f MiB "
		      "source); %s\n",
		      stats->npu_ops, (double)stats->npu_macs * 1e-9, stats->npu_seconds, stats->npu_device_seconds,
		      device->min_batch, stats->weights_converted, stats->convert_seconds,
		      (double)stats->weight_npu_bytes / (1 << 20), (double)stats->weight_source_bytes / (1 << 20),
		      device->description);
	FILE *out = fopen(device->stats_path, "w");
	if (!out) {
		GGML_LOG_ERROR("rknpu: cannot write GGML_RKNPU_STATS %s: %s\n", device->stats_path, strerror(errno));
		return;
	}
	fputs("{\"device\": ", out);
	rknpu_json_string(out, device->description);
	fprintf(out,
		", \"precision\": \"%s\", \"int8_group\": %u, \"min_batch\": %u, \"threads\": %u, \"npu_ops\": %" PRIu64
		", \"npu_macs\": %" PRIu64 ", \"npu_seconds\": %.6f, \"npu_device_seconds\": %.6f"
		", \"npu_exposed_seconds\": %.6f"
		", \"weights_converted\": %" PRIu64 ", \"weight_npu_bytes\": %" PRIu64
		", \"weight_source_bytes\": %" PRIu64 ", \"convert_seconds\": %.6f}\n",
		npu_precision_name(device->precision),
		device->precision == NPU_INT8 ? device->int8_group : 0, device->min_batch, device->threads, stats->npu_ops,
		stats->npu_macs, stats->npu_seconds, stats->npu_device_seconds, stats->npu_exposed_seconds,
		stats->weights_converted, stats->weight_npu_bytes, stats->weight_source_bytes, stats->convert_seconds);
	fclose(out);
}

static void rknpu_backend_free(ggml_backend_t backend)
{
	struct rknpu_backend *context = backend->context;

	pthread_mutex_lock(&context->device->lock);
	if (context->device->stats.npu_ops)
		rknpu_write_stats(context->device);
	pthread_mutex_unlock(&context->device->lock);
	free(context);
	free(backend);
}

static enum ggml_status rknpu_mul_mat(struct rknpu_backend *context, struct ggml_tensor *node)
{
	struct rknpu_device *device = context->device;
	struct ggml_tensor *weight = node->src[0];
	const struct ggml_tensor *input = node->src[1];
	const uint64_t rows = (uint64_t)ggml_nrows(input);
	const uint64_t macs = rows * (uint64_t)weight->ne[0] * (uint64_t)weight->ne[1];
	struct rknpu_buffer *buffer = weight->buffer->context;
	struct npu_weight *temporary = NULL, *converted;
	struct npu_gemm_stats gemm;
	enum ggml_status status = GGML_STATUS_SUCCESS;
	double started = rknpu_now();

	pthread_mutex_lock(&device->lock);
	/* Weights buffers keep the NPU form (made here if the loader wrote the bytes itself); in
	 * other buffers (test graphs) the bytes may change between graphs, so the form made here is dropped
	 * after the call. */
	if (ggml_backend_buffer_get_usage(weight->buffer) == GGML_BACKEND_BUFFER_USAGE_WEIGHTS) {
		struct rknpu_weight *kept = rknpu_weight_of(buffer, weight);
		if (!kept) {
			status = GGML_STATUS_ALLOC_FAILED;
			goto out;
		}
		if (!kept->npu)
			status = rknpu_convert(device, weight, &kept->npu);
		converted = kept->npu;
	} else {
		status = rknpu_convert(device, weight, &temporary);
		converted = temporary;
	}
	if (status != GGML_STATUS_SUCCESS)
		goto out;
	if (npu_gemm_f32(device->npu, converted, (unsigned)rows, input->data, node->data, &gemm) != NPU_OK) {
		GGML_LOG_ERROR("rknpu: %s = %s x %s [%" PRIu64 " x %" PRId64 " x %" PRId64 "]: %s\n", node->name,
			weight->name, input->name, rows, weight->ne[0], weight->ne[1], npu_error());
		status = GGML_STATUS_FAILED;
		goto out;
	}
	device->stats.npu_ops++;
	device->stats.npu_macs += macs;
	device->stats.npu_seconds += rknpu_now() - started;
	device->stats.npu_device_seconds += gemm.device_seconds;
	device->stats.npu_exposed_seconds += gemm.exposed_seconds;
out:
	if (temporary)
		npu_weight_free(device->npu, temporary);
	pthread_mutex_unlock(&device->lock);
	return status;
}

static enum ggml_status rknpu_backend_graph_compute(ggml_backend_t backend, struct ggml_cgraph *graph)
{
	struct rknpu_backend *context = backend->context;

	for (int i = 0; i < ggml_graph_n_nodes(graph); i++) {
		struct ggml_tensor *node = ggml_graph_node(graph, i);
		enum ggml_status status;

		if ((node->flags & GGML_TENSOR_FLAG_COMPUTE) == 0 || ggml_is_empty(node) || rknpu_op_is_layout(node->op))
			continue;
		if (node->op != GGML_OP_MUL_MAT) {
			GGML_LOG_ERROR("rknpu: op %s (%s) is not supported\n", ggml_op_desc(node), node->name);
			return GGML_STATUS_FAILED;
		}
		status = rknpu_mul_mat(context, node);
		if (status != GGML_STATUS_SUCCESS)
			return status;
	}
	return GGML_STATUS_SUCCESS;
}

static const struct ggml_backend_i rknpu_backend_interface = {
	.get_name = rknpu_backend_name,
	.free = rknpu_backend_free,
	.graph_compute = rknpu_backend_graph_compute,
};

static ggml_guid_t rknpu_guid(void)
{
	static ggml_guid guid = {0x72, 0x6b, 0x6e, 0x70, 0x75, 0x2d, 0x72, 0x6f,
				 0x73, 0x65, 0x6e, 0x62, 0x6c, 0x61, 0x74, 0x74};
	return &guid;
}

/* ---- device ---- */

static const char *rknpu_device_name(ggml_backend_dev_t dev)
{
	(void)dev;
	return RKNPU_NAME;
}

static const char *rknpu_device_description(ggml_backend_dev_t dev)
{
	return ((struct rknpu_device *)dev->context)->description;
}

/* Weights live in system memory (the NPU shares it): report that. */
static void rknpu_device_memory(ggml_backend_dev_t dev, size_t *free_bytes, size_t *total_bytes)
{
	long pages = sysconf(_SC_PHYS_PAGES), available = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);

	(void)dev;
	*total_bytes = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
	*free_bytes = available > 0 && page > 0 ? (size_t)available * (size_t)page : 0;
}

static enum ggml_backend_dev_type rknpu_device_type(ggml_backend_dev_t dev)
{
	(void)dev;
	return GGML_BACKEND_DEVICE_TYPE_ACCEL;
}

static void rknpu_device_props(ggml_backend_dev_t dev, struct ggml_backend_dev_props *props)
{
	memset(props, 0, sizeof(*props));
	props->name = rknpu_device_name(dev);
	props->description = rknpu_device_description(dev);
	props->type = rknpu_device_type(dev);
	rknpu_device_memory(dev, &props->memory_free, &props->memory_total);
}

static ggml_backend_t rknpu_device_init_backend(ggml_backend_dev_t dev, const char *params)
{
	struct rknpu_backend *context = calloc(1, sizeof(*context));
	ggml_backend_t backend = calloc(1, sizeof(*backend));

	(void)params;
	if (!context || !backend) {
		GGML_LOG_ERROR("rknpu: out of memory\n");
		free(context);
		free(backend);
		return NULL;
	}
	context->device = dev->context;
	backend->guid = rknpu_guid();
	backend->iface = rknpu_backend_interface;
	backend->device = dev;
	backend->context = context;
	return backend;
}

static ggml_backend_buffer_type_t rknpu_device_buffer_type(ggml_backend_dev_t dev)
{
	(void)dev;
	return &rknpu_buffer_type_state;
}

/* MUL_MAT whose weight (src0) is a 2-D matrix in this backend's buffer, with f32 activations and result,
 * and a batch (activation rows) of at least GGML_RKNPU_MIN_BATCH: the offload policy, where ggml's
 * scheduler sees it (as ggml-blas declines small batches). A declined matmul on a weight in this buffer
 * runs on the CPU backend over the original bytes (the buffer is host memory), decode included. The
 * loader places a weight by asking with a batch of 512. Tensors not allocated yet (test-backend-ops asks
 * before allocating) will land in this buffer type. */
static bool rknpu_device_supports_op(ggml_backend_dev_t dev, const struct ggml_tensor *op)
{
	const struct rknpu_device *device = dev->context;
	const struct ggml_tensor *weight = op->src[0], *input = op->src[1];

	if (rknpu_op_is_layout(op->op))
		return true;
	return op->op == GGML_OP_MUL_MAT && (!weight->buffer || weight->buffer->buft == &rknpu_buffer_type_state) &&
	       ggml_nrows(input) >= (int64_t)device->min_batch &&
	       rknpu_is_weight_matrix(weight) && weight->ne[0] <= UINT32_MAX && weight->ne[1] <= UINT32_MAX &&
	       input->type == GGML_TYPE_F32 && ggml_is_contiguous(input) && ggml_nrows(input) <= UINT32_MAX &&
	       op->type == GGML_TYPE_F32 && ggml_is_contiguous(op);
}

/* Activations from the CPU are read where they are (host buffers), as is our own buffer type. */
static bool rknpu_device_supports_buft(ggml_backend_dev_t dev, ggml_backend_buffer_type_t buffer_type)
{
	(void)dev;
	return buffer_type == &rknpu_buffer_type_state || ggml_backend_buft_is_host(buffer_type);
}

static const struct ggml_backend_device_i rknpu_device_interface = {
	.get_name = rknpu_device_name,
	.get_description = rknpu_device_description,
	.get_memory = rknpu_device_memory,
	.get_type = rknpu_device_type,
	.get_props = rknpu_device_props,
	.init_backend = rknpu_device_init_backend,
	.get_buffer_type = rknpu_device_buffer_type,
	.supports_op = rknpu_device_supports_op,
	.supports_buft = rknpu_device_supports_buft,
};

/* ---- registry ---- */

static struct ggml_backend_device rknpu_device_handle;

static const char *rknpu_reg_name(ggml_backend_reg_t reg)
{
	(void)reg;
	return RKNPU_NAME;
}

static size_t rknpu_reg_device_count(ggml_backend_reg_t reg)
{
	(void)reg;
	return rknpu_device() ? 1 : 0;
}

static ggml_backend_dev_t rknpu_reg_device(ggml_backend_reg_t reg, size_t index)
{
	(void)reg;
	return index == 0 && rknpu_device() ? &rknpu_device_handle : NULL;
}

/* llama.cpp's thread count, given to every backend whose registry answers "ggml_backend_set_n_threads"
 * (ggml-blas hands it to its BLAS library the same way): libnpu converts activations with as many. */
static void rknpu_set_n_threads(ggml_backend_t backend, int n_threads)
{
	struct rknpu_backend *ctx = backend->context;

	if (n_threads < 1)
		return;
	pthread_mutex_lock(&ctx->device->lock);
	if (npu_set_threads(ctx->device->npu, (unsigned)n_threads) == NPU_OK)
		ctx->device->threads = (unsigned)n_threads;
	pthread_mutex_unlock(&ctx->device->lock);
}

static void *rknpu_reg_proc_address(ggml_backend_reg_t reg, const char *name)
{
	(void)reg;
	if (strcmp(name, "ggml_backend_set_n_threads") == 0)
		return (void *)rknpu_set_n_threads;
	return NULL;
}

static struct ggml_backend_reg rknpu_reg = {
	.api_version = GGML_BACKEND_API_VERSION,
	.iface = {
		.get_name = rknpu_reg_name,
		.get_device_count = rknpu_reg_device_count,
		.get_device = rknpu_reg_device,
		.get_proc_address = rknpu_reg_proc_address,
	},
};

ggml_backend_reg_t ggml_backend_rknpu_reg(void)
{
	struct rknpu_device *device = rknpu_device();

	rknpu_buffer_type_state = (struct ggml_backend_buffer_type){
		.iface = {
			.get_name = rknpu_buffer_type_name,
			.alloc_buffer = rknpu_buffer_type_alloc,
			.get_alignment = rknpu_buffer_type_alignment,
			.is_host = rknpu_buffer_type_is_host,
		},
		.device = &rknpu_device_handle,
	};
	rknpu_device_handle = (struct ggml_backend_device){
		.iface = rknpu_device_interface, .reg = &rknpu_reg, .context = device};
	return &rknpu_reg;
}

/* 0 (not loaded) without a usable NPU, saying why: a run never falls back to anything silently. */
static int rknpu_score(void)
{
	if (rknpu_device())
		return 1;
	GGML_LOG_WARN("rknpu: not used: %s\n", rknpu_device_state.open_error);
	return 0;
}

GGML_BACKEND_DL_IMPL(ggml_backend_rknpu_reg)
GGML_BACKEND_DL_SCORE_IMPL(rknpu_score)
