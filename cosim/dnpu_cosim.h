/* dnpu co-simulation harness: the C ABI the Python binding (dnpu.runtime.cosim) calls.
 *
 * One handle = one Verilator model of dnpu_top with its own clock, AXI4-Lite master,
 * DRAM model behind the NPU's AXI4 master and optional FST waveform. Every call is one
 * host transaction (a register access, a block of memory, a whole run); the per-cycle
 * work stays on this side. See cosim/README.md.
 *
 * Conventions: functions returning int give 0 (or a value >= 0) on success and -1 on
 * failure, with the reason in dnpu_cosim_error(handle). dnpu_cosim_create returns NULL
 * on failure; dnpu_cosim_error(NULL) then says why (per thread).
 *
 * Threads: handles are independent (each has its own VerilatedContext, DRAM model and error
 * string), so different handles may be driven from different threads at the same time. One
 * handle must not be entered by two threads at once: callers serialize its calls (the Python
 * binding holds a lock per Model).
 */
#ifndef DNPU_COSIM_H
#define DNPU_COSIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DNPU_COSIM_API __attribute__((visibility("default")))

/* Bumped whenever a signature or the run-result layout changes. */
#define DNPU_COSIM_ABI_VERSION 2

typedef struct dnpu_cosim dnpu_cosim;

/* Why dnpu_cosim_run returned. */
enum {
    DNPU_RUN_IDLE = 0,          /* STATUS shows the program ended: DONE or ERROR, not BUSY */
    DNPU_RUN_BUDGET = 1,        /* the cycle budget ran out first */
    DNPU_RUN_WATCHDOG = 2,      /* no retire and no AXI4 handshake for `watchdog` cycles */
    DNPU_RUN_SIM_ERROR = 3,     /* the model hit $stop / $fatal / $finish */
    DNPU_RUN_AXIL_TIMEOUT = 4   /* the AXI4-Lite slave did not answer the START write */
};

typedef struct {
    uint64_t cycles;            /* cycles simulated by this call */
    uint64_t end_cycle;         /* absolute cycle count when it returned */
    uint64_t retired;           /* retire_valid pulses seen during the call */
    uint64_t last_progress;     /* absolute cycle of the last retire or AXI4 handshake */
    uint64_t r_beats;           /* AXI4 R handshakes during the call */
    uint64_t w_beats;           /* AXI4 W handshakes during the call */
    uint32_t reason;            /* DNPU_RUN_* */
    uint32_t status;            /* the last STATUS value read */
    uint32_t last_retire_pc;    /* PC of the last retired instruction (0 if none yet) */
    uint32_t reserved;
} dnpu_cosim_run_result;

/* One retired instruction as the retire_* port of dnpu_top showed it (the trace capture). */
typedef struct {
    uint64_t cycle;             /* absolute cycle of the rising edge that sampled it */
    uint32_t pc;                /* retire_pc */
    uint32_t word;              /* retire_word */
    uint32_t x_data;            /* retire_x_data (meaningful when x_we) */
    uint32_t f_data;            /* retire_f_data (meaningful when f_we) */
    uint8_t x_we, x_idx;        /* an x register write: retire_x_we, retire_x_idx */
    uint8_t f_we, f_idx;        /* an f register write: retire_f_we, retire_f_idx */
    uint32_t reserved;
} dnpu_cosim_retire;

/* What this library was built for, e.g. "profile=sim data_width=128 ...". */
DNPU_COSIM_API int dnpu_cosim_abi_version(void);
DNPU_COSIM_API const char *dnpu_cosim_build_info(void);

/* A model in reset-released, idle state (rst_n held low for a few cycles first).
 * clock_period_ps only labels time in waveforms. */
DNPU_COSIM_API dnpu_cosim *dnpu_cosim_create(uint64_t clock_period_ps);
DNPU_COSIM_API void dnpu_cosim_destroy(dnpu_cosim *h);
DNPU_COSIM_API const char *dnpu_cosim_error(const dnpu_cosim *h);

/* Knobs (set) and statistics (get) by name; unknown names fail. See cosim/README.md:
 * read_latency, write_latency, bytes_per_cycle, max_reads, max_writes, stall_reads_after,
 * stall_writes_after, stress_seed, fail_read_at, fail_write_at, fail_resp, fail_addr,
 * fail_bytes, axil_timeout; get also: cycle, beat_bytes, data_width, addr_width, id_width,
 * max_burst, ar, r, aw, w, b, retired, protocol_errors, regions, pages, wave_open,
 * trace_count, trace_dropped, trace_capacity, injected_r, injected_b, stress_ar, stress_r,
 * stress_aw, stress_w, stress_b, stress_latency. */
DNPU_COSIM_API int dnpu_cosim_set(dnpu_cosim *h, const char *name, int64_t value);
DNPU_COSIM_API int dnpu_cosim_get(dnpu_cosim *h, const char *name, int64_t *value);

/* rst_n low for `cycles` cycles (>= 1), then two idle cycles. In-flight AXI4 traffic in
 * the DRAM model is dropped; memory contents and regions are kept. */
DNPU_COSIM_API int dnpu_cosim_reset(dnpu_cosim *h, uint32_t cycles);
/* Advance the clock (the NPU runs if it was started). */
DNPU_COSIM_API int dnpu_cosim_step(dnpu_cosim *h, uint64_t cycles);

/* One AXI4-Lite transaction each, clocked until the response (bounded by axil_timeout).
 * csr_write returns BRESP (0 = OKAY), csr_read stores RDATA and returns RRESP. */
DNPU_COSIM_API int dnpu_cosim_csr_write(dnpu_cosim *h, uint32_t offset, uint32_t value);
DNPU_COSIM_API int dnpu_cosim_csr_read(dnpu_cosim *h, uint32_t offset, uint32_t *value);

/* DRAM model. map: declare [addr, addr + nbytes) readable and writable (zero-filled where
 * not written yet); both ends must be AXI4 beat-aligned. mem_write / mem_read: host
 * (backdoor, zero-time) access; every byte must be mapped. */
DNPU_COSIM_API int dnpu_cosim_map(dnpu_cosim *h, uint64_t addr, uint64_t nbytes);
DNPU_COSIM_API int dnpu_cosim_mem_write(dnpu_cosim *h, uint64_t addr, const void *data, uint64_t n);
DNPU_COSIM_API int dnpu_cosim_mem_read(dnpu_cosim *h, uint64_t addr, void *data, uint64_t n);

/* One program run, entirely in C++: if ctrl != 0, write it to CTRL (START, optionally with
 * CLEAR_COUNTERS), then clock while polling STATUS over AXI4-Lite until the program ends
 * (DONE or ERROR without BUSY), `budget` cycles pass, or the watchdog sees no retire and no
 * AXI4 handshake for `watchdog` cycles (0 = no watchdog). Returns 0 and fills *res. */
DNPU_COSIM_API int dnpu_cosim_run(dnpu_cosim *h, uint32_t ctrl, uint64_t budget, uint64_t watchdog,
                                  dnpu_cosim_run_result *res);

/* Retire trace capture. trace_start(capacity): clear the buffer and record every retire from
 * now on, the first `capacity` of them (later ones are only counted: statistic
 * trace_dropped); capacity 0 switches capture off (the buffer is kept for reading).
 * At most DNPU_COSIM_TRACE_MAX entries. trace_read copies up to n entries from index
 * `first` into out and returns how many it copied (statistic trace_count: entries held). */
#define DNPU_COSIM_TRACE_MAX (1ull << 24)
DNPU_COSIM_API int dnpu_cosim_trace_start(dnpu_cosim *h, uint64_t capacity);
DNPU_COSIM_API int64_t dnpu_cosim_trace_read(dnpu_cosim *h, uint64_t first, dnpu_cosim_retire *out, uint64_t n);

/* FST waveform to `path`, dumping from absolute cycle `from_cycle` on; closed by
 * wave_close, by the next wave_open or by destroy. */
DNPU_COSIM_API int dnpu_cosim_wave_open(dnpu_cosim *h, const char *path, uint64_t from_cycle);
DNPU_COSIM_API int dnpu_cosim_wave_close(dnpu_cosim *h);

/* A human description of the bus state (outstanding bursts, last handshakes, stall knobs,
 * protocol errors), NUL-terminated into buf (truncated to n bytes). Returns the full length. */
DNPU_COSIM_API int dnpu_cosim_describe(dnpu_cosim *h, char *buf, uint64_t n);

#ifdef __cplusplus
}
#endif

#endif /* DNPU_COSIM_H */
