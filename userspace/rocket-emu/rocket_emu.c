/* SPDX-License-Identifier: MIT */
/*
 * librocket-emu: the rocket DRM-accel device of Linux 7.2 emulated in userspace, for LD_PRELOAD.
 *
 * open() of the emulated node (ROCKET_EMU_DEVICE, default /dev/accel/accel0) gives a file whose ioctls
 * behave as drivers/accel/rocket and the DRM core implement them: DRM_IOCTL_VERSION "rocket",
 * CREATE_BO (handle, a private NPU address in the fd's 4 GiB window, a fake mmap offset above the
 * window as drm_vma gives), SUBMIT of jobs and tasks with in/out BO handles, PREP_BO waiting for the
 * BO's writers until an absolute CLOCK_MONOTONIC deadline judged in NPU time (emu_prep_bo), FINI_BO,
 * GEM_CLOSE. Each fd is one
 * scheduling entity (its jobs run in order, on a worker thread) and the three cores are shared by all
 * fds. Each task runs on the software NPU model's interpreter. The driver's traps are kept: SUBMIT
 * returns 0 for a job it drops (unknown handle, empty task list, bad struct size), a job still running
 * after 500 ms of NPU time (at ROCKET_EMU_CLOCK_HZ, 200 MHz as the mainline DT assigns) is reset with
 * its outputs left as garbage, and a stream the model refuses is reset the same way (on hardware it
 * would hang until the timeout); ROCKET_EMU_FAULTS=reject@N,timeout@M drops or resets the Nth/Mth job.
 * DRM_IOCTL_VERSION's description says the device is emulated, so every report that names the driver
 * says so too. A dup() or F_DUPFD of the node's fd names the same DRM file, as in the kernel (Mesa
 * duplicates the fd it opened and works on the copy), and a task may touch any BO of its file, as the
 * IOMMU domain the kernel maps them into allows (Mesa lists neither its command nor its bias BOs).
 *
 * Why LD_PRELOAD and not CUSE: libnpu maps its BOs with mmap() on the device fd, which CUSE does not
 * support, and CUSE needs the cuse kernel module and root; a preloaded library needs neither and runs
 * the same under qemu-aarch64 (QEMU_SET_ENV=LD_PRELOAD=...) and on the virtual board.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "npu_interpreter.h"
#include "rocket_accel.h"

#define EMU_CORES 3u
#define EMU_JOB_TIMEOUT_MS 500u           /* drivers/accel/rocket/rocket_job.c JOB_TIMEOUT_MS */
#define EMU_DEFAULT_CLOCK_HZ 200000000ull /* assigned-clock-rates of rk3588-base.dtsi */
#define EMU_MMAP_OFFSET_START 0x10000000ull /* DRM_FILE_PAGE_OFFSET_START on 64-bit, in bytes */
#define EMU_PAGE 4096u
#define EMU_MAX_DESCRIPTORS 64u
#define EMU_GARBAGE 0xa5u
#define EMU_DRIVER_SYSFS "/sys/bus/platform/drivers/rocket"

struct emu_bo {
	uint32_t handle;
	uint32_t size;
	uint64_t mmap_offset;
	int memfd;
	uint8_t *memory;  /* the emulator's own mapping */
	unsigned writers; /* queued or running jobs that list it as an output */
	int64_t ready_ns; /* when its last writer ends in NPU time (emu_prep_bo says why) */
};

struct emu_job {
	struct npu_task *tasks;
	uint32_t *in_handles, *out_handles;
	unsigned task_count, in_count, out_count;
	unsigned sequence; /* 1-based, over the process */
	int64_t submitted_ns;
	struct emu_job *next;
};

struct emu_file {
	unsigned descriptors; /* open fds naming it: dup() gives the same DRM file, as in the kernel */
	struct npu_space space;
	pthread_rwlock_t space_lock; /* a running job reads the space; CREATE_BO and GEM_CLOSE change it */
	struct emu_bo *bos;
	unsigned bo_count, bo_capacity;
	uint64_t next_offset;
	struct emu_job *head, *tail; /* this fd's queue: one scheduling entity */
	int closing;
	int64_t npu_free_ns; /* when this fd's last job ends in NPU time: its jobs run one after another */
	pthread_t worker;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* a job finished or was queued */
};

static struct {
	pthread_mutex_t lock; /* the descriptor table and the job counter */
	struct {
		int fd; /* a real memfd, so the number is not reused while it is open */
		struct emu_file *file;
	} descriptors[EMU_MAX_DESCRIPTORS];
	unsigned jobs_submitted;
	unsigned cores_free;
	pthread_mutex_t core_lock;
	pthread_cond_t core_free;
	char device[256];
	char sysfs_dir[64];
	pid_t sysfs_owner;
	uint64_t clock_hz;
	uint64_t cycle_budget;
	unsigned reject_job, timeout_job;
} emu = {PTHREAD_MUTEX_INITIALIZER, {{0, NULL}}, 0, EMU_CORES, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	 "", "", 0, 0, 0, 0, 0};

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_access)(const char *, int);
static DIR *(*real_opendir)(const char *);
static int (*real_dup)(int);
static int (*real_fcntl)(int, int, ...);

/* The C library's own functions, looked up on first use: a library loaded before this one may call
 * mmap or open before any constructor here has run. */
static void find_real_functions(void)
{
	real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
	real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	real_mmap = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
	real_access = (int (*)(const char *, int))dlsym(RTLD_NEXT, "access");
	real_opendir = (DIR * (*)(const char *)) dlsym(RTLD_NEXT, "opendir");
	real_dup = (int (*)(int))dlsym(RTLD_NEXT, "dup");
	real_fcntl = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl");
}

static pthread_once_t real_functions_once = PTHREAD_ONCE_INIT;
#define REAL(function) (pthread_once(&real_functions_once, find_real_functions), real_##function)

/* Bytes a BO takes in memory and in the fake mmap offsets: whole pages. */
static size_t bo_span(uint32_t size)
{
	return ((size_t)size + EMU_PAGE - 1) / EMU_PAGE * EMU_PAGE;
}

static void emu_log(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void emu_log(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	fputs("rocket-emu: ", stderr);
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
	va_end(args);
}

static unsigned fault_job(const char *faults, const char *kind)
{
	const char *at = faults ? strstr(faults, kind) : NULL;
	return at && at[strlen(kind)] == '@' ? (unsigned)strtoul(at + strlen(kind) + 1, NULL, 10) : 0;
}

/* The sysfs folder libnpu counts bound cores in: one *.npu entry per core, as the kernel names them
 * (rk3588-base.dtsi), made on first use so processes that never look at it leave nothing behind. */
static const char *const emu_core_names[EMU_CORES] = {"fdab0000.npu", "fdac0000.npu", "fdad0000.npu"};

static void core_path(char *path, size_t size, unsigned core)
{
	snprintf(path, size, "%s/%s", emu.sysfs_dir, emu_core_names[core]);
}

static void make_sysfs(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(emu.sysfs_dir, sizeof emu.sysfs_dir, "%s/rocket-emu-sysfs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(emu.sysfs_dir)) {
		emu.sysfs_dir[0] = '\0';
		return;
	}
	emu.sysfs_owner = getpid();
	for (unsigned i = 0; i < EMU_CORES; i++) {
		char path[128];
		core_path(path, sizeof path, i);
		int fd = REAL(open)(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0)
			REAL(close)(fd);
	}
}

__attribute__((constructor)) static void emu_init(void)
{
	const char *device = getenv("ROCKET_EMU_DEVICE");
	snprintf(emu.device, sizeof emu.device, "%s", device && *device ? device : "/dev/accel/accel0");
	const char *clock = getenv("ROCKET_EMU_CLOCK_HZ");
	uint64_t hz = clock && *clock ? strtoull(clock, NULL, 10) : EMU_DEFAULT_CLOCK_HZ;
	emu.clock_hz = hz ? hz : EMU_DEFAULT_CLOCK_HZ;
	emu.cycle_budget = emu.clock_hz * EMU_JOB_TIMEOUT_MS / 1000;
	const char *faults = getenv("ROCKET_EMU_FAULTS");
	emu.reject_job = fault_job(faults, "reject");
	emu.timeout_job = fault_job(faults, "timeout");
}

__attribute__((destructor)) static void emu_fini(void)
{
	if (!emu.sysfs_dir[0] || emu.sysfs_owner != getpid()) /* a forked child leaves its parent's folder */
		return;
	for (unsigned i = 0; i < EMU_CORES; i++) {
		char path[128];
		core_path(path, sizeof path, i);
		unlink(path);
	}
	rmdir(emu.sysfs_dir);
}

static struct emu_file *file_of(int fd)
{
	pthread_mutex_lock(&emu.lock);
	struct emu_file *found = NULL;
	for (unsigned i = 0; i < EMU_MAX_DESCRIPTORS && !found; i++)
		if (emu.descriptors[i].file && emu.descriptors[i].fd == fd)
			found = emu.descriptors[i].file;
	pthread_mutex_unlock(&emu.lock);
	return found;
}

/* Records fd as naming file; with emu.lock held. Returns 0, or -1 when the table is full. */
static int add_descriptor(int fd, struct emu_file *file)
{
	for (unsigned i = 0; i < EMU_MAX_DESCRIPTORS; i++)
		if (!emu.descriptors[i].file) {
			emu.descriptors[i].fd = fd;
			emu.descriptors[i].file = file;
			file->descriptors++;
			return 0;
		}
	return -1;
}

/* Forgets fd; with emu.lock held. Returns its file when fd was the last descriptor naming it. */
static struct emu_file *remove_descriptor(int fd)
{
	for (unsigned i = 0; i < EMU_MAX_DESCRIPTORS; i++)
		if (emu.descriptors[i].file && emu.descriptors[i].fd == fd) {
			struct emu_file *file = emu.descriptors[i].file;
			emu.descriptors[i].file = NULL;
			return --file->descriptors ? NULL : file;
		}
	return NULL;
}

static struct emu_bo *bo_of(struct emu_file *file, uint32_t handle)
{
	for (unsigned i = 0; i < file->bo_count; i++)
		if (file->bos[i].handle == handle)
			return &file->bos[i];
	return NULL;
}

/* ---- the scheduler: one worker per fd, three cores between them ---- */

static void take_core(void)
{
	pthread_mutex_lock(&emu.core_lock);
	while (!emu.cores_free)
		pthread_cond_wait(&emu.core_free, &emu.core_lock);
	emu.cores_free--;
	pthread_mutex_unlock(&emu.core_lock);
}

static void give_core(void)
{
	pthread_mutex_lock(&emu.core_lock);
	emu.cores_free++;
	pthread_cond_signal(&emu.core_free);
	pthread_mutex_unlock(&emu.core_lock);
}

/* A reset job: its outputs hold whatever was in flight. */
static void reset_outputs(struct emu_file *file, const struct emu_job *job)
{
	for (unsigned i = 0; i < job->out_count; i++) {
		struct npu_space_bo *bo = npu_space_find(&file->space, job->out_handles[i]);
		if (bo)
			memset(bo->memory, EMU_GARBAGE, bo->size);
	}
}

/* Runs the job on the interpreter; returns how long the NPU would take for it, in ns. */
static int64_t run_job(struct emu_file *file, struct emu_job *job)
{
	struct npu_job npu_job = {job->tasks, job->in_handles, job->in_count, job->out_handles, job->out_count,
				  emu.cycle_budget, 0};
	unsigned tasks = job->sequence == emu.timeout_job ? job->task_count / 2 : job->task_count;
	uint64_t cycles = 0;
	pthread_rwlock_rdlock(&file->space_lock);
	int status = npu_space_run_job(&file->space, &npu_job, tasks, &cycles);
	if (status || job->sequence == emu.timeout_job) {
		if (status && status != NPU_ERR_TIMEOUT)
			emu_log("job %u: the NPU would hang on this stream, reset at the timeout: %s", job->sequence,
				npu_error());
		else
			emu_log("job %u timed out after %u ms of NPU time: core reset", job->sequence,
				EMU_JOB_TIMEOUT_MS);
		reset_outputs(file, job);
		cycles = emu.cycle_budget;
	}
	pthread_rwlock_unlock(&file->space_lock);
	return (int64_t)(cycles * 1000000000u / emu.clock_hz);
}

static void free_job(struct emu_job *job)
{
	free(job->tasks), free(job->in_handles), free(job->out_handles), free(job);
}

static void *worker(void *argument)
{
	struct emu_file *file = argument;
	pthread_mutex_lock(&file->lock);
	for (;;) {
		while (!file->head && !file->closing)
			pthread_cond_wait(&file->changed, &file->lock);
		if (!file->head)
			break;
		struct emu_job *job = file->head;
		pthread_mutex_unlock(&file->lock);
		take_core();
		int64_t npu_ns = run_job(file, job);
		give_core();
		pthread_mutex_lock(&file->lock);
		int64_t start = job->submitted_ns > file->npu_free_ns ? job->submitted_ns : file->npu_free_ns;
		file->npu_free_ns = start + npu_ns;
		file->head = job->next;
		if (!file->head)
			file->tail = NULL;
		for (unsigned i = 0; i < job->out_count; i++) {
			struct emu_bo *bo = bo_of(file, job->out_handles[i]);
			if (bo) {
				bo->writers--;
				if (bo->ready_ns < file->npu_free_ns)
					bo->ready_ns = file->npu_free_ns;
			}
		}
		free_job(job);
		pthread_cond_broadcast(&file->changed);
	}
	pthread_mutex_unlock(&file->lock);
	return NULL;
}

/* ---- ioctls ---- */

static void copy_string(char *destination, __kernel_size_t *length, const char *value)
{
	size_t actual = strlen(value);
	if (destination && *length)
		memcpy(destination, value, actual < *length ? actual : *length);
	*length = actual;
}

static int emu_version(struct drm_version *version)
{
	version->version_major = 0; /* the driver sets none: drm prints "rocket 0.0.0" */
	version->version_minor = 0;
	version->version_patchlevel = 0;
	copy_string(version->name, &version->name_len, "rocket");
	copy_string(version->date, &version->date_len, "0");
	copy_string(version->desc, &version->desc_len,
		    "rocket DRM, emulated in userspace (software NPU model)");
	return 0;
}

static int emu_create_bo(struct emu_file *file, struct drm_rocket_create_bo *args)
{
	if (args->size == 0)
		return -EINVAL;
	size_t span = bo_span(args->size);
	int memfd = memfd_create("rocket-emu-bo", MFD_CLOEXEC);
	if (memfd < 0)
		return -errno;
	if (ftruncate(memfd, (off_t)span)) {
		int error = errno;
		REAL(close)(memfd);
		return -error;
	}
	uint8_t *memory = REAL(mmap)(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (memory == MAP_FAILED) {
		int error = errno;
		REAL(close)(memfd);
		return -error;
	}
	pthread_mutex_lock(&file->lock);
	int result = 0;
	struct npu_space_bo placed;
	if (file->bo_count == file->bo_capacity) {
		unsigned capacity = file->bo_capacity ? file->bo_capacity * 2 : 16;
		struct emu_bo *bos = realloc(file->bos, capacity * sizeof *bos);
		if (!bos)
			result = -ENOMEM;
		else
			file->bos = bos, file->bo_capacity = capacity;
	}
	pthread_rwlock_wrlock(&file->space_lock);
	if (!result && npu_space_add(&file->space, args->size, memory, &placed))
		result = -ENOSPC; /* drm_mm_insert_node_generic: no hole in the 4 GiB window */
	pthread_rwlock_unlock(&file->space_lock);
	if (!result) {
		file->bos[file->bo_count++] = (struct emu_bo){placed.handle, args->size, file->next_offset, memfd,
							      memory, 0, 0};
		args->handle = placed.handle;
		args->dma_address = placed.address;
		args->offset = file->next_offset;
		file->next_offset += span;
	}
	pthread_mutex_unlock(&file->lock);
	if (result) {
		munmap(memory, span);
		REAL(close)(memfd);
	}
	return result;
}

static void wait_idle_bo(struct emu_file *file, uint32_t handle)
{
	struct emu_bo *bo;
	while ((bo = bo_of(file, handle)) && bo->writers)
		pthread_cond_wait(&file->changed, &file->lock);
}

static int emu_gem_close(struct emu_file *file, const struct drm_gem_close *args)
{
	pthread_mutex_lock(&file->lock);
	wait_idle_bo(file, args->handle); /* the kernel keeps a BO alive while a job holds it */
	struct emu_bo *bo = bo_of(file, args->handle);
	if (!bo) {
		pthread_mutex_unlock(&file->lock);
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&file->space_lock);
	npu_space_remove(&file->space, bo->handle);
	pthread_rwlock_unlock(&file->space_lock);
	munmap(bo->memory, bo_span(bo->size));
	REAL(close)(bo->memfd);
	*bo = file->bos[--file->bo_count];
	pthread_mutex_unlock(&file->lock);
	return 0;
}

/* rocket_ioctl_prep_bo(): a deadline already past turns into a zero wait, which fails with -EBUSY on a
 * busy BO; a wait that runs out fails with -ETIMEDOUT. "Busy" is judged in NPU time: the interpreter is
 * slower than the NPU, so PREP_BO first waits for it to finish the BO's jobs, whatever the deadline,
 * then answers as the hardware would have, from when those jobs end at the NPU's speed (sleeping until
 * then when that is still ahead), so a deadline a board meets is met here too. */
static int emu_prep_bo(struct emu_file *file, const struct drm_rocket_prep_bo *args)
{
	if (args->reserved)
		return -EINVAL;
	int64_t called = npu_monotonic_ns();
	pthread_mutex_lock(&file->lock);
	wait_idle_bo(file, args->handle);
	struct emu_bo *bo = bo_of(file, args->handle);
	int64_t ready = bo ? bo->ready_ns : 0;
	pthread_mutex_unlock(&file->lock);
	if (!bo)
		return -ENOENT;
	if (ready <= called)
		return 0;
	if (args->timeout_ns <= called)
		return -EBUSY;
	int64_t until = ready <= args->timeout_ns ? ready : args->timeout_ns;
	struct timespec wake = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL) == EINTR)
		;
	return ready <= args->timeout_ns ? 0 : -ETIMEDOUT;
}

static int emu_fini_bo(struct emu_file *file, const struct drm_rocket_fini_bo *args)
{
	if (args->reserved)
		return -EINVAL;
	pthread_mutex_lock(&file->lock);
	int result = bo_of(file, args->handle) ? 0 : -ENOENT;
	pthread_mutex_unlock(&file->lock);
	return result;
}

static uint32_t *copy_handles(struct emu_file *file, __u64 user, unsigned count, int *ok)
{
	uint32_t *handles = malloc((count + 1) * sizeof *handles);
	if (!handles) {
		*ok = 0;
		return NULL;
	}
	for (unsigned i = 0; i < count; i++) {
		handles[i] = ((const uint32_t *)(uintptr_t)user)[i];
		if (!bo_of(file, handles[i]))
			*ok = 0; /* drm_gem_objects_lookup: -ENOENT, and the job is dropped */
	}
	return handles;
}

/* rocket_ioctl_submit_job(): an error drops the job, and rocket_ioctl_submit() ignores it. */
static void submit_job(struct emu_file *file, const struct drm_rocket_job *args)
{
	unsigned sequence;
	pthread_mutex_lock(&emu.lock);
	sequence = ++emu.jobs_submitted;
	pthread_mutex_unlock(&emu.lock);
	if (args->task_count == 0 || args->task_struct_size < sizeof(struct drm_rocket_task)) {
		emu_log("job %u dropped: %u tasks of %u bytes", sequence, args->task_count, args->task_struct_size);
		return;
	}
	struct emu_job *job = calloc(1, sizeof *job);
	if (!job)
		return;
	job->sequence = sequence;
	job->submitted_ns = npu_monotonic_ns();
	job->task_count = args->task_count;
	job->tasks = malloc(args->task_count * sizeof *job->tasks);
	int ok = job->tasks != NULL;
	for (unsigned i = 0; ok && i < args->task_count; i++) {
		const struct drm_rocket_task *task = (const void *)(uintptr_t)(args->tasks + (__u64)i * args->task_struct_size);
		job->tasks[i] = (struct npu_task){task->regcmd, task->regcmd_count};
		ok = task->regcmd_count != 0;
	}
	pthread_mutex_lock(&file->lock);
	job->in_handles = copy_handles(file, args->in_bo_handles, args->in_bo_handle_count, &ok);
	job->out_handles = copy_handles(file, args->out_bo_handles, args->out_bo_handle_count, &ok);
	job->in_count = args->in_bo_handle_count;
	job->out_count = args->out_bo_handle_count;
	if (!ok || sequence == emu.reject_job) {
		pthread_mutex_unlock(&file->lock);
		emu_log("job %u dropped by SUBMIT (which still returns 0)", sequence);
		free_job(job);
		return;
	}
	for (unsigned i = 0; i < job->out_count; i++)
		bo_of(file, job->out_handles[i])->writers++;
	if (file->tail)
		file->tail->next = job;
	else
		file->head = job;
	file->tail = job;
	pthread_cond_broadcast(&file->changed);
	pthread_mutex_unlock(&file->lock);
}

static int emu_submit(struct emu_file *file, const struct drm_rocket_submit *args)
{
	if (args->job_count == 0)
		return 0;
	if (args->job_struct_size < sizeof(struct drm_rocket_job) || args->reserved)
		return -EINVAL;
	for (unsigned i = 0; i < args->job_count; i++)
		submit_job(file, (const void *)(uintptr_t)(args->jobs + (__u64)i * args->job_struct_size));
	return 0;
}

static int emu_ioctl(struct emu_file *file, unsigned long request, void *argument)
{
	switch (request) {
	case DRM_IOCTL_VERSION: return emu_version(argument);
	case DRM_IOCTL_GEM_CLOSE: return emu_gem_close(file, argument);
	case DRM_IOCTL_ROCKET_CREATE_BO: return emu_create_bo(file, argument);
	case DRM_IOCTL_ROCKET_SUBMIT: return emu_submit(file, argument);
	case DRM_IOCTL_ROCKET_PREP_BO: return emu_prep_bo(file, argument);
	case DRM_IOCTL_ROCKET_FINI_BO: return emu_fini_bo(file, argument);
	default: return -ENOTTY;
	}
}

/* ---- open / close ---- */

static int emu_open_file(void)
{
	int fd = memfd_create("rocket-emu-file", MFD_CLOEXEC); /* a real descriptor: not reused while open */
	if (fd < 0)
		return -1;
	struct emu_file *file = calloc(1, sizeof *file);
	if (!file) {
		REAL(close)(fd);
		errno = ENOMEM;
		return -1;
	}
	file->next_offset = EMU_MMAP_OFFSET_START;
	pthread_mutex_init(&file->lock, NULL);
	pthread_rwlock_init(&file->space_lock, NULL);
	pthread_cond_init(&file->changed, NULL);
	pthread_mutex_lock(&emu.lock);
	if (add_descriptor(fd, file)) {
		pthread_mutex_unlock(&emu.lock);
		goto err_close;
	}
	if (pthread_create(&file->worker, NULL, worker, file)) {
		remove_descriptor(fd);
		pthread_mutex_unlock(&emu.lock);
		goto err_close;
	}
	pthread_mutex_unlock(&emu.lock);
	return fd;

err_close:
	REAL(close)(fd);
	free(file);
	errno = EMFILE;
	return -1;
}

/* dup() and F_DUPFD of an emulated fd: a second descriptor of the same DRM file. */
static int emu_dup(int fd, int duplicate)
{
	struct emu_file *file = file_of(fd);
	if (!file || duplicate < 0)
		return duplicate;
	pthread_mutex_lock(&emu.lock);
	int full = add_descriptor(duplicate, file);
	pthread_mutex_unlock(&emu.lock);
	if (full) {
		REAL(close)(duplicate);
		errno = EMFILE;
		return -1;
	}
	return duplicate;
}

/* Closing its last fd lets the file's queued jobs finish, then frees its BOs; mappings stay valid until munmap. */
static void emu_close_file(struct emu_file *file)
{
	pthread_mutex_lock(&file->lock);
	file->closing = 1;
	pthread_cond_broadcast(&file->changed);
	pthread_mutex_unlock(&file->lock);
	pthread_join(file->worker, NULL);
	for (unsigned i = 0; i < file->bo_count; i++) {
		munmap(file->bos[i].memory, bo_span(file->bos[i].size));
		REAL(close)(file->bos[i].memfd);
	}
	npu_space_release(&file->space);
	free(file->bos);
	pthread_cond_destroy(&file->changed);
	pthread_mutex_destroy(&file->lock);
	pthread_rwlock_destroy(&file->space_lock);
	free(file);
}

static int is_device(const char *path)
{
	return strcmp(path, emu.device) == 0;
}

/* ---- the interposed C library calls ---- */

#define MODE_ARGUMENT(flags, mode)                          \
	do {                                                \
		if ((flags) & (O_CREAT | O_TMPFILE)) {      \
			va_list args_;                      \
			va_start(args_, flags);             \
			mode = va_arg(args_, mode_t);       \
			va_end(args_);                      \
		}                                           \
	} while (0)

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARGUMENT(flags, mode);
	return is_device(path) ? emu_open_file() : REAL(open)(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARGUMENT(flags, mode);
	return is_device(path) ? emu_open_file() : REAL(open)(path, flags | O_LARGEFILE, mode);
}

int openat(int directory, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARGUMENT(flags, mode);
	return is_device(path) ? emu_open_file() : REAL(openat)(directory, path, flags, mode);
}

int openat64(int directory, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARGUMENT(flags, mode);
	return is_device(path) ? emu_open_file() : REAL(openat)(directory, path, flags | O_LARGEFILE, mode);
}

int close(int fd)
{
	pthread_mutex_lock(&emu.lock);
	struct emu_file *last = remove_descriptor(fd);
	pthread_mutex_unlock(&emu.lock);
	if (last)
		emu_close_file(last);
	return REAL(close)(fd);
}

int dup(int fd)
{
	return emu_dup(fd, REAL(dup)(fd));
}

/* fcntl with its argument read: an int or a pointer, as the command says; a pointer-sized read carries both. */
static int emu_fcntl(int fd, int command, void *argument)
{
	int result = REAL(fcntl)(fd, command, argument);
	return command == F_DUPFD || command == F_DUPFD_CLOEXEC ? emu_dup(fd, result) : result;
}

int fcntl(int fd, int command, ...)
{
	va_list args;
	va_start(args, command);
	void *argument = va_arg(args, void *);
	va_end(args);
	return emu_fcntl(fd, command, argument);
}

/* glibc 2.28's name for fcntl with 64-bit offsets, which programs built since then call (Mesa does). */
int fcntl64(int fd, int command, ...)
{
	va_list args;
	va_start(args, command);
	void *argument = va_arg(args, void *);
	va_end(args);
	return emu_fcntl(fd, command, argument);
}

int ioctl(int fd, unsigned long request, ...)
{
	va_list args;
	va_start(args, request);
	void *argument = va_arg(args, void *);
	va_end(args);
	struct emu_file *file = file_of(fd);
	if (!file)
		return REAL(ioctl)(fd, request, argument);
	int result = emu_ioctl(file, request, argument);
	if (result < 0) {
		errno = -result;
		return -1;
	}
	return result;
}

void *mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset)
{
	struct emu_file *file = file_of(fd);
	if (!file)
		return REAL(mmap)(address, length, protection, flags, fd, offset);
	pthread_mutex_lock(&file->lock);
	int memfd = -1;
	for (unsigned i = 0; i < file->bo_count; i++)
		if (file->bos[i].mmap_offset == (uint64_t)offset && length <= file->bos[i].size + EMU_PAGE - 1)
			memfd = file->bos[i].memfd;
	pthread_mutex_unlock(&file->lock);
	if (memfd < 0) {
		errno = EINVAL; /* drm_gem_mmap: no object at this fake offset */
		return MAP_FAILED;
	}
	return REAL(mmap)(address, length, protection, flags, memfd, 0);
}

void *mmap64(void *address, size_t length, int protection, int flags, int fd, off_t offset)
{
	return mmap(address, length, protection, flags, fd, offset);
}

int access(const char *path, int mode)
{
	return is_device(path) ? 0 : REAL(access)(path, mode);
}

DIR *opendir(const char *path)
{
	if (strcmp(path, EMU_DRIVER_SYSFS) == 0) {
		pthread_mutex_lock(&emu.lock);
		if (!emu.sysfs_dir[0])
			make_sysfs();
		pthread_mutex_unlock(&emu.lock);
		if (emu.sysfs_dir[0])
			return REAL(opendir)(emu.sysfs_dir);
	}
	return REAL(opendir)(path);
}
