/* SPDX-License-Identifier: MIT */
/* Backend over the rocket DRM-accel UAPI (Linux 7.2, include/uapi/drm/rocket_accel.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "npu_internal.h"
#include "rocket_accel.h"

#define ROCKET_DRIVER_SYSFS "/sys/bus/platform/drivers/rocket"

/* The backend's state behind npu_dev.backend: one fd per lane (its own scheduling entity and NPU address
 * space under the 7.2 driver). */
struct rocket {
	int fds[NPU_MAX_LANES];
};

static int lane_fd(const struct npu_dev *dev, unsigned lane)
{
	return ((const struct rocket *)dev->backend)->fds[lane];
}

static int xioctl(int fd, unsigned long request, void *argument)
{
	int result;
	do {
		result = ioctl(fd, request, argument);
	} while (result == -1 && (errno == EINTR || errno == EAGAIN));
	return result;
}

static int io_fail(const char *what, int error)
{
	return npu_fail(NPU_ERR_IO, "%s failed: %s (errno %d)", what, strerror(error), error);
}

/* DRM_IOCTL_VERSION: fills name/version/desc; NPU_ERR_NO_DEVICE if it is not rocket. */
static int read_version(int fd, const char *path, struct npu_dev_info *info)
{
	char name[sizeof info->driver_name] = "", date[32] = "", desc[sizeof info->driver_desc] = "";
	struct drm_version version = {
		.name_len = sizeof name - 1, .name = name,
		.date_len = sizeof date - 1, .date = date,
		.desc_len = sizeof desc - 1, .desc = desc,
	};
	if (xioctl(fd, DRM_IOCTL_VERSION, &version))
		return npu_fail(NPU_ERR_NO_DEVICE, "DRM_IOCTL_VERSION on %s failed: %s (errno %d)", path,
				strerror(errno), errno);
	name[sizeof name - 1] = desc[sizeof desc - 1] = '\0';
	if (strcmp(name, "rocket") != 0)
		return npu_fail(NPU_ERR_NO_DEVICE, "%s is driven by '%s', not rocket", path, name);
	snprintf(info->driver_name, sizeof info->driver_name, "%s", name);
	snprintf(info->driver_desc, sizeof info->driver_desc, "%s", desc);
	snprintf(info->driver_version, sizeof info->driver_version, "%d.%d.%d", version.version_major,
		 version.version_minor, version.version_patchlevel);
	return NPU_OK;
}

static unsigned count_bound_cores(void)
{
	DIR *dir = opendir(ROCKET_DRIVER_SYSFS);
	if (!dir)
		return 0;
	unsigned cores = 0;
	struct dirent *entry;
	while ((entry = readdir(dir))) {
		size_t length = strlen(entry->d_name);
		if (length > 4 && strcmp(entry->d_name + length - 4, ".npu") == 0)
			cores++;
	}
	closedir(dir);
	return cores;
}

static int open_node(const char *path, int *fd)
{
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return npu_fail(errno == ENOENT ? NPU_ERR_NO_DEVICE : NPU_ERR_IO, "open %s failed: %s (errno %d)",
				path, strerror(errno), errno);
	return NPU_OK;
}

static int find_node(char *path, size_t size)
{
	for (int minor = 0; minor < 16; minor++) {
		snprintf(path, size, "/dev/accel/accel%d", minor);
		if (access(path, F_OK) != 0)
			continue;
		int fd;
		if (open_node(path, &fd))
			continue;
		struct npu_dev_info probe = {0};
		int status = read_version(fd, path, &probe);
		close(fd);
		if (status == NPU_OK)
			return NPU_OK;
	}
	return npu_fail(NPU_ERR_NO_DEVICE, "no /dev/accel/accel* node driven by rocket (set %s=model to use the "
			"software model instead)", NPU_BACKEND_ENV);
}

static int rocket_bo_create(struct npu_dev *dev, unsigned lane, size_t size, struct npu_bo *bo)
{
	struct drm_rocket_create_bo create = {.size = (__u32)size};
	int fd = lane_fd(dev, lane);
	if (xioctl(fd, DRM_IOCTL_ROCKET_CREATE_BO, &create))
		return io_fail("DRM_IOCTL_ROCKET_CREATE_BO", errno);
	void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)create.offset);
	if (map == MAP_FAILED) {
		int error = errno;
		struct drm_gem_close gem_close = {.handle = create.handle};
		xioctl(fd, DRM_IOCTL_GEM_CLOSE, &gem_close);
		return io_fail("mmap of a rocket BO", error);
	}
	if (create.dma_address + size > NPU_ADDRESS_WINDOW) {
		munmap(map, size);
		struct drm_gem_close gem_close = {.handle = create.handle};
		xioctl(fd, DRM_IOCTL_GEM_CLOSE, &gem_close);
		return npu_fail(NPU_ERR_LIMIT, "BO at NPU address 0x%llx does not fit the 32-bit register fields",
				(unsigned long long)create.dma_address);
	}
	bo->handle = create.handle;
	bo->size = (uint32_t)size;
	bo->dma_address = create.dma_address;
	bo->mmap_offset = create.offset;
	bo->map = map;
	return NPU_OK;
}

static void rocket_bo_destroy(struct npu_dev *dev, struct npu_bo *bo)
{
	munmap(bo->map, bo->size);
	struct drm_gem_close gem_close = {.handle = bo->handle};
	xioctl(lane_fd(dev, bo->lane), DRM_IOCTL_GEM_CLOSE, &gem_close);
}

static int rocket_bo_cpu_begin(struct npu_dev *dev, const struct npu_bo *bo, int64_t deadline_ns)
{
	struct drm_rocket_prep_bo prep = {.handle = bo->handle, .timeout_ns = deadline_ns};
	if (xioctl(lane_fd(dev, bo->lane), DRM_IOCTL_ROCKET_PREP_BO, &prep)) {
		if (errno == ETIMEDOUT || errno == EBUSY)
			return npu_fail(NPU_ERR_TIMEOUT, "DRM_IOCTL_ROCKET_PREP_BO: the NPU job did not finish before "
					"the deadline (%s)", strerror(errno));
		return io_fail("DRM_IOCTL_ROCKET_PREP_BO", errno);
	}
	return NPU_OK;
}

static int rocket_bo_cpu_end(struct npu_dev *dev, const struct npu_bo *bo)
{
	struct drm_rocket_fini_bo fini = {.handle = bo->handle};
	if (xioctl(lane_fd(dev, bo->lane), DRM_IOCTL_ROCKET_FINI_BO, &fini))
		return io_fail("DRM_IOCTL_ROCKET_FINI_BO", errno);
	return NPU_OK;
}

static int rocket_submit(struct npu_dev *dev, unsigned lane, const struct npu_task *tasks, unsigned task_count,
			 const struct npu_bo *const *in_bos, unsigned in_count,
			 const struct npu_bo *const *out_bos, unsigned out_count)
{
	struct drm_rocket_task rtasks[task_count];
	__u32 in_handles[in_count + 1], out_handles[out_count + 1];
	for (unsigned i = 0; i < task_count; i++) {
		rtasks[i].regcmd = tasks[i].regcmd;
		rtasks[i].regcmd_count = tasks[i].regcmd_count;
	}
	for (unsigned i = 0; i < in_count; i++)
		in_handles[i] = in_bos[i]->handle;
	for (unsigned i = 0; i < out_count; i++)
		out_handles[i] = out_bos[i]->handle;
	struct drm_rocket_job job = {
		.tasks = (__u64)(uintptr_t)rtasks,
		.in_bo_handles = (__u64)(uintptr_t)in_handles,
		.out_bo_handles = (__u64)(uintptr_t)out_handles,
		.task_count = task_count,
		.task_struct_size = sizeof(struct drm_rocket_task),
		.in_bo_handle_count = in_count,
		.out_bo_handle_count = out_count,
	};
	struct drm_rocket_submit submit = {
		.jobs = (__u64)(uintptr_t)&job,
		.job_count = 1,
		.job_struct_size = sizeof job,
	};
	if (xioctl(lane_fd(dev, lane), DRM_IOCTL_ROCKET_SUBMIT, &submit))
		return io_fail("DRM_IOCTL_ROCKET_SUBMIT", errno);
	return NPU_OK;
}

static void close_fds(struct rocket *rocket)
{
	for (unsigned i = 0; i < NPU_MAX_LANES; i++)
		if (rocket->fds[i] >= 0)
			close(rocket->fds[i]);
	free(rocket);
}

static void rocket_close(struct npu_dev *dev)
{
	close_fds(dev->backend);
}

static const struct npu_backend_ops rocket_ops = {
	.bo_create = rocket_bo_create,
	.bo_destroy = rocket_bo_destroy,
	.bo_cpu_begin = rocket_bo_cpu_begin,
	.bo_cpu_end = rocket_bo_cpu_end,
	.submit = rocket_submit,
	.close = rocket_close,
};

/* The node to open: the caller's, or the first accel node the rocket driver owns. */
static int choose_node(struct npu_dev_info *info, const struct npu_open_options *options)
{
	if (!options->device_path)
		return find_node(info->device_path, sizeof info->device_path);
	snprintf(info->device_path, sizeof info->device_path, "%s", options->device_path);
	return NPU_OK;
}

/* One fd per lane; the first names the driver, so a node of another driver is refused before any use. */
static int open_lanes(struct rocket *rocket, struct npu_dev_info *info, unsigned lanes)
{
	for (unsigned lane = 0; lane < lanes; lane++) {
		int status = open_node(info->device_path, &rocket->fds[lane]);
		if (!status && lane == 0)
			status = read_version(rocket->fds[0], info->device_path, info);
		if (status)
			return status;
	}
	return NPU_OK;
}

int npu_rocket_open(struct npu_dev *dev, const struct npu_open_options *options)
{
	struct npu_dev_info *info = &dev->info;
	info->backend = "rocket";
	int status = choose_node(info, options);
	if (status)
		return status;
	info->cores = count_bound_cores();
	unsigned lanes = options->lanes ? options->lanes : info->cores;
	if (lanes == 0)
		return npu_fail(NPU_ERR_NO_DEVICE, "no NPU core is bound to rocket (%s has no *.npu entry)",
				ROCKET_DRIVER_SYSFS);
	if (lanes > NPU_MAX_LANES)
		lanes = NPU_MAX_LANES;
	struct rocket *rocket = malloc(sizeof *rocket);
	if (!rocket)
		return npu_fail(NPU_ERR_NOMEM, "npu_open: out of memory");
	for (unsigned i = 0; i < NPU_MAX_LANES; i++)
		rocket->fds[i] = -1;
	status = open_lanes(rocket, info, lanes);
	if (status) {
		close_fds(rocket);
		return status;
	}
	info->lanes = lanes;
	dev->backend = rocket;
	dev->ops = &rocket_ops;
	return NPU_OK;
}
