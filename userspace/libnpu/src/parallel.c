/* SPDX-License-Identifier: MIT */
/* Contiguous ranges of independent work on a few threads, started per call: the calls this serves (an
 * NPU matmul's conversions, a model task) take milliseconds, a thread's start some microseconds. */
#include <pthread.h>
#include <stdint.h>

#include "npu_parallel.h"

struct parallel_range {
	void (*range)(void *context, unsigned index, size_t begin, size_t end);
	void *context;
	unsigned index;
	size_t begin, end;
};

static void *run_range(void *argument)
{
	const struct parallel_range *r = argument;
	r->range(r->context, r->index, r->begin, r->end);
	return NULL;
}

void npu_parallel_for(unsigned threads, size_t count, void (*range)(void *context, unsigned index, size_t begin,
								      size_t end), void *context)
{
	struct parallel_range ranges[NPU_MAX_THREADS];
	pthread_t ids[NPU_MAX_THREADS];
	int started[NPU_MAX_THREADS] = {0};
	threads = threads < 1 ? 1 : threads > NPU_MAX_THREADS ? NPU_MAX_THREADS : threads;
	threads = count < threads ? (unsigned)(count ? count : 1) : threads;
	for (unsigned t = 0; t < threads; t++)
		ranges[t] = (struct parallel_range){range, context, t, (size_t)((uint64_t)count * t / threads),
						    (size_t)((uint64_t)count * (t + 1) / threads)};
	for (unsigned t = 1; t < threads; t++)
		started[t] = !pthread_create(&ids[t], NULL, run_range, &ranges[t]);
	run_range(&ranges[0]);
	for (unsigned t = 1; t < threads; t++) {
		if (started[t])
			pthread_join(ids[t], NULL);
		else
			run_range(&ranges[t]);
	}
}
