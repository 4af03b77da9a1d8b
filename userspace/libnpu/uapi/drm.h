/* SPDX-License-Identifier: MIT */
/*
 * Minimal DRM UAPI definitions for rocket_accel.h and libnpu (see README.md): the subset of
 * include/uapi/drm/drm.h's ABI the library needs, written from its documented layout.
 */
#ifndef NPU_UAPI_DRM_H
#define NPU_UAPI_DRM_H

#include <linux/ioctl.h>
#include <linux/types.h>
#include <stddef.h>

#define DRM_IOCTL_BASE 'd'
#define DRM_IO(nr) _IO(DRM_IOCTL_BASE, nr)
#define DRM_IOR(nr, type) _IOR(DRM_IOCTL_BASE, nr, type)
#define DRM_IOW(nr, type) _IOW(DRM_IOCTL_BASE, nr, type)
#define DRM_IOWR(nr, type) _IOWR(DRM_IOCTL_BASE, nr, type)
#define DRM_COMMAND_BASE 0x40

struct drm_version {
	int version_major;
	int version_minor;
	int version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};

struct drm_gem_close {
	__u32 handle;
	__u32 pad;
};

#define DRM_IOCTL_VERSION DRM_IOWR(0x00, struct drm_version)
#define DRM_IOCTL_GEM_CLOSE DRM_IOW(0x09, struct drm_gem_close)

#endif
