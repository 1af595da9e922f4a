// dnpu co-simulated serial board: dnpu_uart_top under Verilator, its UART lines driven and
// decoded here (cosim/uart_cosim.h). Python moves bytes between a TCP client and the two
// queues and asks for cycles; every bit is clocked in C++.
//
// Build-time constants (dnpu.runtime.cosim.build passes them, the same values it gives
// Verilator as -GCLKS_PER_BIT / -GMEM_BYTES): DNPU_COSIM_PROFILE_NAME, DNPU_UART_CLKS_PER_BIT,
// DNPU_UART_MEM_BYTES.

#include "Vdnpu_uart_top.h"
#include "verilated.h"

#include "uart_cosim.h"

#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <string>

#if !defined(DNPU_COSIM_PROFILE_NAME) || !defined(DNPU_UART_CLKS_PER_BIT) || !defined(DNPU_UART_MEM_BYTES)
#error "build through dnpu.runtime.cosim (top dnpu_uart_top): the defines come from hw/serial.toml"
#endif

#define DNPU_STR2(x) #x
#define DNPU_STR(x) DNPU_STR2(x)

namespace {

constexpr uint32_t CPB = DNPU_UART_CLKS_PER_BIT;
static_assert(CPB >= 4, "a bit of at least 4 cycles: the decoder samples in the middle");

thread_local std::string g_error;

}  // namespace

struct dnpu_cosim_uart {
    dnpu_cosim_uart() : ctx(new VerilatedContext) {
        ctx->fatalOnError(false);
        ctx->quiet(true);
        top.reset(new Vdnpu_uart_top(ctx.get(), "TOP"));
        top->clk = 0;
        top->rst_n = 0;
        top->uart_rx = 1;
        top->eval();
        reset(4);
    }

    ~dnpu_cosim_uart() { top->final(); }

    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vdnpu_uart_top> top;
    std::string error;
    uint64_t cycle = 0;
    uint64_t bytes_in = 0, bytes_out = 0, framing_errors = 0;

    // uart_rx driver: the byte being shifted (10 bits with start and stop), then the queue.
    std::deque<uint8_t> in;
    bool tx_active = false;
    uint32_t tx_frame = 0, tx_bit = 0, tx_left = 0;

    // uart_tx decoder: waiting for a start bit, or counting to the middle of the next bit.
    std::deque<uint8_t> out;
    bool rx_active = false;
    uint32_t rx_bit = 0, rx_left = 0, rx_byte = 0;

    void reset(uint32_t cycles) {
        in.clear();
        out.clear();
        tx_active = rx_active = false;
        top->uart_rx = 1;
        top->rst_n = 0;
        for (uint32_t i = 0; i < cycles; ++i) tick();
        top->rst_n = 1;
        tick();
        tick();
    }

    // The line level the driver shows during this cycle; advances the driver by one cycle.
    uint8_t drive() {
        if (!tx_active) {
            if (in.empty()) return 1;
            tx_frame = (1u << 9) | (uint32_t(in.front()) << 1);   // stop, data LSB first, start
            in.pop_front();
            ++bytes_in;
            tx_active = true;
            tx_bit = 0;
            tx_left = CPB;
        }
        const uint8_t level = (tx_frame >> tx_bit) & 1;
        if (--tx_left == 0) {
            tx_left = CPB;
            if (++tx_bit == 10) tx_active = false;
        }
        return level;
    }

    // One cycle of uart_tx as the board drove it.
    void decode(uint8_t line) {
        if (!rx_active) {
            if (line == 0) {                 // a start bit: its middle is half a bit ahead
                rx_active = true;
                rx_bit = 0;
                rx_left = CPB / 2;
                rx_byte = 0;
            }
            return;
        }
        if (--rx_left != 0) return;
        rx_left = CPB;
        if (rx_bit == 0) {                   // the start bit's middle: still low, else a glitch
            if (line != 0) rx_active = false;
        } else if (rx_bit <= 8) {
            rx_byte |= uint32_t(line) << (rx_bit - 1);
        } else {                             // the stop bit
            if (line) {
                out.push_back(uint8_t(rx_byte));
                ++bytes_out;
            } else {
                ++framing_errors;
            }
            rx_active = false;
            return;
        }
        ++rx_bit;
    }

    void tick() {
        Vdnpu_uart_top* t = top.get();
        t->uart_rx = drive();
        t->clk = 1;
        t->eval();
        ++cycle;
        decode(t->uart_tx);
        t->clk = 0;
        t->eval();
    }

    bool quiet() const {
        return in.empty() && !tx_active && !rx_active && top->link_idle && !top->busy;
    }

    void state(dnpu_cosim_uart_state* st, uint64_t cycles) const {
        st->cycles = cycles;
        st->cycle = cycle;
        st->in_pending = in.size() + (tx_active ? 1 : 0);
        st->out_pending = out.size();
        st->busy = top->busy;
        st->link_idle = top->link_idle;
        st->rx_idle = !rx_active;
        st->reserved = 0;
    }
};

// ------------------------------------------------------------------------------------
extern "C" {

int dnpu_cosim_uart_abi_version(void) { return DNPU_UART_ABI_VERSION; }

const char* dnpu_cosim_uart_build_info(void) {
    return "profile=" DNPU_STR(DNPU_COSIM_PROFILE_NAME) " clks_per_bit=" DNPU_STR(DNPU_UART_CLKS_PER_BIT)
           " mem_bytes=" DNPU_STR(DNPU_UART_MEM_BYTES);
}

dnpu_cosim_uart* dnpu_cosim_uart_create(void) {
    try {
        return new dnpu_cosim_uart();
    } catch (const std::exception& e) {
        g_error = std::string("creating the serial board model: ") + e.what();
    } catch (...) {
        g_error = "creating the serial board model: unknown exception";
    }
    return nullptr;
}

void dnpu_cosim_uart_destroy(dnpu_cosim_uart* h) { delete h; }

const char* dnpu_cosim_uart_error(const dnpu_cosim_uart* h) { return h ? h->error.c_str() : g_error.c_str(); }

int dnpu_cosim_uart_reset(dnpu_cosim_uart* h, uint32_t cycles) {
    if (cycles < 1) {
        h->error = "reset: at least one cycle";
        return -1;
    }
    h->reset(cycles);
    return 0;
}

int dnpu_cosim_uart_send(dnpu_cosim_uart* h, const void* data, uint64_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    h->in.insert(h->in.end(), p, p + n);
    return 0;
}

int64_t dnpu_cosim_uart_recv(dnpu_cosim_uart* h, void* out, uint64_t n) {
    uint8_t* p = static_cast<uint8_t*>(out);
    uint64_t k = 0;
    while (k < n && !h->out.empty()) {
        p[k++] = h->out.front();
        h->out.pop_front();
    }
    return int64_t(k);
}

int dnpu_cosim_uart_step(dnpu_cosim_uart* h, uint64_t max_cycles, int stop_when_quiet,
                         dnpu_cosim_uart_state* st) {
    uint64_t n = 0;
    while (n < max_cycles) {
        if (stop_when_quiet && h->quiet()) break;
        h->tick();
        ++n;
        if (h->ctx->gotFinish()) {
            h->error = "the simulated RTL reached $finish or $stop";
            h->state(st, n);
            return -1;
        }
    }
    h->state(st, n);
    return 0;
}

int dnpu_cosim_uart_get(dnpu_cosim_uart* h, const char* name, int64_t* v) {
    const std::string k = name ? name : "";
    if (k == "cycle") *v = int64_t(h->cycle);
    else if (k == "clks_per_bit") *v = CPB;
    else if (k == "mem_bytes") *v = int64_t(DNPU_UART_MEM_BYTES);
    else if (k == "bytes_in") *v = int64_t(h->bytes_in);
    else if (k == "bytes_out") *v = int64_t(h->bytes_out);
    else if (k == "framing_errors") *v = int64_t(h->framing_errors);
    else {
        h->error = "unknown statistic '" + k + "'";
        return -1;
    }
    return 0;
}

}  // extern "C"
