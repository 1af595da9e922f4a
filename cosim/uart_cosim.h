/* dnpu co-simulated serial board: the C ABI of libdnpu_cosim_uart.so (cosim/uart_harness.cpp),
 * called by dnpu.runtime.cosim.serial_board.
 *
 * One handle = one Verilator model of dnpu_uart_top (the NPU, its on-chip memory and the UART
 * bridge) with its own clock. The harness drives uart_rx from an input byte queue, bit by bit
 * (8N1, least significant bit first, DNPU_UART_CLKS_PER_BIT cycles a bit), and decodes uart_tx
 * into an output byte queue, sampling each bit in its middle; all per-cycle work stays here.
 *
 * Conventions as in dnpu_cosim.h: int results are >= 0 on success, -1 on failure with the
 * reason in dnpu_cosim_uart_error(handle); one thread at a time per handle.
 */
#ifndef DNPU_UART_COSIM_H
#define DNPU_UART_COSIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DNPU_UART_API __attribute__((visibility("default")))

/* Bumped whenever a signature or the step-result layout changes. */
#define DNPU_UART_ABI_VERSION 1

typedef struct dnpu_cosim_uart dnpu_cosim_uart;

/* What dnpu_cosim_uart_step saw when it returned. */
typedef struct {
    uint64_t cycles;            /* cycles simulated by this call */
    uint64_t cycle;             /* absolute cycle count */
    uint64_t in_pending;        /* input bytes not yet fully shifted onto uart_rx */
    uint64_t out_pending;       /* decoded uart_tx bytes waiting in the output queue */
    uint32_t busy;              /* dnpu_uart_top's busy (the NPU's STATUS.BUSY) */
    uint32_t link_idle;         /* the bridge waits for a sync byte and its tx is idle */
    uint32_t rx_idle;           /* the harness's decoder is not inside a byte */
    uint32_t reserved;
} dnpu_cosim_uart_state;

DNPU_UART_API int dnpu_cosim_uart_abi_version(void);
/* "profile=sim clks_per_bit=8 mem_bytes=262144" */
DNPU_UART_API const char *dnpu_cosim_uart_build_info(void);

/* A board out of reset (rst_n low for a few cycles first), lines idle. */
DNPU_UART_API dnpu_cosim_uart *dnpu_cosim_uart_create(void);
DNPU_UART_API void dnpu_cosim_uart_destroy(dnpu_cosim_uart *h);
DNPU_UART_API const char *dnpu_cosim_uart_error(const dnpu_cosim_uart *h);

/* rst_n low for `cycles` cycles (>= 1); both byte queues and the line drivers are cleared. */
DNPU_UART_API int dnpu_cosim_uart_reset(dnpu_cosim_uart *h, uint32_t cycles);

/* Queue n bytes for uart_rx. */
DNPU_UART_API int dnpu_cosim_uart_send(dnpu_cosim_uart *h, const void *data, uint64_t n);
/* Move up to n decoded bytes from the output queue into out; returns how many. */
DNPU_UART_API int64_t dnpu_cosim_uart_recv(dnpu_cosim_uart *h, void *out, uint64_t n);

/* Clock up to max_cycles cycles. With stop_when_quiet != 0, return early once nothing is left
 * to do: no input queued or being shifted, the decoder idle, link_idle high and busy low.
 * Returns 0 and fills *st. */
DNPU_UART_API int dnpu_cosim_uart_step(dnpu_cosim_uart *h, uint64_t max_cycles, int stop_when_quiet,
                                       dnpu_cosim_uart_state *st);

/* Statistics by name: cycle, clks_per_bit, mem_bytes, bytes_in, bytes_out, framing_errors. */
DNPU_UART_API int dnpu_cosim_uart_get(dnpu_cosim_uart *h, const char *name, int64_t *value);

#ifdef __cplusplus
}
#endif

#endif /* DNPU_UART_COSIM_H */
