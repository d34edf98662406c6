/*
 * A fake libnvidia-ml.so.1 for tests: implements the subset of NVML that vramtop uses, with
 * the ABI pynvml expects, and serves the GPUs described by the TOML scenario file named by
 * $FAKE_NVML_SCENARIO. vramtop/demo/simnvml.py must behave identically; the contract test in
 * tests/test_fake_nvml.py holds the two together, so change both or neither.
 *
 * Every exported NVML function takes one mutex, counts the call, and (once initialised)
 * re-reads the scenario if the file's (mtime, size, inode) changed, so a test can swap the
 * scenario (atomically) under a running program.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef int nvmlReturn_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_MEMORY = 20,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

#define NVML_MEMORY_V2_VERSION 0x02000028u
#define NVML_VALUE_NOT_AVAILABLE_ULL 0xFFFFFFFFFFFFFFFFull
#define NO_INSTANCE 0xFFFFFFFFu

#define MAX_GPUS 64
#define MAX_PROCS 256
#define MAX_MIGS 7
#define MAX_MIG_DEVICE_COUNT 7
/* Longest strings (bytes, without NUL); they always fit pynvml's buffers. A GPU name leaves
 * room for the " MIG" suffix of its MIG handles' names. */
#define MAX_NAME 91
#define MAX_UUID 95
#define MAX_VERSION 79
#define MAX_FILE_SIZE (16u << 20)
#define MAX_EVENTS 64
#define MAX_EVENT_SETS 8
#define MAX_SYMBOLS 128
#define MAX_NVLINKS 18
#define PSTATE_UNKNOWN 32
#define PCIE_SAMPLE_NS 20000000L /* NVML samples PCIe throughput over 20 ms per direction */

/* ------------------------------------------------------------------------------------------ */
/* ABI structures, laid out as pynvml's ctypes structures.                                     */

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

/* pynvml's c_nvmlProcessInfo_v2_t; it uses the same layout for the _v3 queries. */
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

struct nvmlDevice_st {
    unsigned gpu;
    int mig; /* -1: the GPU itself */
};
typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil;
    unsigned int memUtil;
    unsigned int encUtil;
    unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

enum {
    VT_DOUBLE = 0,
    VT_UINT = 1,
    VT_ULONG = 2,
    VT_ULL = 3,
    VT_SLL = 4,
    VT_SINT = 5,
    VT_USHORT = 6,
};

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    union {
        double dVal;
        unsigned int uiVal;
        unsigned long ulVal;
        unsigned long long ullVal;
        long long sllVal;
        int siVal;
        unsigned short usVal;
    } value;
} nvmlFieldValue_t;

struct nvmlEventSet_st {
    int used;
    unsigned long long registered[MAX_GPUS]; /* event types per GPU index */
};
typedef struct nvmlEventSet_st *nvmlEventSet_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

#define EVENT_SBE 0x1ull
#define EVENT_DBE 0x2ull
#define EVENT_XID 0x8ull

/* ------------------------------------------------------------------------------------------ */
/* Scenario model                                                                              */

enum field {
    F_NAME,
    F_UUID,
    F_MEMORY,
    F_MEMORY_V2,
    F_UTILIZATION,
    F_TEMPERATURE,
    F_POWER_USAGE,
    F_POWER_LIMIT,
    F_MIG_MODE,
    F_COMPUTE_PROCESSES,
    F_GRAPHICS_PROCESSES,
    F_CLOCKS_EVENT_REASONS,
    F_PERFORMANCE_STATE,
    F_ECC_MODE,
    F_ECC_COUNTS,
    F_RETIRED_PAGES,
    F_REMAPPED_ROWS,
    F_PCIE_REPLAY,
    F_PCIE_LINK,
    F_PCIE_THROUGHPUT,
    F_NVLINK,
    F_PROCESS_UTILIZATION,
    F_FIELD_VALUES,
    F_EVENTS,
    F_COUNT,
    F_NONE = -1,
};

static const char *const field_names[F_COUNT] = {
    "name",
    "uuid",
    "memory",
    "memory_v2",
    "utilization",
    "temperature",
    "power_usage",
    "power_limit",
    "mig_mode",
    "compute_processes",
    "graphics_processes",
    "clocks_event_reasons",
    "performance_state",
    "ecc_mode",
    "ecc_counts",
    "retired_pages",
    "remapped_rows",
    "pcie_replay",
    "pcie_link",
    "pcie_throughput",
    "nvlink",
    "process_utilization",
    "field_values",
    "events",
};

/* Fields a MIG handle answers; every other call on a MIG handle is NOT_SUPPORTED. */
static const int mig_fields[F_COUNT] = {
    [F_NAME] = 1,
    [F_UUID] = 1,
    [F_MEMORY] = 1,
    [F_MEMORY_V2] = 1,
    [F_COMPUTE_PROCESSES] = 1,
    [F_GRAPHICS_PROCESSES] = 1,
};

struct proc {
    unsigned long long pid;
    unsigned long long used_memory; /* NVML_VALUE_NOT_AVAILABLE_ULL: not available */
    char type[16];
    unsigned long long gpu_instance_id;
    unsigned long long compute_instance_id;
    int kill_on_read;
    int killed; /* kill at most once per loaded scenario: never a recycled pid */
    long long sm_util; /* -1: no utilisation sample (the process was idle) */
    long long mem_util;
};

struct mig {
    char uuid[MAX_UUID + 1];
    unsigned long long memory_total;
    unsigned long long memory_used;
    unsigned long long gpu_instance_id;
    unsigned long long compute_instance_id;
};

struct gpu {
    char name[MAX_NAME + 1];
    char uuid[MAX_UUID + 1];
    unsigned long long memory_total;
    unsigned long long memory_used;
    unsigned long long memory_reserved;
    unsigned long long utilization_gpu;
    unsigned long long utilization_memory;
    unsigned long long temperature;
    unsigned long long power_usage_mw;
    unsigned long long power_limit_mw;
    unsigned long long mig_current;
    unsigned long long mig_pending;
    unsigned long long clocks_event_reasons;
    unsigned long long performance_state;
    unsigned long long ecc_mode;
    unsigned long long ecc_sbe_volatile;
    unsigned long long ecc_dbe_volatile;
    unsigned long long ecc_sbe_aggregate;
    unsigned long long ecc_dbe_aggregate;
    unsigned long long retired_sbe;
    unsigned long long retired_dbe;
    unsigned long long retired_pending;
    unsigned long long remapped_cor;
    unsigned long long remapped_unc;
    unsigned long long remap_pending;
    unsigned long long remap_failure;
    unsigned long long pcie_replay;
    unsigned long long pcie_gen;
    unsigned long long pcie_gen_max;
    unsigned long long pcie_width;
    unsigned long long pcie_width_max;
    unsigned long long pcie_tx_kbps;
    unsigned long long pcie_rx_kbps;
    unsigned long long nvlink_links; /* 0: no NVLink */
    unsigned long long nvlink_replay;
    unsigned long long nvlink_recovery;
    unsigned long long nvlink_crc_flit;
    unsigned long long nvlink_crc_data;
    unsigned long long supported_events;
    int lost;
    nvmlReturn_t errors[F_COUNT]; /* forced return code per field; NVML_SUCCESS: none */
    unsigned nproc;
    struct proc procs[MAX_PROCS];
    unsigned nmig;
    struct mig migs[MAX_MIGS];
};

/* Something that happens at_ms after the scenario was loaded: an event for nvmlEventSetWait
 * (xid, sbe, dbe) or the GPU falling off the bus (lost). */
struct event {
    unsigned long long at_ms;
    unsigned long long gpu;
    char type[8];
    unsigned long long data; /* the XID number */
    unsigned line;           /* of its [[event]] header, for a bad gpu index */
    int done;                /* delivered (or applied), once per loaded scenario */
};

struct scenario {
    char driver_version[MAX_VERSION + 1];
    char nvml_version[MAX_VERSION + 1];
    long long cuda_driver_version;
    long long process_api;
    unsigned char missing[MAX_SYMBOLS]; /* functions an old driver lacks: FUNCTION_NOT_FOUND */
    unsigned ngpu;
    struct gpu gpus[MAX_GPUS];
    unsigned nevent;
    struct event events[MAX_EVENTS];
    long long loaded_ns;       /* CLOCK_MONOTONIC when loaded: events count from here */
    unsigned long long wall_us; /* CLOCK_REALTIME when loaded: utilisation sample times */
};

/* ------------------------------------------------------------------------------------------ */
/* Error names                                                                                 */

struct error_info {
    nvmlReturn_t code;
    const char *name;
    const char *text;
};

static const struct error_info errors_table[] = {
    {0, "SUCCESS", "Success"},
    {1, "UNINITIALIZED", "Uninitialized"},
    {2, "INVALID_ARGUMENT", "Invalid Argument"},
    {3, "NOT_SUPPORTED", "Not Supported"},
    {4, "NO_PERMISSION", "Insufficient Permissions"},
    {5, "ALREADY_INITIALIZED", "Already Initialized"},
    {6, "NOT_FOUND", "Not Found"},
    {7, "INSUFFICIENT_SIZE", "Insufficient Size"},
    {8, "INSUFFICIENT_POWER", "Insufficient External Power"},
    {9, "DRIVER_NOT_LOADED", "Driver Not Loaded"},
    {10, "TIMEOUT", "Timeout"},
    {11, "IRQ_ISSUE", "Interrupt Request Issue"},
    {12, "LIBRARY_NOT_FOUND", "NVML Shared Library Not Found"},
    {13, "FUNCTION_NOT_FOUND", "Function Not Found"},
    {14, "CORRUPTED_INFOROM", "Corrupted infoROM"},
    {15, "GPU_IS_LOST", "GPU is lost"},
    {16, "RESET_REQUIRED", "GPU requires restart"},
    {17, "OPERATING_SYSTEM", "The operating system has blocked the request."},
    {18, "LIB_RM_VERSION_MISMATCH", "RM has detected an NVML/RM version mismatch."},
    {19, "IN_USE", "In use by another client"},
    {20, "MEMORY", "Insufficient Memory"},
    {21, "NO_DATA", "No data"},
    {22, "VGPU_ECC_NOT_SUPPORTED", "The requested vgpu operation is not available"},
    {23, "INSUFFICIENT_RESOURCES", "Insufficient resources"},
    {24, "FREQ_NOT_SUPPORTED", "Frequency not supported"},
    {25, "ARGUMENT_VERSION_MISMATCH", "Argument version mismatch"},
    {26, "DEPRECATED", "Deprecated"},
    {27, "NOT_READY", "Not ready"},
    {28, "GPU_NOT_FOUND", "GPU not found"},
    {29, "INVALID_STATE", "Invalid state"},
    {30, "RESET_TYPE_NOT_SUPPORTED", "Reset type not supported"},
    {999, "UNKNOWN", "Unknown Error"},
};

#define N_ERRORS (sizeof(errors_table) / sizeof(errors_table[0]))

/* ------------------------------------------------------------------------------------------ */
/* Call counting                                                                               */

#define SYMBOLS(X)                                                                             \
    X(nvmlInit_v2)                                                                             \
    X(nvmlInitWithFlags)                                                                       \
    X(nvmlShutdown)                                                                            \
    X(nvmlErrorString)                                                                         \
    X(nvmlSystemGetDriverVersion)                                                              \
    X(nvmlSystemGetNVMLVersion)                                                                \
    X(nvmlSystemGetCudaDriverVersion)                                                          \
    X(nvmlSystemGetCudaDriverVersion_v2)                                                       \
    X(nvmlDeviceGetCount_v2)                                                                   \
    X(nvmlDeviceGetHandleByIndex_v2)                                                           \
    X(nvmlDeviceGetHandleByUUID)                                                               \
    X(nvmlDeviceGetIndex)                                                                      \
    X(nvmlDeviceGetName)                                                                       \
    X(nvmlDeviceGetUUID)                                                                       \
    X(nvmlDeviceGetMemoryInfo)                                                                 \
    X(nvmlDeviceGetMemoryInfo_v2)                                                              \
    X(nvmlDeviceGetUtilizationRates)                                                           \
    X(nvmlDeviceGetTemperature)                                                                \
    X(nvmlDeviceGetPowerUsage)                                                                 \
    X(nvmlDeviceGetEnforcedPowerLimit)                                                         \
    X(nvmlDeviceGetMigMode)                                                                    \
    X(nvmlDeviceGetMaxMigDeviceCount)                                                          \
    X(nvmlDeviceGetMigDeviceHandleByIndex)                                                     \
    X(nvmlDeviceIsMigDeviceHandle)                                                             \
    X(nvmlDeviceGetGpuInstanceId)                                                              \
    X(nvmlDeviceGetComputeInstanceId)                                                          \
    X(nvmlDeviceGetComputeRunningProcesses_v3)                                                 \
    X(nvmlDeviceGetComputeRunningProcesses_v2)                                                 \
    X(nvmlDeviceGetGraphicsRunningProcesses_v3)                                                \
    X(nvmlDeviceGetGraphicsRunningProcesses_v2)                                                \
    X(nvmlDeviceGetCurrentClocksEventReasons)                                                  \
    X(nvmlDeviceGetCurrentClocksThrottleReasons)                                               \
    X(nvmlDeviceGetPerformanceState)                                                           \
    X(nvmlDeviceGetFieldValues)                                                                \
    X(nvmlDeviceGetCurrPcieLinkGeneration)                                                     \
    X(nvmlDeviceGetMaxPcieLinkGeneration)                                                      \
    X(nvmlDeviceGetCurrPcieLinkWidth)                                                          \
    X(nvmlDeviceGetMaxPcieLinkWidth)                                                           \
    X(nvmlDeviceGetPcieThroughput)                                                             \
    X(nvmlDeviceGetProcessUtilization)                                                         \
    X(nvmlEventSetCreate)                                                                      \
    X(nvmlDeviceGetSupportedEventTypes)                                                        \
    X(nvmlDeviceRegisterEvents)                                                                \
    X(nvmlEventSetWait_v2)                                                                     \
    X(nvmlEventSetFree)

#define AS_ENUM(sym) SYM_##sym,
#define AS_NAME(sym) #sym,
enum symbol { SYMBOLS(AS_ENUM) SYM_COUNT };
static const char *const symbol_names[SYM_COUNT] = {SYMBOLS(AS_NAME)};
_Static_assert(SYM_COUNT <= MAX_SYMBOLS, "raise MAX_SYMBOLS");

/* ------------------------------------------------------------------------------------------ */
/* State, all guarded by `lock`.                                                               */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long counts[SYM_COUNT];
static unsigned init_refcount;
/* Two buffers: parse into the spare one, swap on success, so a bad file keeps the old state. */
static struct scenario buffers[2];
static struct scenario *current = &buffers[0];
static struct {
    long long mtime_ns;
    long long size;
    unsigned long long ino;
    unsigned long long dev;
} loaded_stamp;
static struct nvmlDevice_st handles[MAX_GPUS][1 + MAX_MIGS];
static struct nvmlEventSet_st event_sets[MAX_EVENT_SETS];

__attribute__((constructor)) static void init_handles(void)
{
    for (unsigned g = 0; g < MAX_GPUS; g++)
        for (int m = -1; m < MAX_MIGS; m++) {
            handles[g][m + 1].gpu = g;
            handles[g][m + 1].mig = m;
        }
}

/* ------------------------------------------------------------------------------------------ */
/* Scenario parser                                                                             */

enum value_kind { V_INT, V_BOOL, V_STR };

struct value {
    enum value_kind kind;
    int negative;
    unsigned long long magnitude;
    int boolean;
    char str[512];
};

enum key_kind {
    K_STR,       /* maxlen in `limit` */
    K_UINT,      /* 0..limit */
    K_INT32,     /* INT32_MIN..INT32_MAX */
    K_BOOL,
    K_PROCESS_API,
    K_USED_MEMORY, /* -1 (not available) or 0..2^64-1 */
    K_PROC_TYPE,
    K_ERRORS,
    K_UTIL,       /* -1 (no sample) .. 100 */
    K_FUNCTIONS,  /* comma-separated NVML function names */
    K_EVENT_TYPE, /* xid, sbe, dbe or lost */
};

struct key_def {
    const char *name;
    enum key_kind kind;
    size_t offset;
    unsigned long long limit;
};

#define U32_MAX 0xFFFFFFFFull
#define U64_MAX 0xFFFFFFFFFFFFFFFFull

static const struct key_def top_keys[] = {
    {"driver_version", K_STR, offsetof(struct scenario, driver_version), MAX_VERSION},
    {"nvml_version", K_STR, offsetof(struct scenario, nvml_version), MAX_VERSION},
    {"cuda_driver_version", K_INT32, offsetof(struct scenario, cuda_driver_version), 0},
    {"process_api", K_PROCESS_API, offsetof(struct scenario, process_api), 0},
    {"missing_functions", K_FUNCTIONS, offsetof(struct scenario, missing), 0},
    {NULL, K_STR, 0, 0},
};

static const struct key_def gpu_keys[] = {
    {"name", K_STR, offsetof(struct gpu, name), MAX_NAME},
    {"uuid", K_STR, offsetof(struct gpu, uuid), MAX_UUID},
    {"memory_total", K_UINT, offsetof(struct gpu, memory_total), U64_MAX},
    {"memory_used", K_UINT, offsetof(struct gpu, memory_used), U64_MAX},
    {"memory_reserved", K_UINT, offsetof(struct gpu, memory_reserved), U64_MAX},
    {"utilization_gpu", K_UINT, offsetof(struct gpu, utilization_gpu), 100},
    {"utilization_memory", K_UINT, offsetof(struct gpu, utilization_memory), 100},
    {"temperature", K_UINT, offsetof(struct gpu, temperature), U32_MAX},
    {"power_usage_mw", K_UINT, offsetof(struct gpu, power_usage_mw), U32_MAX},
    {"power_limit_mw", K_UINT, offsetof(struct gpu, power_limit_mw), U32_MAX},
    {"mig_current", K_UINT, offsetof(struct gpu, mig_current), 1},
    {"mig_pending", K_UINT, offsetof(struct gpu, mig_pending), 1},
    {"lost", K_BOOL, offsetof(struct gpu, lost), 0},
    {"errors", K_ERRORS, offsetof(struct gpu, errors), 0},
    {"clocks_event_reasons", K_UINT, offsetof(struct gpu, clocks_event_reasons), U64_MAX},
    {"performance_state", K_UINT, offsetof(struct gpu, performance_state), PSTATE_UNKNOWN},
    {"ecc_mode", K_UINT, offsetof(struct gpu, ecc_mode), 1},
    {"ecc_sbe_volatile", K_UINT, offsetof(struct gpu, ecc_sbe_volatile), U64_MAX},
    {"ecc_dbe_volatile", K_UINT, offsetof(struct gpu, ecc_dbe_volatile), U64_MAX},
    {"ecc_sbe_aggregate", K_UINT, offsetof(struct gpu, ecc_sbe_aggregate), U64_MAX},
    {"ecc_dbe_aggregate", K_UINT, offsetof(struct gpu, ecc_dbe_aggregate), U64_MAX},
    {"retired_sbe", K_UINT, offsetof(struct gpu, retired_sbe), U64_MAX},
    {"retired_dbe", K_UINT, offsetof(struct gpu, retired_dbe), U64_MAX},
    {"retired_pending", K_UINT, offsetof(struct gpu, retired_pending), 1},
    {"remapped_cor", K_UINT, offsetof(struct gpu, remapped_cor), U32_MAX},
    {"remapped_unc", K_UINT, offsetof(struct gpu, remapped_unc), U32_MAX},
    {"remap_pending", K_UINT, offsetof(struct gpu, remap_pending), 1},
    {"remap_failure", K_UINT, offsetof(struct gpu, remap_failure), 1},
    {"pcie_replay", K_UINT, offsetof(struct gpu, pcie_replay), U64_MAX},
    {"pcie_gen", K_UINT, offsetof(struct gpu, pcie_gen), U32_MAX},
    {"pcie_gen_max", K_UINT, offsetof(struct gpu, pcie_gen_max), U32_MAX},
    {"pcie_width", K_UINT, offsetof(struct gpu, pcie_width), U32_MAX},
    {"pcie_width_max", K_UINT, offsetof(struct gpu, pcie_width_max), U32_MAX},
    {"pcie_tx_kbps", K_UINT, offsetof(struct gpu, pcie_tx_kbps), U32_MAX},
    {"pcie_rx_kbps", K_UINT, offsetof(struct gpu, pcie_rx_kbps), U32_MAX},
    {"nvlink_links", K_UINT, offsetof(struct gpu, nvlink_links), MAX_NVLINKS},
    {"nvlink_replay", K_UINT, offsetof(struct gpu, nvlink_replay), U64_MAX},
    {"nvlink_recovery", K_UINT, offsetof(struct gpu, nvlink_recovery), U64_MAX},
    {"nvlink_crc_flit", K_UINT, offsetof(struct gpu, nvlink_crc_flit), U64_MAX},
    {"nvlink_crc_data", K_UINT, offsetof(struct gpu, nvlink_crc_data), U64_MAX},
    {"supported_events", K_UINT, offsetof(struct gpu, supported_events), U64_MAX},
    {NULL, K_STR, 0, 0},
};

static const struct key_def proc_keys[] = {
    {"pid", K_UINT, offsetof(struct proc, pid), U32_MAX},
    {"used_memory", K_USED_MEMORY, offsetof(struct proc, used_memory), 0},
    {"type", K_PROC_TYPE, offsetof(struct proc, type), 0},
    {"gpu_instance_id", K_UINT, offsetof(struct proc, gpu_instance_id), U32_MAX},
    {"compute_instance_id", K_UINT, offsetof(struct proc, compute_instance_id), U32_MAX},
    {"kill_on_read", K_BOOL, offsetof(struct proc, kill_on_read), 0},
    {"sm_util", K_UTIL, offsetof(struct proc, sm_util), 0},
    {"mem_util", K_UINT, offsetof(struct proc, mem_util), 100},
    {NULL, K_STR, 0, 0},
};

static const struct key_def event_keys[] = {
    {"at_ms", K_UINT, offsetof(struct event, at_ms), U32_MAX},
    {"gpu", K_UINT, offsetof(struct event, gpu), MAX_GPUS - 1},
    {"type", K_EVENT_TYPE, offsetof(struct event, type), 0},
    {"data", K_UINT, offsetof(struct event, data), U64_MAX},
    {NULL, K_STR, 0, 0},
};

static const struct key_def mig_keys[] = {
    {"uuid", K_STR, offsetof(struct mig, uuid), MAX_UUID},
    {"memory_total", K_UINT, offsetof(struct mig, memory_total), U64_MAX},
    {"memory_used", K_UINT, offsetof(struct mig, memory_used), U64_MAX},
    {"gpu_instance_id", K_UINT, offsetof(struct mig, gpu_instance_id), U32_MAX},
    {"compute_instance_id", K_UINT, offsetof(struct mig, compute_instance_id), U32_MAX},
    {NULL, K_STR, 0, 0},
};

enum section { S_TOP, S_GPU, S_PROC, S_MIG, S_EVENT };

struct parser {
    struct scenario *s;
    enum section section;
    unsigned long long seen; /* bit per key of the current table: duplicate detection */
    unsigned table_line;     /* line of the current table's header */
    char msg[256];
};

static void default_scenario(struct scenario *s)
{
    memset(s, 0, sizeof(*s));
    strcpy(s->driver_version, "550.54.15");
    strcpy(s->nvml_version, "12.550.54.15");
    s->cuda_driver_version = 12040;
    s->process_api = 3;
}

static void default_gpu(struct gpu *g)
{
    memset(g, 0, sizeof(*g));
    strcpy(g->name, "NVIDIA H100 80GB HBM3");
    g->memory_total = 85899345920ull;
    g->temperature = 30;
    g->power_usage_mw = 70000;
    g->power_limit_mw = 700000;
    g->ecc_mode = 1;
    g->pcie_gen = g->pcie_gen_max = 5;
    g->pcie_width = g->pcie_width_max = 16;
    g->supported_events = EVENT_SBE | EVENT_DBE | 0x4ull | EVENT_XID;
}

static void default_proc(struct proc *p)
{
    memset(p, 0, sizeof(*p));
    p->used_memory = NVML_VALUE_NOT_AVAILABLE_ULL;
    strcpy(p->type, "compute");
    p->gpu_instance_id = NO_INSTANCE;
    p->compute_instance_id = NO_INSTANCE;
    p->sm_util = -1;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int at_line_end(const char *p)
{
    p = skip_ws(p);
    return *p == '\0' || *p == '#';
}

/* Parses one value at *pp into v; returns 0 or -1 with p->msg set. */
static int parse_value(struct parser *ps, const char **pp, struct value *v)
{
    const char *p = *pp;
    memset(v, 0, sizeof(*v));
    if (*p == '"') {
        size_t n = 0;
        v->kind = V_STR;
        for (p++; *p != '"'; p++) {
            char c = *p;
            if (c == '\0') {
                snprintf(ps->msg, sizeof(ps->msg), "unterminated string");
                return -1;
            }
            if (c == '\\') {
                p++;
                if (*p != '"' && *p != '\\') {
                    snprintf(ps->msg, sizeof(ps->msg), "unsupported escape in string");
                    return -1;
                }
                c = *p;
            }
            if (n + 1 >= sizeof(v->str)) {
                snprintf(ps->msg, sizeof(ps->msg), "string too long");
                return -1;
            }
            v->str[n++] = c;
        }
        v->str[n] = '\0';
        *pp = p + 1;
        return 0;
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        v->kind = V_BOOL;
        v->boolean = *p == 't';
        *pp = p + (v->boolean ? 4 : 5);
        return 0;
    }
    v->kind = V_INT;
    if (*p == '+' || *p == '-') {
        v->negative = *p == '-';
        p++;
    }
    if (*p < '0' || *p > '9') {
        snprintf(ps->msg, sizeof(ps->msg), "expected an integer, true, false or a string");
        return -1;
    }
    if (p[0] == '0' && ((p[1] >= '0' && p[1] <= '9') || p[1] == '_')) {
        snprintf(ps->msg, sizeof(ps->msg), "leading zeros are not allowed");
        return -1;
    }
    for (;;) {
        if (*p >= '0' && *p <= '9') {
            unsigned digit = (unsigned)(*p - '0');
            if (v->magnitude > (U64_MAX - digit) / 10) {
                snprintf(ps->msg, sizeof(ps->msg), "integer out of range");
                return -1;
            }
            v->magnitude = v->magnitude * 10 + digit;
            p++;
        } else if (*p == '_' && p[1] >= '0' && p[1] <= '9') {
            p++;
        } else {
            break;
        }
    }
    *pp = p;
    return 0;
}

static int parse_errors(struct parser *ps, const char *text, nvmlReturn_t *errors)
{
    char buf[512];
    char *save = NULL;
    for (int f = 0; f < F_COUNT; f++)
        errors[f] = NVML_SUCCESS;
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        char *field, *code, *end;
        int f;
        size_t e;
        if (!colon) {
            snprintf(ps->msg, sizeof(ps->msg), "errors: expected field:CODE, got '%s'", item);
            return -1;
        }
        *colon = '\0';
        field = (char *)skip_ws(item);
        for (end = colon; end > field && (end[-1] == ' ' || end[-1] == '\t'); end--)
            ;
        *end = '\0';
        code = (char *)skip_ws(colon + 1);
        for (end = code + strlen(code); end > code && (end[-1] == ' ' || end[-1] == '\t');
             end--)
            ;
        *end = '\0';
        for (f = 0; f < F_COUNT && strcmp(field_names[f], field) != 0; f++)
            ;
        if (f == F_COUNT) {
            snprintf(ps->msg, sizeof(ps->msg), "errors: unknown field '%s'", field);
            return -1;
        }
        if (errors[f] != NVML_SUCCESS) {
            snprintf(ps->msg, sizeof(ps->msg), "errors: field '%s' given twice", field);
            return -1;
        }
        for (e = 1; e < N_ERRORS && strcmp(errors_table[e].name, code) != 0; e++)
            ;
        if (e == N_ERRORS) {
            snprintf(ps->msg, sizeof(ps->msg), "errors: unknown error code '%s'", code);
            return -1;
        }
        errors[f] = errors_table[e].code;
    }
    return 0;
}

static int parse_functions(struct parser *ps, const char *text, unsigned char *missing)
{
    char buf[512];
    char *save = NULL;
    memset(missing, 0, MAX_SYMBOLS);
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *name = (char *)skip_ws(item), *end;
        int sym;
        for (end = name + strlen(name); end > name && (end[-1] == ' ' || end[-1] == '\t'); end--)
            ;
        *end = '\0';
        for (sym = 0; sym < SYM_COUNT && strcmp(symbol_names[sym], name) != 0; sym++)
            ;
        if (sym == SYM_COUNT) {
            snprintf(ps->msg, sizeof(ps->msg), "missing_functions: unknown function '%.200s'",
                     name);
            return -1;
        }
        missing[sym] = 1;
    }
    return 0;
}

static int assign(struct parser *ps, const struct key_def *k, void *base, const struct value *v)
{
    char *dst = (char *)base + k->offset;
    switch (k->kind) {
    case K_STR:
        if (v->kind != V_STR)
            goto wrong_type;
        if (strlen(v->str) > k->limit) {
            snprintf(ps->msg, sizeof(ps->msg), "%s: longer than %llu bytes", k->name, k->limit);
            return -1;
        }
        strcpy(dst, v->str);
        return 0;
    case K_UINT:
        if (v->kind != V_INT)
            goto wrong_type;
        if ((v->negative && v->magnitude != 0) || v->magnitude > k->limit)
            goto out_of_range;
        *(unsigned long long *)(void *)dst = v->magnitude;
        return 0;
    case K_INT32:
        if (v->kind != V_INT)
            goto wrong_type;
        if (v->magnitude > (v->negative ? 2147483648ull : 2147483647ull))
            goto out_of_range;
        *(long long *)(void *)dst =
            v->negative ? -(long long)v->magnitude : (long long)v->magnitude;
        return 0;
    case K_PROCESS_API:
        if (v->kind != V_INT)
            goto wrong_type;
        if (v->negative || (v->magnitude != 2 && v->magnitude != 3)) {
            snprintf(ps->msg, sizeof(ps->msg), "process_api must be 2 or 3");
            return -1;
        }
        *(long long *)(void *)dst = (long long)v->magnitude;
        return 0;
    case K_USED_MEMORY:
        if (v->kind != V_INT)
            goto wrong_type;
        if (v->negative && v->magnitude != 1)
            goto out_of_range;
        /* -1 and 2^64-1 alike are NVML's "not available". */
        *(unsigned long long *)(void *)dst = v->negative ? NVML_VALUE_NOT_AVAILABLE_ULL
                                                         : v->magnitude;
        return 0;
    case K_PROC_TYPE:
        if (v->kind != V_STR)
            goto wrong_type;
        if (strcmp(v->str, "compute") != 0 && strcmp(v->str, "graphics") != 0) {
            snprintf(ps->msg, sizeof(ps->msg), "type must be \"compute\" or \"graphics\"");
            return -1;
        }
        strcpy(dst, v->str);
        return 0;
    case K_BOOL:
        if (v->kind != V_BOOL)
            goto wrong_type;
        *(int *)(void *)dst = v->boolean;
        return 0;
    case K_ERRORS:
        if (v->kind != V_STR)
            goto wrong_type;
        return parse_errors(ps, v->str, (nvmlReturn_t *)(void *)dst);
    case K_UTIL:
        if (v->kind != V_INT)
            goto wrong_type;
        if (v->negative ? v->magnitude != 1 : v->magnitude > 100)
            goto out_of_range;
        *(long long *)(void *)dst = v->negative ? -1 : (long long)v->magnitude;
        return 0;
    case K_FUNCTIONS:
        if (v->kind != V_STR)
            goto wrong_type;
        return parse_functions(ps, v->str, (unsigned char *)dst);
    case K_EVENT_TYPE:
        if (v->kind != V_STR)
            goto wrong_type;
        if (strcmp(v->str, "xid") != 0 && strcmp(v->str, "sbe") != 0 &&
            strcmp(v->str, "dbe") != 0 && strcmp(v->str, "lost") != 0) {
            snprintf(ps->msg, sizeof(ps->msg), "type must be xid, sbe, dbe or lost");
            return -1;
        }
        strcpy(dst, v->str);
        return 0;
    }
wrong_type:
    snprintf(ps->msg, sizeof(ps->msg), "%s: wrong type", k->name);
    return -1;
out_of_range:
    snprintf(ps->msg, sizeof(ps->msg), "%s: out of range", k->name);
    return -1;
}

static int close_table(struct parser *ps)
{
    if (ps->section == S_PROC && !(ps->seen & 1ull)) { /* pid is proc_keys[0] */
        snprintf(ps->msg, sizeof(ps->msg), "[[gpu.process]] needs a pid");
        return -1;
    }
    return 0;
}

static int parse_header(struct parser *ps, const char *p, unsigned line)
{
    char name[32];
    size_t n = 0;
    struct scenario *s = ps->s;
    struct gpu *g;
    p = skip_ws(p + 2);
    while (*p && *p != ']' && *p != ' ' && *p != '\t' && n + 1 < sizeof(name))
        name[n++] = *p++;
    name[n] = '\0';
    p = skip_ws(p);
    if (strncmp(p, "]]", 2) != 0 || !at_line_end(p + 2)) {
        snprintf(ps->msg, sizeof(ps->msg), "malformed table header");
        return -1;
    }
    if (close_table(ps) != 0) {
        return -1;
    }
    ps->seen = 0;
    ps->table_line = line;
    if (strcmp(name, "event") == 0) {
        if (s->nevent == MAX_EVENTS) {
            snprintf(ps->msg, sizeof(ps->msg), "more than %d [[event]] tables", MAX_EVENTS);
            return -1;
        }
        memset(&s->events[s->nevent], 0, sizeof(struct event));
        strcpy(s->events[s->nevent].type, "xid");
        s->events[s->nevent++].line = line;
        ps->section = S_EVENT;
        return 0;
    }
    if (strcmp(name, "gpu") == 0) {
        if (s->ngpu == MAX_GPUS) {
            snprintf(ps->msg, sizeof(ps->msg), "more than %d [[gpu]] tables", MAX_GPUS);
            return -1;
        }
        default_gpu(&s->gpus[s->ngpu++]);
        ps->section = S_GPU;
        return 0;
    }
    if (strcmp(name, "gpu.process") != 0 && strcmp(name, "gpu.mig") != 0) {
        snprintf(ps->msg, sizeof(ps->msg), "unknown table [[%s]]", name);
        return -1;
    }
    if (s->ngpu == 0) {
        snprintf(ps->msg, sizeof(ps->msg), "[[%s]] before any [[gpu]]", name);
        return -1;
    }
    g = &s->gpus[s->ngpu - 1];
    if (strcmp(name, "gpu.process") == 0) {
        if (g->nproc == MAX_PROCS) {
            snprintf(ps->msg, sizeof(ps->msg), "more than %d processes on one GPU", MAX_PROCS);
            return -1;
        }
        default_proc(&g->procs[g->nproc++]);
        ps->section = S_PROC;
        return 0;
    }
    if (g->nmig == MAX_MIGS) {
        snprintf(ps->msg, sizeof(ps->msg), "more than %d MIG devices on one GPU", MAX_MIGS);
        return -1;
    }
    memset(&g->migs[g->nmig++], 0, sizeof(struct mig));
    ps->section = S_MIG;
    return 0;
}

static int parse_key_value(struct parser *ps, const char *p)
{
    char key[64];
    size_t n = 0;
    struct value v;
    const struct key_def *keys;
    void *base;
    struct scenario *s = ps->s;
    struct gpu *g = s->ngpu ? &s->gpus[s->ngpu - 1] : NULL;
    int i;

    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '_' || *p == '-') {
        if (n + 1 >= sizeof(key)) {
            snprintf(ps->msg, sizeof(ps->msg), "key too long");
            return -1;
        }
        key[n++] = *p++;
    }
    key[n] = '\0';
    p = skip_ws(p);
    if (n == 0 || *p != '=') {
        snprintf(ps->msg, sizeof(ps->msg), "expected 'key = value'");
        return -1;
    }
    p = skip_ws(p + 1);
    if (parse_value(ps, &p, &v) != 0)
        return -1;
    if (!at_line_end(p)) {
        snprintf(ps->msg, sizeof(ps->msg), "unexpected text after the value of %s", key);
        return -1;
    }
    switch (ps->section) {
    case S_TOP:
        keys = top_keys;
        base = s;
        break;
    case S_GPU:
        keys = gpu_keys;
        base = g;
        break;
    case S_PROC:
        keys = proc_keys;
        base = &g->procs[g->nproc - 1];
        break;
    case S_EVENT:
        keys = event_keys;
        base = &s->events[s->nevent - 1];
        break;
    default:
        keys = mig_keys;
        base = &g->migs[g->nmig - 1];
        break;
    }
    for (i = 0; keys[i].name && strcmp(keys[i].name, key) != 0; i++)
        ;
    if (!keys[i].name) {
        snprintf(ps->msg, sizeof(ps->msg), "unknown key '%s'", key);
        return -1;
    }
    if (ps->seen & (1ull << i)) {
        snprintf(ps->msg, sizeof(ps->msg), "key '%s' given twice", key);
        return -1;
    }
    ps->seen |= 1ull << i;
    return assign(ps, &keys[i], base, &v);
}

/* Parses `text` (NUL-terminated) into s. Returns 0, or the failing line number with msg set. */
static unsigned parse_scenario(char *text, struct scenario *s, char *msg, size_t msgsize)
{
    struct parser ps = {.s = s, .section = S_TOP};
    unsigned line = 0;
    char *next = text;
    default_scenario(s);
    while (next) {
        char *cur = next;
        const char *p;
        int rc;
        char *nl = strchr(cur, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        line++;
        if (nl && nl > cur && nl[-1] == '\r')
            nl[-1] = '\0';
        for (p = cur; *p; p++)
            if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                break;
        if (*p) {
            snprintf(msg, msgsize, "control character");
            return line;
        }
        p = skip_ws(cur);
        if (*p == '\0' || *p == '#')
            continue;
        if (p[0] == '[' && p[1] == '[') {
            rc = parse_header(&ps, p, line);
        } else if (p[0] == '[') {
            snprintf(ps.msg, sizeof(ps.msg), "only [[gpu]], [[gpu.process]], [[gpu.mig]] and "
                                             "[[event]] tables are supported");
            rc = -1;
        } else {
            rc = parse_key_value(&ps, p);
        }
        if (rc != 0) {
            snprintf(msg, msgsize, "%s", ps.msg);
            return line;
        }
    }
    if (close_table(&ps) != 0) {
        snprintf(msg, msgsize, "%s", ps.msg);
        return ps.table_line;
    }
    for (unsigned e = 0; e < s->nevent; e++)
        if (s->events[e].gpu >= s->ngpu) {
            snprintf(msg, msgsize, "[[event]] gpu %llu: there is no such GPU", s->events[e].gpu);
            return s->events[e].line;
        }
    /* An empty UUID means "derived from the position", as in vramtop/demo/scenario.py. */
    for (unsigned gi = 0; gi < s->ngpu; gi++) {
        struct gpu *g = &s->gpus[gi];
        if (!g->uuid[0])
            snprintf(g->uuid, sizeof(g->uuid), "GPU-00000000-0000-0000-0000-%012x", gi);
        for (unsigned mi = 0; mi < g->nmig; mi++)
            if (!g->migs[mi].uuid[0])
                snprintf(g->migs[mi].uuid, sizeof(g->migs[mi].uuid),
                         "MIG-00000000-0000-0000-%04x-%012x", gi, mi);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                     */

enum load_result { LOAD_OK, LOAD_UNCHANGED, LOAD_MISSING, LOAD_BAD };

static enum load_result load_scenario(int force)
{
    const char *path = getenv("FAKE_NVML_SCENARIO");
    struct stat st;
    struct scenario *spare = current == &buffers[0] ? &buffers[1] : &buffers[0];
    char *text;
    char msg[256];
    unsigned bad_line;
    ssize_t got;
    size_t have = 0;
    int fd;

    if (!path || !*path)
        return LOAD_MISSING;
    if (!force) {
        if (stat(path, &st) != 0)
            return LOAD_UNCHANGED; /* keep serving the last good scenario */
        if (st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec == loaded_stamp.mtime_ns &&
            (long long)st.st_size == loaded_stamp.size && st.st_ino == loaded_stamp.ino &&
            st.st_dev == loaded_stamp.dev)
            return LOAD_UNCHANGED;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return force ? LOAD_MISSING : LOAD_UNCHANGED;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_FILE_SIZE) {
        close(fd);
        return force ? LOAD_MISSING : LOAD_UNCHANGED;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        close(fd);
        return LOAD_BAD;
    }
    while (have < (size_t)st.st_size) {
        got = read(fd, text + have, (size_t)st.st_size - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        have += (size_t)got;
    }
    close(fd);
    text[have] = '\0';
    /* Remember the stamp even when the file is bad, so it is reported once, not every call. */
    loaded_stamp.mtime_ns = st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
    loaded_stamp.size = (long long)st.st_size;
    loaded_stamp.ino = st.st_ino;
    loaded_stamp.dev = st.st_dev;
    if (strlen(text) != have) {
        free(text);
        fprintf(stderr, "fake_nvml: %s: NUL byte in scenario file\n", path);
        return LOAD_BAD;
    }
    bad_line = parse_scenario(text, spare, msg, sizeof(msg));
    free(text);
    if (bad_line) {
        fprintf(stderr, "fake_nvml: %s:%u: %s\n", path, bad_line, msg);
        return LOAD_BAD;
    }
    {
        struct timespec mono, wall;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        clock_gettime(CLOCK_REALTIME, &wall);
        spare->loaded_ns = mono.tv_sec * 1000000000ll + mono.tv_nsec;
        spare->wall_us = (unsigned long long)wall.tv_sec * 1000000ull +
                         (unsigned long long)wall.tv_nsec / 1000ull;
    }
    current = spare;
    return LOAD_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Call plumbing                                                                               */

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static int due(const struct event *e)
{
    return current->loaded_ns + (long long)e->at_ms * 1000000ll <= now_ns();
}

/* A scripted "lost" event takes its GPU off the bus for every call from its time on. */
static void apply_due_events(void)
{
    for (unsigned i = 0; i < current->nevent; i++) {
        struct event *e = &current->events[i];
        if (!e->done && strcmp(e->type, "lost") == 0 && due(e)) {
            current->gpus[e->gpu].lost = 1;
            e->done = 1;
        }
    }
}

static nvmlReturn_t enter(enum symbol sym)
{
    pthread_mutex_lock(&lock);
    counts[sym]++;
    if (!init_refcount)
        return NVML_ERROR_UNINITIALIZED;
    load_scenario(0);
    apply_due_events();
    if (current->missing[sym])
        return NVML_ERROR_FUNCTION_NOT_FOUND; /* an older driver without this function */
    return NVML_SUCCESS;
}

static nvmlReturn_t leave(nvmlReturn_t rc)
{
    pthread_mutex_unlock(&lock);
    return rc;
}

struct target {
    unsigned index;
    struct gpu *gpu;
    struct mig *mig; /* NULL for the GPU itself */
};

static nvmlReturn_t resolve(nvmlDevice_t dev, struct target *t)
{
    const struct nvmlDevice_st *first = &handles[0][0];
    uintptr_t offset;
    struct gpu *g;
    if (!dev)
        return NVML_ERROR_INVALID_ARGUMENT;
    offset = (uintptr_t)dev - (uintptr_t)first;
    if ((uintptr_t)dev < (uintptr_t)first || offset % sizeof(*first) != 0 ||
        offset / sizeof(*first) >= MAX_GPUS * (1 + MAX_MIGS))
        return NVML_ERROR_INVALID_ARGUMENT;
    if (dev->gpu >= current->ngpu)
        return NVML_ERROR_INVALID_ARGUMENT;
    g = &current->gpus[dev->gpu];
    t->index = dev->gpu;
    t->gpu = g;
    t->mig = NULL;
    if (dev->mig >= 0) {
        if (g->mig_current != 1 || (unsigned)dev->mig >= g->nmig)
            return NVML_ERROR_INVALID_ARGUMENT;
        t->mig = &g->migs[dev->mig];
    }
    return NVML_SUCCESS;
}

/* The checks every device call makes, in this order (simnvml.py mirrors it): initialised,
 * valid handle, GPU not lost, call meaningful on a MIG handle, no forced error. */
static nvmlReturn_t check_device(nvmlReturn_t rc, nvmlDevice_t dev, int field, struct target *t)
{
    if (rc == NVML_SUCCESS)
        rc = resolve(dev, t);
    if (rc == NVML_SUCCESS && t->gpu->lost)
        rc = NVML_ERROR_GPU_IS_LOST;
    if (rc == NVML_SUCCESS && t->mig && (field == F_NONE || !mig_fields[field]))
        rc = NVML_ERROR_NOT_SUPPORTED;
    if (rc == NVML_SUCCESS && field != F_NONE)
        rc = t->gpu->errors[field];
    return rc;
}

static nvmlReturn_t enter_device(enum symbol sym, nvmlDevice_t dev, int field, struct target *t)
{
    return check_device(enter(sym), dev, field, t);
}

static nvmlReturn_t copy_string(const char *src, char *dst, unsigned length)
{
    size_t n = strlen(src);
    if (!dst)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (length < n + 1)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, n + 1);
    return NVML_SUCCESS;
}

static void memory_of(const struct target *t, unsigned long long *total,
                      unsigned long long *reserved, unsigned long long *free,
                      unsigned long long *used)
{
    unsigned long long taken;
    if (t->mig) {
        *total = t->mig->memory_total;
        *reserved = 0;
        *used = t->mig->memory_used;
    } else {
        *total = t->gpu->memory_total;
        *reserved = t->gpu->memory_reserved;
        *used = t->gpu->memory_used;
    }
    taken = *used + *reserved < *used ? U64_MAX : *used + *reserved;
    *free = taken < *total ? *total - taken : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Exported NVML API                                                                           */

static nvmlReturn_t do_init(enum symbol sym)
{
    enum load_result r;
    pthread_mutex_lock(&lock);
    counts[sym]++;
    r = load_scenario(1);
    if (r == LOAD_MISSING)
        return leave(NVML_ERROR_DRIVER_NOT_LOADED);
    if (r == LOAD_BAD)
        return leave(NVML_ERROR_UNKNOWN);
    init_refcount++;
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlInit_v2(void)
{
    return do_init(SYM_nvmlInit_v2);
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    return do_init(SYM_nvmlInitWithFlags);
}

nvmlReturn_t nvmlShutdown(void)
{
    nvmlReturn_t rc = enter(SYM_nvmlShutdown);
    if (rc == NVML_SUCCESS)
        init_refcount--;
    return leave(rc);
}

const char *nvmlErrorString(nvmlReturn_t result)
{
    const char *text = "Unknown Error";
    pthread_mutex_lock(&lock);
    counts[SYM_nvmlErrorString]++;
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < N_ERRORS; i++)
        if (errors_table[i].code == result)
            text = errors_table[i].text;
    return text;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    nvmlReturn_t rc = enter(SYM_nvmlSystemGetDriverVersion);
    if (rc == NVML_SUCCESS)
        rc = copy_string(current->driver_version, version, length);
    return leave(rc);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    nvmlReturn_t rc = enter(SYM_nvmlSystemGetNVMLVersion);
    if (rc == NVML_SUCCESS)
        rc = copy_string(current->nvml_version, version, length);
    return leave(rc);
}

static nvmlReturn_t cuda_version(enum symbol sym, int *version)
{
    nvmlReturn_t rc = enter(sym);
    if (rc == NVML_SUCCESS && !version)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *version = (int)current->cuda_driver_version;
    return leave(rc);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
    return cuda_version(SYM_nvmlSystemGetCudaDriverVersion, version);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version)
{
    return cuda_version(SYM_nvmlSystemGetCudaDriverVersion_v2, version);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    nvmlReturn_t rc = enter(SYM_nvmlDeviceGetCount_v2);
    if (rc == NVML_SUCCESS && !count)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *count = current->ngpu;
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    nvmlReturn_t rc = enter(SYM_nvmlDeviceGetHandleByIndex_v2);
    if (rc == NVML_SUCCESS && (!device || index >= current->ngpu))
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *device = &handles[index][0];
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    nvmlReturn_t rc = enter(SYM_nvmlDeviceGetHandleByUUID);
    if (rc == NVML_SUCCESS && (!uuid || !device))
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc != NVML_SUCCESS)
        return leave(rc);
    for (unsigned g = 0; g < current->ngpu; g++) {
        const struct gpu *gpu = &current->gpus[g];
        if (strcmp(gpu->uuid, uuid) == 0) {
            *device = &handles[g][0];
            return leave(NVML_SUCCESS);
        }
        for (unsigned m = 0; gpu->mig_current == 1 && m < gpu->nmig; m++)
            if (strcmp(gpu->migs[m].uuid, uuid) == 0) {
                *device = &handles[g][m + 1];
                return leave(NVML_SUCCESS);
            }
    }
    return leave(NVML_ERROR_NOT_FOUND);
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t dev, unsigned int *index)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetIndex, dev, F_NONE, &t);
    if (rc == NVML_SUCCESS && !index)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *index = t.index;
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int length)
{
    struct target t;
    char buf[MAX_NAME + 8];
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetName, dev, F_NAME, &t);
    if (rc == NVML_SUCCESS) {
        snprintf(buf, sizeof(buf), "%s%s", t.gpu->name, t.mig ? " MIG" : "");
        rc = copy_string(buf, name, length);
    }
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int length)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetUUID, dev, F_UUID, &t);
    if (rc == NVML_SUCCESS)
        rc = copy_string(t.mig ? t.mig->uuid : t.gpu->uuid, uuid, length);
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *memory)
{
    struct target t;
    unsigned long long reserved;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetMemoryInfo, dev, F_MEMORY, &t);
    if (rc == NVML_SUCCESS && !memory)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS) {
        memory_of(&t, &memory->total, &reserved, &memory->free, &memory->used);
        /* v1 counts the driver's reservation as used. */
        memory->used = memory->used + reserved < memory->used ? U64_MAX : memory->used + reserved;
    }
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t dev, nvmlMemory_v2_t *memory)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetMemoryInfo_v2, dev, F_MEMORY_V2, &t);
    if (rc == NVML_SUCCESS && !memory)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS && memory->version != NVML_MEMORY_V2_VERSION)
        rc = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    if (rc == NVML_SUCCESS)
        memory_of(&t, &memory->total, &memory->reserved, &memory->free, &memory->used);
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *utilization)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetUtilizationRates, dev, F_UTILIZATION, &t);
    if (rc == NVML_SUCCESS && !utilization)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS) {
        utilization->gpu = (unsigned)t.gpu->utilization_gpu;
        utilization->memory = (unsigned)t.gpu->utilization_memory;
    }
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *temp)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetTemperature, dev, F_TEMPERATURE, &t);
    if (rc == NVML_SUCCESS && (!temp || sensor != 0))
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *temp = (unsigned)t.gpu->temperature;
    return leave(rc);
}

static nvmlReturn_t get_uint(enum symbol sym, nvmlDevice_t dev, int field, size_t offset,
                             unsigned int *out)
{
    struct target t;
    nvmlReturn_t rc = enter_device(sym, dev, field, &t);
    if (rc == NVML_SUCCESS && !out)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *out = (unsigned)*(const unsigned long long *)(const void *)((const char *)t.gpu + offset);
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *power)
{
    return get_uint(SYM_nvmlDeviceGetPowerUsage, dev, F_POWER_USAGE,
                    offsetof(struct gpu, power_usage_mw), power);
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t dev, unsigned int *limit)
{
    return get_uint(SYM_nvmlDeviceGetEnforcedPowerLimit, dev, F_POWER_LIMIT,
                    offsetof(struct gpu, power_limit_mw), limit);
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t dev, unsigned int *current_mode,
                                  unsigned int *pending_mode)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetMigMode, dev, F_MIG_MODE, &t);
    if (rc == NVML_SUCCESS && (!current_mode || !pending_mode))
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS) {
        *current_mode = (unsigned)t.gpu->mig_current;
        *pending_mode = (unsigned)t.gpu->mig_pending;
    }
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t dev, unsigned int *count)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetMaxMigDeviceCount, dev, F_NONE, &t);
    if (rc == NVML_SUCCESS && !count)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *count = t.gpu->mig_current == 1 ? MAX_MIG_DEVICE_COUNT : 0;
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t dev, unsigned int index,
                                                 nvmlDevice_t *mig)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetMigDeviceHandleByIndex, dev, F_NONE, &t);
    if (rc == NVML_SUCCESS && !mig)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS && (t.gpu->mig_current != 1 || index >= t.gpu->nmig))
        rc = NVML_ERROR_NOT_FOUND;
    if (rc == NVML_SUCCESS)
        *mig = &handles[t.index][index + 1];
    return leave(rc);
}

/* The remaining MIG queries are answered by MIG handles too, so they skip enter_device's
 * NOT_SUPPORTED-on-MIG rule. */
static nvmlReturn_t enter_any_handle(enum symbol sym, nvmlDevice_t dev, struct target *t)
{
    nvmlReturn_t rc = enter(sym);
    if (rc == NVML_SUCCESS)
        rc = resolve(dev, t);
    if (rc == NVML_SUCCESS && t->gpu->lost)
        rc = NVML_ERROR_GPU_IS_LOST;
    return rc;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t dev, unsigned int *is_mig)
{
    struct target t;
    nvmlReturn_t rc = enter_any_handle(SYM_nvmlDeviceIsMigDeviceHandle, dev, &t);
    if (rc == NVML_SUCCESS && !is_mig)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *is_mig = t.mig != NULL;
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t dev, unsigned int *id)
{
    struct target t;
    nvmlReturn_t rc = enter_any_handle(SYM_nvmlDeviceGetGpuInstanceId, dev, &t);
    if (rc == NVML_SUCCESS && !t.mig)
        rc = NVML_ERROR_NOT_SUPPORTED;
    if (rc == NVML_SUCCESS && !id)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *id = (unsigned)t.mig->gpu_instance_id;
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t dev, unsigned int *id)
{
    struct target t;
    nvmlReturn_t rc = enter_any_handle(SYM_nvmlDeviceGetComputeInstanceId, dev, &t);
    if (rc == NVML_SUCCESS && !t.mig)
        rc = NVML_ERROR_NOT_SUPPORTED;
    if (rc == NVML_SUCCESS && !id)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *id = (unsigned)t.mig->compute_instance_id;
    return leave(rc);
}

/* The two-call protocol: with too small a *count (e.g. 0 and a NULL array) answer
 * INSUFFICIENT_SIZE and the needed count, unless there is nothing to report. */

/* SIGKILL is delivered asynchronously: until the target is a zombie (or gone), /proc still
 * shows it alive. Wait (bounded, 2 s) so the caller really sees a process that exited. */
static void wait_until_dead(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen(path, "r");
        if (!f)
            return;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *close_paren = strrchr(buf, ')');
        if (!close_paren || close_paren[1] == 0 || close_paren[2] == 'Z' || close_paren[2] == 'X')
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static nvmlReturn_t running_processes(enum symbol sym, nvmlDevice_t dev, int graphics,
                                      int is_v3, unsigned int *count, nvmlProcessInfo_t *infos)
{
    struct target t;
    unsigned n = 0;
    int field = graphics ? F_GRAPHICS_PROCESSES : F_COMPUTE_PROCESSES;
    nvmlReturn_t rc = enter(sym);
    /* process_api = 2 plays a driver that predates the _v3 queries. */
    if (rc == NVML_SUCCESS && is_v3 && current->process_api == 2)
        rc = NVML_ERROR_FUNCTION_NOT_FOUND;
    rc = check_device(rc, dev, field, &t);
    if (rc == NVML_SUCCESS && !count)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc != NVML_SUCCESS)
        return leave(rc);

    for (unsigned i = 0; i < t.gpu->nproc; i++) {
        const struct proc *p = &t.gpu->procs[i];
        if ((strcmp(p->type, "graphics") == 0) == graphics &&
            (!t.mig || p->gpu_instance_id == t.mig->gpu_instance_id))
            n++;
    }
    if (n == 0) {
        *count = 0;
        return leave(NVML_SUCCESS);
    }
    if (*count < n) {
        *count = n;
        return leave(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    if (!infos)
        return leave(NVML_ERROR_INVALID_ARGUMENT);

    n = 0;
    for (unsigned i = 0; i < t.gpu->nproc; i++) {
        struct proc *p = &t.gpu->procs[i];
        if ((strcmp(p->type, "graphics") == 0) != graphics ||
            (t.mig && p->gpu_instance_id != t.mig->gpu_instance_id))
            continue;
        infos[n].pid = (unsigned)p->pid;
        infos[n].usedGpuMemory = p->used_memory;
        infos[n].gpuInstanceId = (unsigned)p->gpu_instance_id;
        infos[n].computeInstanceId = (unsigned)p->compute_instance_id;
        n++;
    }
    *count = n;
    /* Kill after filling: the caller sees a pid whose process is already gone. */
    for (unsigned i = 0; i < t.gpu->nproc; i++) {
        struct proc *p = &t.gpu->procs[i];
        if (!p->kill_on_read || p->killed || (strcmp(p->type, "graphics") == 0) != graphics ||
            (t.mig && p->gpu_instance_id != t.mig->gpu_instance_id))
            continue;
        p->killed = 1;
        if (p->pid > 1 && p->pid <= INT_MAX && (pid_t)p->pid != getpid()) {
            kill((pid_t)p->pid, SIGKILL);
            wait_until_dead((pid_t)p->pid);
        }
    }
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t dev, unsigned int *count,
                                                     nvmlProcessInfo_t *infos)
{
    return running_processes(SYM_nvmlDeviceGetComputeRunningProcesses_v3, dev, 0, 1, count,
                             infos);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t dev, unsigned int *count,
                                                     nvmlProcessInfo_t *infos)
{
    return running_processes(SYM_nvmlDeviceGetComputeRunningProcesses_v2, dev, 0, 0, count,
                             infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t dev, unsigned int *count,
                                                      nvmlProcessInfo_t *infos)
{
    return running_processes(SYM_nvmlDeviceGetGraphicsRunningProcesses_v3, dev, 1, 1, count,
                             infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t dev, unsigned int *count,
                                                      nvmlProcessInfo_t *infos)
{
    return running_processes(SYM_nvmlDeviceGetGraphicsRunningProcesses_v2, dev, 1, 0, count,
                             infos);
}

/* ------------------------------------------------------------------------------------------ */
/* Health: clock event reasons, performance state, PCIe, field values, process utilisation     */

static nvmlReturn_t clocks_event_reasons(enum symbol sym, nvmlDevice_t dev,
                                         unsigned long long *reasons)
{
    struct target t;
    nvmlReturn_t rc = enter_device(sym, dev, F_CLOCKS_EVENT_REASONS, &t);
    if (rc == NVML_SUCCESS && !reasons)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *reasons = t.gpu->clocks_event_reasons;
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t dev,
                                                    unsigned long long *reasons)
{
    return clocks_event_reasons(SYM_nvmlDeviceGetCurrentClocksEventReasons, dev, reasons);
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t dev,
                                                       unsigned long long *reasons)
{
    return clocks_event_reasons(SYM_nvmlDeviceGetCurrentClocksThrottleReasons, dev, reasons);
}

nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t dev, unsigned int *pstate)
{
    return get_uint(SYM_nvmlDeviceGetPerformanceState, dev, F_PERFORMANCE_STATE,
                    offsetof(struct gpu, performance_state), pstate);
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t dev, unsigned int *gen)
{
    return get_uint(SYM_nvmlDeviceGetCurrPcieLinkGeneration, dev, F_PCIE_LINK,
                    offsetof(struct gpu, pcie_gen), gen);
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t dev, unsigned int *gen)
{
    return get_uint(SYM_nvmlDeviceGetMaxPcieLinkGeneration, dev, F_PCIE_LINK,
                    offsetof(struct gpu, pcie_gen_max), gen);
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t dev, unsigned int *width)
{
    return get_uint(SYM_nvmlDeviceGetCurrPcieLinkWidth, dev, F_PCIE_LINK,
                    offsetof(struct gpu, pcie_width), width);
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t dev, unsigned int *width)
{
    return get_uint(SYM_nvmlDeviceGetMaxPcieLinkWidth, dev, F_PCIE_LINK,
                    offsetof(struct gpu, pcie_width_max), width);
}

/* counter 0: TX, 1: RX, in KB/s. Takes 20 ms, as the real one does, outside the lock. */
nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t dev, int counter, unsigned int *value)
{
    struct target t;
    unsigned long long kbps = 0;
    struct timespec sample = {0, PCIE_SAMPLE_NS};
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetPcieThroughput, dev, F_PCIE_THROUGHPUT, &t);
    if (rc == NVML_SUCCESS && (!value || counter < 0 || counter > 1))
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        kbps = counter ? t.gpu->pcie_rx_kbps : t.gpu->pcie_tx_kbps;
    leave(rc);
    if (rc == NVML_SUCCESS) {
        nanosleep(&sample, NULL);
        *value = (unsigned)kbps;
    }
    return rc;
}

struct field_def {
    unsigned id;
    int field; /* the scenario's errors key that fails it */
    size_t offset;
    int type;
    int nvlink; /* NOT_SUPPORTED on a GPU without NVLink */
};

/* The NVML_FI_DEV_* ids the NVML source batches, with NVML's numbers. */
static const struct field_def field_defs[] = {
    {1, F_ECC_MODE, offsetof(struct gpu, ecc_mode), VT_UINT, 0},
    {3, F_ECC_COUNTS, offsetof(struct gpu, ecc_sbe_volatile), VT_ULL, 0},
    {4, F_ECC_COUNTS, offsetof(struct gpu, ecc_dbe_volatile), VT_ULL, 0},
    {5, F_ECC_COUNTS, offsetof(struct gpu, ecc_sbe_aggregate), VT_ULL, 0},
    {6, F_ECC_COUNTS, offsetof(struct gpu, ecc_dbe_aggregate), VT_ULL, 0},
    {29, F_RETIRED_PAGES, offsetof(struct gpu, retired_sbe), VT_ULL, 0},
    {30, F_RETIRED_PAGES, offsetof(struct gpu, retired_dbe), VT_ULL, 0},
    {31, F_RETIRED_PAGES, offsetof(struct gpu, retired_pending), VT_UINT, 0},
    {38, F_NVLINK, offsetof(struct gpu, nvlink_crc_flit), VT_ULL, 1},
    {45, F_NVLINK, offsetof(struct gpu, nvlink_crc_data), VT_ULL, 1},
    {52, F_NVLINK, offsetof(struct gpu, nvlink_replay), VT_ULL, 1},
    {59, F_NVLINK, offsetof(struct gpu, nvlink_recovery), VT_ULL, 1},
    {91, F_NVLINK, offsetof(struct gpu, nvlink_links), VT_UINT, 1},
    {94, F_PCIE_REPLAY, offsetof(struct gpu, pcie_replay), VT_ULL, 0},
    {142, F_REMAPPED_ROWS, offsetof(struct gpu, remapped_cor), VT_UINT, 0},
    {143, F_REMAPPED_ROWS, offsetof(struct gpu, remapped_unc), VT_UINT, 0},
    {144, F_REMAPPED_ROWS, offsetof(struct gpu, remap_pending), VT_UINT, 0},
    {145, F_REMAPPED_ROWS, offsetof(struct gpu, remap_failure), VT_UINT, 0},
};

#define N_FIELD_DEFS (sizeof(field_defs) / sizeof(field_defs[0]))

nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t dev, int count, nvmlFieldValue_t *values)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetFieldValues, dev, F_FIELD_VALUES, &t);
    if (rc == NVML_SUCCESS && (count < 0 || (count > 0 && !values)))
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc != NVML_SUCCESS)
        return leave(rc);
    for (int i = 0; i < count; i++) {
        nvmlFieldValue_t *v = &values[i];
        const struct field_def *d = NULL;
        unsigned long long x;
        for (size_t k = 0; k < N_FIELD_DEFS; k++)
            if (field_defs[k].id == v->fieldId)
                d = &field_defs[k];
        v->timestamp = (long long)current->wall_us;
        v->latencyUsec = 0;
        memset(&v->value, 0, sizeof(v->value));
        if (!d) {
            v->valueType = VT_ULL;
            v->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
            continue;
        }
        v->valueType = d->type;
        v->nvmlReturn = t.gpu->errors[d->field];
        if (d->nvlink && t.gpu->nvlink_links == 0)
            v->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        if (v->nvmlReturn != NVML_SUCCESS)
            continue;
        x = *(const unsigned long long *)(const void *)((const char *)t.gpu + d->offset);
        if (d->type == VT_UINT)
            v->value.uiVal = (unsigned)x;
        else
            v->value.ullVal = x;
    }
    return leave(NVML_SUCCESS);
}

/* Samples newer than last_seen: one per process with sm_util >= 0, stamped with the time the
 * scenario was loaded, so asking again with that stamp finds nothing new (NOT_FOUND). */
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t dev,
                                             nvmlProcessUtilizationSample_t *samples,
                                             unsigned int *count, unsigned long long last_seen)
{
    struct target t;
    unsigned n = 0;
    nvmlReturn_t rc =
        enter_device(SYM_nvmlDeviceGetProcessUtilization, dev, F_PROCESS_UTILIZATION, &t);
    if (rc == NVML_SUCCESS && !count)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc != NVML_SUCCESS)
        return leave(rc);
    if (current->wall_us > last_seen)
        for (unsigned i = 0; i < t.gpu->nproc; i++)
            n += t.gpu->procs[i].sm_util >= 0;
    if (n == 0)
        return leave(NVML_ERROR_NOT_FOUND);
    if (!samples || *count < n) {
        *count = n;
        return leave(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    n = 0;
    for (unsigned i = 0; i < t.gpu->nproc; i++) {
        const struct proc *p = &t.gpu->procs[i];
        if (p->sm_util < 0)
            continue;
        samples[n].pid = (unsigned)p->pid;
        samples[n].timeStamp = current->wall_us;
        samples[n].smUtil = (unsigned)p->sm_util;
        samples[n].memUtil = (unsigned)p->mem_util;
        samples[n].encUtil = 0;
        samples[n].decUtil = 0;
        n++;
    }
    *count = n;
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------------------------ */
/* Events: [[event]] lines delivered through nvmlEventSetWait_v2 at their time                 */

static int valid_set(nvmlEventSet_t set)
{
    for (unsigned i = 0; i < MAX_EVENT_SETS; i++)
        if (set == &event_sets[i])
            return set->used;
    return 0;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    nvmlReturn_t rc = enter(SYM_nvmlEventSetCreate);
    if (rc == NVML_SUCCESS && !set)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc != NVML_SUCCESS)
        return leave(rc);
    for (unsigned i = 0; i < MAX_EVENT_SETS; i++)
        if (!event_sets[i].used) {
            memset(&event_sets[i], 0, sizeof(event_sets[i]));
            event_sets[i].used = 1;
            *set = &event_sets[i];
            return leave(NVML_SUCCESS);
        }
    return leave(NVML_ERROR_MEMORY);
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    nvmlReturn_t rc = enter(SYM_nvmlEventSetFree);
    if (rc == NVML_SUCCESS && !valid_set(set))
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        set->used = 0;
    return leave(rc);
}

nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t dev, unsigned long long *types)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceGetSupportedEventTypes, dev, F_EVENTS, &t);
    if (rc == NVML_SUCCESS && !types)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS)
        *types = t.gpu->supported_events;
    return leave(rc);
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t dev, unsigned long long types,
                                      nvmlEventSet_t set)
{
    struct target t;
    nvmlReturn_t rc = enter_device(SYM_nvmlDeviceRegisterEvents, dev, F_EVENTS, &t);
    if (rc == NVML_SUCCESS && !valid_set(set))
        rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS && (types & ~t.gpu->supported_events))
        rc = NVML_ERROR_NOT_SUPPORTED;
    if (rc == NVML_SUCCESS)
        set->registered[t.index] |= types;
    return leave(rc);
}

static unsigned long long event_type(const struct event *e)
{
    if (strcmp(e->type, "xid") == 0)
        return EVENT_XID;
    if (strcmp(e->type, "sbe") == 0)
        return EVENT_SBE;
    if (strcmp(e->type, "dbe") == 0)
        return EVENT_DBE;
    return 0;
}

/* Under the lock: the first due event the set registered for, else GPU_IS_LOST when one of
 * its GPUs is lost, else NOT_FOUND. */
static nvmlReturn_t next_event(nvmlEventSet_t set, nvmlEventData_t *data)
{
    for (unsigned i = 0; i < current->nevent; i++) {
        struct event *e = &current->events[i];
        unsigned long long type = event_type(e);
        if (e->done || !type || !(set->registered[e->gpu] & type) || !due(e))
            continue;
        e->done = 1;
        data->device = &handles[e->gpu][0];
        data->eventType = type;
        data->eventData = type == EVENT_XID ? e->data : 0;
        data->gpuInstanceId = NO_INSTANCE;
        data->computeInstanceId = NO_INSTANCE;
        return NVML_SUCCESS;
    }
    for (unsigned g = 0; g < current->ngpu; g++)
        if (set->registered[g] && current->gpus[g].lost)
            return NVML_ERROR_GPU_IS_LOST;
    return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int ms)
{
    long long deadline = now_ns() + (long long)ms * 1000000ll;
    nvmlReturn_t rc = enter(SYM_nvmlEventSetWait_v2);
    if (rc == NVML_SUCCESS && (!valid_set(set) || !data))
        rc = NVML_ERROR_INVALID_ARGUMENT;
    while (rc == NVML_SUCCESS) {
        long long left;
        struct timespec nap;
        rc = next_event(set, data);
        if (rc != NVML_ERROR_NOT_FOUND)
            break;
        left = deadline - now_ns();
        if (left <= 0) {
            rc = NVML_ERROR_TIMEOUT;
            break;
        }
        /* Sleep without the lock, waking now and then (200 ms) to see a rewritten scenario.
         * A real driver blocks without CPU; waking every 50 ms cost the watcher 0.1 % CPU,
         * a third of what the bench allows a paused vramtop. */
        nap.tv_sec = 0;
        nap.tv_nsec = left < 200000000ll ? (long)left : 200000000l;
        pthread_mutex_unlock(&lock);
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&lock);
        if (!init_refcount || !set->used) {
            rc = !init_refcount ? NVML_ERROR_UNINITIALIZED : NVML_ERROR_INVALID_ARGUMENT;
            break;
        }
        load_scenario(0);
        apply_due_events();
        rc = NVML_SUCCESS;
    }
    return leave(rc);
}

/* ------------------------------------------------------------------------------------------ */
/* Test hooks                                                                                  */

unsigned long long fake_nvml_call_count(const char *symbol)
{
    unsigned long long n = 0;
    if (!symbol)
        return 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < SYM_COUNT; i++)
        if (strcmp(symbol, "*") == 0 || strcmp(symbol, symbol_names[i]) == 0)
            n += counts[i];
    pthread_mutex_unlock(&lock);
    return n;
}

void fake_nvml_reset_counts(void)
{
    pthread_mutex_lock(&lock);
    memset(counts, 0, sizeof(counts));
    pthread_mutex_unlock(&lock);
}

/* The counted symbols, for enumerating: NULL past the last. */
const char *fake_nvml_symbol_name(unsigned int index)
{
    return index < SYM_COUNT ? symbol_names[index] : NULL;
}
