/* SPDX-License-Identifier: MIT */
/*
 * npu-probe: opens the NPU (rocket driver, or the software model when asked), reports the driver
 * and core count, runs a self-test GEMM on each core against a CPU reference, times it, and
 * prints one JSON object. Exit status: 0 all cores pass, 1 a self-test failed, 2 no device/usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "npu/jobs.h"
#include "npu/npu.h"

struct options {
	const char *device;
	int model;
	unsigned m, n, k, iterations;
	int fp16;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: npu-probe [--json] [--model] [--device PATH] [--m M] [--n N] [--k K]\n"
		"                 [--iterations I] [--fp16]\n"
		"  --model       use the software NPU model instead of /dev/accel (same as %s=model)\n"
		"  --fp16        also run an fp16 x fp16 -> fp32 self-test (register settings unverified)\n"
		"  Test hook (model only): NPU_MODEL_FAULT=LANE:reject|timeout breaks that lane's first job.\n"
		"Output is always JSON; --json is accepted for clarity.\n",
		NPU_BACKEND_ENV);
}

static void json_string(const char *text)
{
	putchar('"');
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c < 0x20)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	}
	putchar('"');
}

static double now_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint32_t random_state = 0x12345678u;

static uint32_t next_random(void)
{
	random_state ^= random_state << 13;
	random_state ^= random_state >> 17;
	random_state ^= random_state << 5;
	return random_state;
}

struct selftest {
	int functional;
	unsigned mismatches;
	double max_error;
	double seconds; /* best of the timed solo iterations on this lane */
	char error[512];
};

struct problem {
	int fp16;
	enum npu_precision precision;
	unsigned m, n, k;
	void *a, *b;        /* row-major A [M][K], B^T [N][K] */
	double *reference;  /* exact (double) products */
	double *bound;      /* accepted |error| per element: 0 for int8 */
};

static void free_problem(struct problem *p)
{
	free(p->a), free(p->b), free(p->reference), free(p->bound);
}

static int make_problem(struct problem *p, const struct options *o, int fp16)
{
	memset(p, 0, sizeof *p);
	p->fp16 = fp16, p->m = o->m, p->n = o->n, p->k = o->k;
	p->precision = fp16 ? NPU_FP16 : NPU_INT8;
	size_t a_count = (size_t)o->m * o->k, b_count = (size_t)o->n * o->k, c_count = (size_t)o->m * o->n;
	size_t element = npu_precision_element_bytes(p->precision);
	p->a = malloc(a_count * element), p->b = malloc(b_count * element);
	p->reference = malloc(c_count * sizeof *p->reference), p->bound = malloc(c_count * sizeof *p->bound);
	if (!p->a || !p->b || !p->reference || !p->bound)
		return -1;
	for (size_t i = 0; i < a_count + b_count; i++) {
		uint32_t r = next_random();
		void *base = i < a_count ? p->a : p->b;
		size_t at = i < a_count ? i : i - a_count;
		if (fp16)
			((uint16_t *)base)[at] = npu_fp16_from_f32((float)((int)(r % 2001) - 1000) / 500.0f);
		else
			((int8_t *)base)[at] = (int8_t)(r & 0xff);
	}
	for (unsigned i = 0; i < o->m; i++)
		for (unsigned j = 0; j < o->n; j++) {
			double sum = 0, magnitude = 0;
			for (unsigned q = 0; q < o->k; q++) {
				double x = fp16 ? npu_f32_from_fp16(((uint16_t *)p->a)[(size_t)i * o->k + q])
						: ((int8_t *)p->a)[(size_t)i * o->k + q];
				double y = fp16 ? npu_f32_from_fp16(((uint16_t *)p->b)[(size_t)j * o->k + q])
						: ((int8_t *)p->b)[(size_t)j * o->k + q];
				sum += x * y;
				magnitude += x * y < 0 ? -x * y : x * y;
			}
			p->reference[(size_t)i * o->n + j] = sum;
			/* fp32 accumulation bound (docs/npu-userspace.md): (K + 2) * 2^-24 * sum |a b| */
			p->bound[(size_t)i * o->n + j] = fp16 ? (o->k + 2) * magnitude / 16777216.0 : 0;
		}
	return 0;
}

/* Runs C = A x B with the given placement; per lane: status, mismatches in the columns it owns. */
static int run_gemm(struct npu_dev *dev, const struct problem *p, const struct npu_weight_options *placement,
		    unsigned lanes, struct selftest *results, double *seconds)
{
	struct npu_weight *weight = NULL;
	size_t c_count = (size_t)p->m * p->n;
	void *c = malloc(c_count * 4);
	struct npu_gemm_stats stats = {0};
	int status = c ? npu_weight_prepare(dev, p->precision, p->n, p->k, p->b, placement, &weight)
		       : NPU_ERR_NOMEM;
	if (status) {
		for (unsigned lane = 0; lane < lanes; lane++)
			if (placement->placement == NPU_PLACE_SPLIT_N || placement->lane == lane)
				snprintf(results[lane].error, sizeof results[lane].error, "%s: %s",
					 npu_status_name(status), npu_error());
		free(c);
		return status;
	}
	memset(c, 0xff, c_count * 4);
	double start = now_seconds();
	status = npu_gemm(dev, weight, p->m, p->a, c, &stats);
	*seconds = now_seconds() - start;
	struct npu_weight_plan plan;
	npu_plan_weights(p->precision, p->n, p->k,
			 placement->placement == NPU_PLACE_SPLIT_N ? lanes : 1, &plan);
	for (unsigned lane = 0; lane < lanes; lane++) {
		if (placement->placement == NPU_PLACE_LANE && placement->lane != lane)
			continue;
		if (stats.lane_status[lane])
			snprintf(results[lane].error, sizeof results[lane].error, "%s: %s",
				 npu_status_name(stats.lane_status[lane]), npu_error());
	}
	for (size_t i = 0; i < c_count; i++) {
		unsigned column = (unsigned)(i % p->n);
		unsigned lane = placement->placement == NPU_PLACE_LANE ? placement->lane : (column / plan.nt) % lanes;
		if (stats.lane_status[lane] || (status && !stats.jobs))
			continue;
		double value = p->fp16 ? ((float *)c)[i] : ((int32_t *)c)[i];
		double error = value > p->reference[i] ? value - p->reference[i] : p->reference[i] - value;
		if (error > results[lane].max_error)
			results[lane].max_error = error;
		if (error > p->bound[i])
			results[lane].mismatches++;
	}
	npu_weight_free(dev, weight);
	free(c);
	return status;
}

/* Per lane: one concurrent GEMM whose N tiles are split over all lanes (submitted together, so the
 * scheduler puts the lanes' jobs on different cores), then solo GEMMs per lane for timing. */
static void run_selftests(struct npu_dev *dev, unsigned lanes, const struct options *o, int fp16,
			  struct selftest *results, double *all_seconds)
{
	memset(results, 0, lanes * sizeof *results);
	struct problem p;
	if (make_problem(&p, o, fp16)) {
		for (unsigned lane = 0; lane < lanes; lane++)
			snprintf(results[lane].error, sizeof results[lane].error, "out of memory");
		free_problem(&p);
		return;
	}
	struct npu_weight_options split = {.placement = NPU_PLACE_SPLIT_N};
	run_gemm(dev, &p, &split, lanes, results, all_seconds);
	for (unsigned lane = 0; lane < lanes; lane++) {
		struct npu_weight_options solo = {.placement = NPU_PLACE_LANE, .lane = lane};
		for (unsigned it = 0; it < o->iterations && !results[lane].error[0]; it++) {
			double seconds = 0;
			run_gemm(dev, &p, &solo, lanes, results, &seconds);
			if (it == 0 || seconds < results[lane].seconds)
				results[lane].seconds = seconds;
		}
		results[lane].functional = !results[lane].error[0] && results[lane].mismatches == 0;
	}
	free_problem(&p);
}

static int parse_unsigned(const char *text, unsigned *value)
{
	char *end;
	unsigned long parsed = strtoul(text, &end, 10);
	if (!*text || *end || parsed == 0 || parsed > 65536)
		return -1;
	*value = (unsigned)parsed;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		unsigned *target = NULL;
		if (strcmp(arg, "--json") == 0)
			continue;
		if (strcmp(arg, "--model") == 0) {
			o->model = 1;
			continue;
		}
		if (strcmp(arg, "--fp16") == 0) {
			o->fp16 = 1;
			continue;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(arg, "--device") == 0 && i + 1 < argc) {
			o->device = argv[++i];
			continue;
		}
		if (strcmp(arg, "--m") == 0)
			target = &o->m;
		else if (strcmp(arg, "--n") == 0)
			target = &o->n;
		else if (strcmp(arg, "--k") == 0)
			target = &o->k;
		else if (strcmp(arg, "--iterations") == 0)
			target = &o->iterations;
		if (!target || i + 1 >= argc || parse_unsigned(argv[i + 1], target)) {
			fprintf(stderr, "npu-probe: bad argument '%s'%s%s\n", arg, i + 1 < argc ? " " : "",
				i + 1 < argc ? argv[i + 1] : "");
			usage(stderr);
			return -1;
		}
		i++;
	}
	return 0;
}

/* NPU_MODEL_FAULT=LANE:reject|timeout (tests of the canary path through the whole tool chain). */
static int inject_fault(struct npu_dev *dev)
{
	const char *spec = getenv("NPU_MODEL_FAULT");
	if (!spec || !*spec)
		return 0;
	unsigned lane;
	char kind[16];
	if (sscanf(spec, "%u:%15s", &lane, kind) != 2 || (strcmp(kind, "reject") && strcmp(kind, "timeout"))) {
		fprintf(stderr, "npu-probe: NPU_MODEL_FAULT=%s: expected LANE:reject or LANE:timeout\n", spec);
		return -1;
	}
	int status = npu_model_inject_fault(dev, lane, strcmp(kind, "reject") == 0 ? NPU_FAULT_REJECT : NPU_FAULT_TIMEOUT);
	if (status)
		fprintf(stderr, "npu-probe: NPU_MODEL_FAULT: %s\n", npu_error());
	return status ? -1 : 0;
}

static void print_selftests(const char *key, const struct selftest *results, unsigned lanes, const struct options *o)
{
	printf("  \"%s\": [", key);
	for (unsigned lane = 0; lane < lanes; lane++) {
		const struct selftest *r = &results[lane];
		double gops = r->functional && r->seconds > 0 ? 2.0 * o->m * o->n * o->k / r->seconds / 1e9 : 0;
		printf("%s\n    {\"core\": %u, \"functional\": %s, \"mismatches\": %u, \"max_abs_error\": %.6g, "
		       "\"seconds\": %.6f, \"gops\": %.3f, \"error\": ",
		       lane ? "," : "", lane, r->functional ? "true" : "false", r->mismatches, r->max_error, r->seconds, gops);
		if (r->error[0])
			json_string(r->error);
		else
			printf("null");
		printf("}");
	}
	printf("\n  ],\n");
}

int main(int argc, char **argv)
{
	struct options o = {.m = 128, .n = 192, .k = 256, .iterations = 3};
	if (parse_options(argc, argv, &o))
		return 2;
	struct npu_open_options open_options = {.backend_from_env = !o.model, .backend = NPU_BACKEND_MODEL,
						.device_path = o.device};
	struct npu_dev *dev = NULL;
	int status = npu_open(&dev, &open_options);
	printf("{\n  \"tool\": \"npu-probe\",\n");
	if (status) {
		printf("  \"ok\": false,\n  \"error\": ");
		json_string(npu_error());
		printf(",\n  \"status\": \"%s\",\n  \"cores\": []\n}\n", npu_status_name(status));
		return 2;
	}
	if (inject_fault(dev)) {
		npu_close(dev);
		printf("  \"ok\": false,\n  \"error\": \"bad NPU_MODEL_FAULT\",\n  \"cores\": []\n}\n");
		return 2;
	}
	struct npu_dev_info info;
	npu_get_info(dev, &info);
	printf("  \"backend\": \"%s\",\n  \"device\": ", info.backend);
	json_string(info.device_path);
	printf(",\n  \"driver\": {\"name\": ");
	json_string(info.driver_name);
	printf(", \"version\": ");
	json_string(info.driver_version);
	printf(", \"desc\": ");
	json_string(info.driver_desc);
	printf("},\n  \"core_count\": %u,\n  \"lanes\": %u,\n", info.cores, info.lanes);
	printf("  \"selftest\": {\"precision\": \"int8\", \"m\": %u, \"n\": %u, \"k\": %u, \"iterations\": %u},\n", o.m,
	       o.n, o.k, o.iterations);

	struct selftest int8_results[NPU_MAX_LANES], fp16_results[NPU_MAX_LANES];
	double int8_all = 0, fp16_all = 0;
	int ok = 1;
	run_selftests(dev, info.lanes, &o, 0, int8_results, &int8_all);
	for (unsigned lane = 0; lane < info.lanes; lane++)
		ok = ok && int8_results[lane].functional;
	print_selftests("cores", int8_results, info.lanes, &o);
	printf("  \"all_cores\": {\"seconds\": %.6f, \"gops\": %.3f},\n", int8_all,
	       ok && int8_all > 0 ? 2.0 * o.m * o.n * o.k / int8_all / 1e9 : 0);
	if (o.fp16) {
		run_selftests(dev, info.lanes, &o, 1, fp16_results, &fp16_all);
		int fp16_ok = 1;
		for (unsigned lane = 0; lane < info.lanes; lane++)
			fp16_ok = fp16_ok && fp16_results[lane].functional;
		print_selftests("cores_fp16", fp16_results, info.lanes, &o);
		printf("  \"all_cores_fp16\": {\"seconds\": %.6f, \"gops\": %.3f},\n", fp16_all,
		       fp16_ok && fp16_all > 0 ? 2.0 * o.m * o.n * o.k / fp16_all / 1e9 : 0);
		ok = ok && fp16_ok;
	}
	printf("  \"ok\": %s\n}\n", ok ? "true" : "false");
	npu_close(dev);
	return ok ? 0 : 1;
}
