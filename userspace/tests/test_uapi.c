/* SPDX-License-Identifier: MIT */
/* The vendored rocket UAPI: struct layouts and ioctl numbers, against values derived by hand from
 * the header text (_IOC: dir << 30 | size << 16 | 'd' << 8 | nr; DRM_COMMAND_BASE 0x40). */
#include <stddef.h>

#include "rocket_accel.h"
#include "support.h"

int main(void)
{
	CHECK(sizeof(struct drm_rocket_create_bo) == 24, "create_bo is %zu bytes", sizeof(struct drm_rocket_create_bo));
	CHECK(offsetof(struct drm_rocket_create_bo, dma_address) == 8, "dma_address offset");
	CHECK(offsetof(struct drm_rocket_create_bo, offset) == 16, "offset offset");
	CHECK(sizeof(struct drm_rocket_submit) == 24, "submit is %zu bytes", sizeof(struct drm_rocket_submit));
	CHECK(sizeof(struct drm_rocket_prep_bo) == 16, "prep_bo is %zu bytes", sizeof(struct drm_rocket_prep_bo));
	CHECK(sizeof(struct drm_rocket_fini_bo) == 8, "fini_bo is %zu bytes", sizeof(struct drm_rocket_fini_bo));
	CHECK(sizeof(struct drm_rocket_job) == 40, "job is %zu bytes", sizeof(struct drm_rocket_job));
	CHECK(sizeof(struct drm_rocket_task) == 8, "task is %zu bytes", sizeof(struct drm_rocket_task));
	/* _IOWR: dir 3; _IOW: dir 1 (asm-generic ioctl.h, used by arm64 and x86_64). */
	CHECK(DRM_IOCTL_ROCKET_CREATE_BO == 0xc0186440u, "CREATE_BO = 0x%lx", (unsigned long)DRM_IOCTL_ROCKET_CREATE_BO);
	CHECK(DRM_IOCTL_ROCKET_SUBMIT == 0x40186441u, "SUBMIT = 0x%lx", (unsigned long)DRM_IOCTL_ROCKET_SUBMIT);
	CHECK(DRM_IOCTL_ROCKET_PREP_BO == 0x40106442u, "PREP_BO = 0x%lx", (unsigned long)DRM_IOCTL_ROCKET_PREP_BO);
	CHECK(DRM_IOCTL_ROCKET_FINI_BO == 0x40086443u, "FINI_BO = 0x%lx", (unsigned long)DRM_IOCTL_ROCKET_FINI_BO);
	/* Generic DRM ioctls from our drm.h stand-in; 0xc0406400 is what rknpu_probe.py uses too. */
	CHECK(DRM_IOCTL_VERSION == 0xc0406400u, "VERSION = 0x%lx", (unsigned long)DRM_IOCTL_VERSION);
	CHECK(DRM_IOCTL_GEM_CLOSE == 0x40086409u, "GEM_CLOSE = 0x%lx", (unsigned long)DRM_IOCTL_GEM_CLOSE);
	printf("uapi: ok\n");
	return 0;
}
