/* SPDX-License-Identifier: MIT */
/*
 * The emulated rocket device (librocket-emu, preloaded by ctest) through the raw UAPI, the way the
 * 7.2 driver behaves: DRM_IOCTL_VERSION, CREATE_BO placement in a per-fd address space and its mmap
 * offset, SUBMIT's silent drops, PREP_BO's absolute deadline (-EBUSY, -ETIMEDOUT), FINI_BO, GEM_CLOSE.
 * Without the preload there is no /dev/accel/accel0 here and the test fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "npu/jobs.h"
#include "npu_internal.h"
#include "npu_regs.h"
#include "rocket_accel.h"
#include "support.h"

#define DEVICE "/dev/accel/accel0"
#define M 4u
#define N 32u
#define K 32u
#define UNTOUCHED 0x11u

struct bo {
	struct drm_rocket_create_bo create;
	uint8_t *map;
};

static struct bo make_bo(int fd, uint32_t size)
{
	struct bo bo = {.create = {.size = size}};
	CHECK(ioctl(fd, DRM_IOCTL_ROCKET_CREATE_BO, &bo.create) == 0, "CREATE_BO of %u bytes: %s", size, strerror(errno));
	bo.map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)bo.create.offset);
	CHECK(bo.map != MAP_FAILED, "mmap at offset 0x%llx: %s", (unsigned long long)bo.create.offset, strerror(errno));
	return bo;
}

static int prep(int fd, const struct bo *bo, int64_t deadline_ns)
{
	struct drm_rocket_prep_bo args = {.handle = bo->create.handle, .timeout_ns = deadline_ns};
	return ioctl(fd, DRM_IOCTL_ROCKET_PREP_BO, &args) ? -errno : 0;
}

static int submit(int fd, const struct drm_rocket_task *tasks, uint32_t task_count, const uint32_t *in,
		  uint32_t in_count, const uint32_t *out)
{
	struct drm_rocket_job job = {
		.tasks = (uint64_t)(uintptr_t)tasks, .in_bo_handles = (uint64_t)(uintptr_t)in,
		.out_bo_handles = (uint64_t)(uintptr_t)out, .task_count = task_count,
		.task_struct_size = sizeof *tasks, .in_bo_handle_count = in_count, .out_bo_handle_count = 1,
	};
	struct drm_rocket_submit args = {.jobs = (uint64_t)(uintptr_t)&job, .job_count = 1, .job_struct_size = sizeof job};
	return ioctl(fd, DRM_IOCTL_ROCKET_SUBMIT, &args) ? -errno : 0;
}

static void check_version(int fd)
{
	char name[32] = "", desc[128] = "";
	struct drm_version version = {.name_len = sizeof name - 1, .name = name, .desc_len = sizeof desc - 1, .desc = desc};
	CHECK(ioctl(fd, DRM_IOCTL_VERSION, &version) == 0, "DRM_IOCTL_VERSION: %s", strerror(errno));
	CHECK(strcmp(name, "rocket") == 0 && strstr(desc, "emulated"), "version '%s' / '%s'", name, desc);
}

/* Every fd is its own 4 GiB space: the first BO sits at NPU address 0, the next one a page later. */
static void check_placement(const struct bo *first, const struct bo *second, const struct bo *other_fd_first)
{
	CHECK(first->create.dma_address == 0 && other_fd_first->create.dma_address == 0,
	      "first BOs at 0x%llx and 0x%llx, expected 0 on each fd", (unsigned long long)first->create.dma_address,
	      (unsigned long long)other_fd_first->create.dma_address);
	CHECK(second->create.dma_address == 4096, "second BO at 0x%llx", (unsigned long long)second->create.dma_address);
	CHECK(first->create.offset != second->create.offset && first->create.offset % 4096 == 0,
	      "mmap offsets 0x%llx, 0x%llx", (unsigned long long)first->create.offset,
	      (unsigned long long)second->create.offset);
}

int main(void)
{
	int fd = open(DEVICE, O_RDWR | O_CLOEXEC), other = open(DEVICE, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0 && other >= 0, "open %s: %s (is librocket-emu preloaded?)", DEVICE, strerror(errno));
	check_version(fd);
	struct bo feature = make_bo(fd, M * K), weights = make_bo(fd, N * K), output = make_bo(fd, M * N * 4);
	struct bo regcmd = make_bo(fd, NPU_TASK_WORDS * 8), other_bo = make_bo(other, 4096);
	check_placement(&feature, &weights, &other_bo);

	/* all-ones features times all-twos weights: every output element is 2K, whatever the layouts */
	memset(feature.map, 1, M * K);
	memset(weights.map, 2, N * K);
	struct npu_task_geometry g = {NPU_INT8, M, N, K, M, M, (uint32_t)feature.create.dma_address,
				      (uint32_t)weights.create.dma_address, (uint32_t)output.create.dma_address};
	uint64_t *words = (uint64_t *)regcmd.map;
	CHECK_OK(npu_emit_gemm_task(&g, words));
	struct drm_rocket_task task = {(uint32_t)regcmd.create.dma_address, NPU_TASK_WORDS};
	uint32_t in[] = {feature.create.handle, weights.create.handle, regcmd.create.handle}, out[] = {output.create.handle};

	memset(output.map, UNTOUCHED, M * N * 4);
	CHECK(submit(fd, &task, 1, in, 3, out) == 0, "SUBMIT failed");
	CHECK(prep(fd, &output, npu_monotonic_ns() + 10000000000) == 0, "PREP_BO after a good job");
	for (unsigned i = 0; i < M * N; i++)
		CHECK(((int32_t *)output.map)[i] == 2 * (int32_t)K, "C[%u] = %d", i, ((int32_t *)output.map)[i]);
	struct drm_rocket_fini_bo fini = {.handle = output.create.handle};
	CHECK(ioctl(fd, DRM_IOCTL_ROCKET_FINI_BO, &fini) == 0, "FINI_BO");
	fini.reserved = 1;
	CHECK(ioctl(fd, DRM_IOCTL_ROCKET_FINI_BO, &fini) == -1 && errno == EINVAL, "FINI_BO with reserved set");
	CHECK(prep(fd, &output, 0) == 0, "PREP_BO with a past deadline on an idle BO");

	/* a handle the fd does not have: the job is dropped, SUBMIT still returns 0, nothing is written */
	uint32_t bad_in[] = {feature.create.handle, 999, regcmd.create.handle};
	memset(output.map, UNTOUCHED, M * N * 4);
	CHECK(submit(fd, &task, 1, bad_in, 3, out) == 0, "SUBMIT of a job with an unknown handle must return 0");
	CHECK(prep(fd, &output, npu_monotonic_ns() + 10000000000) == 0 && output.map[0] == UNTOUCHED, "dropped job ran");

	/* a stream the hardware would hang on: reset at the timeout, the output left as garbage */
	words[1] = npu_regcmd_word(NPU_TARGET_CNA | NPU_TARGET_WRITE_BIT, 0x1234, 1);
	CHECK(submit(fd, &task, 1, in, 3, out) == 0, "SUBMIT of a bad stream must return 0");
	CHECK(prep(fd, &output, npu_monotonic_ns() + 10000000000) == 0, "PREP_BO after a reset job");
	CHECK(output.map[0] == 0xa5 && output.map[M * N * 4 - 1] == 0xa5, "reset job left 0x%02x", output.map[0]);
	CHECK_OK(npu_emit_gemm_task(&g, words));

	/* PREP_BO's timeout is an absolute CLOCK_MONOTONIC deadline, judged in NPU time: at the 25 kHz clock
	 * ctest gives this test, two 256 x 32 x 512 INT8 tasks take 327.76 ms of NPU time (4097 cycles each),
	 * far longer than interpreting them takes even under qemu or ASan on a loaded machine (eight tasks at
	 * 100 kHz, the same NPU time for four times the work, did not always: the first PREP_BO waits for the
	 * interpreter), and within the 500 ms a job may run. So the job is busy at once (a past deadline), times
	 * out on a short deadline, and finishes within a long one. */
	struct drm_rocket_task many[2];
	struct bo big_feature = make_bo(fd, 256 * 512), big_weights = make_bo(fd, 32 * 512);
	struct bo big_output = make_bo(fd, 256 * 32 * 4), big_regcmd = make_bo(fd, NPU_TASK_WORDS * 8);
	struct npu_task_geometry big = {NPU_INT8, 256, 32, 512, 256, 256, (uint32_t)big_feature.create.dma_address,
					(uint32_t)big_weights.create.dma_address, (uint32_t)big_output.create.dma_address};
	CHECK_OK(npu_emit_gemm_task(&big, (uint64_t *)big_regcmd.map));
	for (unsigned i = 0; i < 2; i++)
		many[i] = (struct drm_rocket_task){(uint32_t)big_regcmd.create.dma_address, NPU_TASK_WORDS};
	uint32_t big_in[] = {big_feature.create.handle, big_weights.create.handle, big_regcmd.create.handle};
	uint32_t big_out[] = {big_output.create.handle};
	int64_t submitted = npu_monotonic_ns();
	CHECK(submit(fd, many, 2, big_in, 3, big_out) == 0, "SUBMIT of a long job");
	int busy = prep(fd, &big_output, npu_monotonic_ns() - 1), late = prep(fd, &big_output, npu_monotonic_ns() + 1000000);
	CHECK(busy == -EBUSY && late == -ETIMEDOUT, "PREP_BO on a running job: %d and %d, expected -EBUSY, -ETIMEDOUT",
	      busy, late);
	CHECK(prep(fd, &big_output, npu_monotonic_ns() + 600000000000) == 0, "PREP_BO within a long deadline");
	CHECK(npu_monotonic_ns() - submitted >= 327760000, "the job ended %lld ns after SUBMIT, before its NPU time",
	      (long long)(npu_monotonic_ns() - submitted));

	/* 4 GiB of NPU addresses per fd: three more 1 GiB BOs fit beside the first page, a fourth does not
	 * (drm_mm finds no hole: -ENOSPC), and the other fd's window is untouched by it */
	struct drm_rocket_create_bo huge = {.size = 1u << 30};
	for (unsigned i = 0; i < 3; i++) {
		huge.handle = 0;
		CHECK(ioctl(other, DRM_IOCTL_ROCKET_CREATE_BO, &huge) == 0, "1 GiB BO %u: %s", i, strerror(errno));
	}
	CHECK(huge.dma_address + huge.size <= (UINT64_C(1) << 32), "BO ends at 0x%llx",
	      (unsigned long long)(huge.dma_address + huge.size));
	CHECK(ioctl(other, DRM_IOCTL_ROCKET_CREATE_BO, &huge) == -1 && errno == ENOSPC, "a fourth 1 GiB BO fit in the 4 GiB window");
	struct bo after = make_bo(fd, 4096);
	CHECK(after.create.dma_address < (UINT64_C(1) << 30), "fd's own window moved to 0x%llx",
	      (unsigned long long)after.create.dma_address);

	/* the kernel maps every BO of the file into its IOMMU domain and uses the job's lists only for
	 * fencing: a job that does not list its command BO (as Mesa submits) runs */
	uint32_t unlisted_in[] = {feature.create.handle, weights.create.handle};
	memset(output.map, UNTOUCHED, M * N * 4);
	CHECK(submit(fd, &task, 1, unlisted_in, 2, out) == 0, "SUBMIT without the command BO listed");
	CHECK(prep(fd, &output, npu_monotonic_ns() + 10000000000) == 0 && ((int32_t *)output.map)[0] == 2 * (int32_t)K,
	      "a job reading an unlisted BO of its fd computed C[0] = %d", ((int32_t *)output.map)[0]);

	/* a duplicated fd names the same DRM file (Mesa works on a dup of the fd it opened): its BOs are the
	 * file's, and closing the copy closes nothing */
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	CHECK(copy >= 0 && copy != fd, "F_DUPFD_CLOEXEC: %s", strerror(errno));
	check_version(copy);
	struct bo shared = make_bo(copy, 4096);
	struct drm_rocket_fini_bo shared_fini = {.handle = shared.create.handle};
	CHECK(ioctl(fd, DRM_IOCTL_ROCKET_FINI_BO, &shared_fini) == 0, "a BO made on the copy is unknown to the original");
	close(copy);
	CHECK(ioctl(fd, DRM_IOCTL_ROCKET_FINI_BO, &shared_fini) == 0, "closing the copy closed the file");
	int second = dup(fd);
	CHECK(second >= 0 && ioctl(second, DRM_IOCTL_ROCKET_FINI_BO, &shared_fini) == 0, "dup() of the device fd");
	close(second);

	/* GEM_CLOSE: the handle and its mmap offset are gone */
	struct drm_gem_close gem_close = {.handle = weights.create.handle};
	CHECK(ioctl(fd, DRM_IOCTL_GEM_CLOSE, &gem_close) == 0, "GEM_CLOSE");
	void *gone = mmap(NULL, N * K, PROT_READ, MAP_SHARED, fd, (off_t)weights.create.offset);
	CHECK(gone == MAP_FAILED && errno == EINVAL, "mmap of a closed BO's offset");
	CHECK(ioctl(fd, DRM_IOCTL_GEM_CLOSE, &gem_close) == -1, "second GEM_CLOSE of one handle");
	close(other);
	close(fd);
	printf("rocket_emu: ok\n");
	return 0;
}
