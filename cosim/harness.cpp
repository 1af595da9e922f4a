// dnpu co-simulation harness: dnpu_top under Verilator, driven per transaction.
//
// Per cycle (all here, never in Python): sample the NPU's outputs, rising edge, update
// the DRAM model (dram.h) and the AXI4-Lite master with the handshakes of that edge, drive
// their registered outputs, falling edge. Python calls in per transaction: a register
// access, a memory block, a whole run (dnpu_cosim.h). See cosim/README.md.
//
// Build-time constants (the builder in dnpu.runtime.cosim passes them from the hardware
// profile and the register map, the same sources the RTL headers are generated from):
//   DNPU_COSIM_PROFILE_NAME, DNPU_COSIM_DATA_W, DNPU_COSIM_ADDR_W, DNPU_COSIM_ID_W,
//   DNPU_COSIM_MAX_BURST, DNPU_COSIM_CSR_CTRL, DNPU_COSIM_CSR_STATUS,
//   DNPU_COSIM_STATUS_BUSY, DNPU_COSIM_STATUS_DONE, DNPU_COSIM_STATUS_ERROR (masks)

#include "Vdnpu_top.h"
#include "verilated.h"
#include "verilated_fst_c.h"

#include "dnpu_cosim.h"
#include "dram.h"

#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#if !defined(DNPU_COSIM_PROFILE_NAME) || !defined(DNPU_COSIM_DATA_W) || !defined(DNPU_COSIM_ADDR_W) || \
    !defined(DNPU_COSIM_ID_W) || !defined(DNPU_COSIM_MAX_BURST) || !defined(DNPU_COSIM_CSR_CTRL) ||   \
    !defined(DNPU_COSIM_CSR_STATUS) || !defined(DNPU_COSIM_STATUS_BUSY) ||                            \
    !defined(DNPU_COSIM_STATUS_DONE) || !defined(DNPU_COSIM_STATUS_ERROR)
#error "build through dnpu.runtime.cosim: the DNPU_COSIM_* defines come from the hardware profile"
#endif

#define DNPU_STR2(x) #x
#define DNPU_STR(x) DNPU_STR2(x)

using namespace dnpu_sim;

namespace {

constexpr unsigned BB = DNPU_COSIM_DATA_W / 8;
static_assert(BB >= 4 && BB <= MAX_BEAT_BYTES && (BB & (BB - 1)) == 0, "AXI4 data width");
static_assert(sizeof(std::declval<Vdnpu_top&>().m_axi_rdata) * 8 >= DNPU_COSIM_DATA_W,
              "m_axi_rdata narrower than DNPU_COSIM_DATA_W: model and profile disagree");
static_assert(sizeof(dnpu_cosim_retire) == 32, "dnpu_cosim_retire layout (the Python binding mirrors it)");
static_assert(sizeof(std::declval<Vdnpu_top&>().m_axi_araddr) * 8 >= DNPU_COSIM_ADDR_W,
              "m_axi_araddr narrower than DNPU_COSIM_ADDR_W: model and profile disagree");

// ---- bus signals of any width (Verilator: CData/SData/IData/QData or VlWide<N>) ----
template <typename T>
inline void put_beat(T& sig, const uint8_t* p) {
    uint64_t v = 0;
    std::memcpy(&v, p, BB < sizeof v ? BB : sizeof v);
    sig = static_cast<T>(v);
}
template <std::size_t N>
inline void put_beat(VlWide<N>& sig, const uint8_t* p) {
    std::memcpy(&sig.m_storage[0], p, BB);
}
template <typename T>
inline void get_beat(const T& sig, uint8_t* p) {
    const uint64_t v = sig;
    std::memcpy(p, &v, BB < sizeof v ? BB : sizeof v);
}
template <std::size_t N>
inline void get_beat(const VlWide<N>& sig, uint8_t* p) {
    std::memcpy(p, &sig.m_storage[0], BB);
}

// Why this thread's last dnpu_cosim_create failed: models may be created on several threads.
thread_local std::string g_error;

}  // namespace

// ------------------------------------------------------------------------------------
struct dnpu_cosim {
    explicit dnpu_cosim(uint64_t period_ps)
        : ctx(new VerilatedContext), dram(BB, DNPU_COSIM_ADDR_W, DNPU_COSIM_MAX_BURST),
          period(period_ps ? period_ps : 10000) {
        ctx->traceEverOn(true);     // --trace-fst is compiled in; a file is opened only on request
        ctx->fatalOnError(false);   // $stop must not end the host process
        ctx->quiet(true);
        top.reset(new Vdnpu_top(ctx.get(), "TOP"));
        top->clk = 0;
        top->rst_n = 0;
        drive_axil();
        drive_dram();
        top->eval();
    }

    ~dnpu_cosim() {
        wave_close();
        top->final();
    }

    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vdnpu_top> top;
    std::unique_ptr<VerilatedFstC> fst;
    Dram dram;
    MasterOut m;                       // the master's outputs, sampled each cycle
    uint64_t period;                   // ps, waveform time only
    uint64_t cycle = 0;                // rising edges since create
    uint64_t wave_from = 0;
    uint64_t retired = 0, last_progress = 0;
    uint32_t last_retire_pc = 0;
    int64_t axil_timeout = 10000;
    std::vector<dnpu_cosim_retire> trace;   // retire trace capture (trace_start)
    uint64_t trace_cap = 0, trace_dropped = 0;
    std::string error;

    // AXI4-Lite master: one write and one read transaction at a time.
    struct {
        bool aw = false, w = false, b = false;   // AW / W still to hand over, B awaited
        bool ar = false, r = false, r_done = false;
        bool ar_next = false;                     // raise ARVALID at the next cycle (run loop)
        uint32_t waddr = 0, wdata = 0, bresp = 0, raddr = 0, rdata = 0, rresp = 0;
        bool busy() const { return aw || w || b || ar || r || ar_next; }
    } al;

    // ---- signals ------------------------------------------------------------------
    void drive_axil() {
        Vdnpu_top* t = top.get();
        t->s_axil_awvalid = al.aw;
        t->s_axil_awaddr = al.waddr;
        t->s_axil_awprot = 0;
        t->s_axil_wvalid = al.w;
        t->s_axil_wdata = al.wdata;
        t->s_axil_wstrb = 0xF;
        t->s_axil_bready = 1;
        t->s_axil_arvalid = al.ar;
        t->s_axil_araddr = al.raddr;
        t->s_axil_arprot = 0;
        t->s_axil_rready = 1;
    }

    void drive_dram() {
        Vdnpu_top* t = top.get();
        const SlaveOut& o = dram.out;
        t->m_axi_arready = o.arready;
        t->m_axi_rvalid = o.rvalid;
        if (o.r_changed) {
            put_beat(t->m_axi_rdata, o.rdata);
            t->m_axi_rid = o.rid;
            t->m_axi_rresp = o.rresp;
            t->m_axi_rlast = o.rlast;
        }
        t->m_axi_awready = o.awready;
        t->m_axi_wready = o.wready;
        t->m_axi_bvalid = o.bvalid;
        t->m_axi_bid = o.bid;
        t->m_axi_bresp = o.bresp;
    }

    void sample_master() {
        const Vdnpu_top* t = top.get();
        m.arvalid = t->m_axi_arvalid;
        if (m.arvalid) {
            m.arid = t->m_axi_arid;
            m.araddr = t->m_axi_araddr;
            m.arlen = t->m_axi_arlen;
            m.arsize = t->m_axi_arsize;
            m.arburst = t->m_axi_arburst;
        }
        m.rready = t->m_axi_rready;
        m.awvalid = t->m_axi_awvalid;
        if (m.awvalid) {
            m.awid = t->m_axi_awid;
            m.awaddr = t->m_axi_awaddr;
            m.awlen = t->m_axi_awlen;
            m.awsize = t->m_axi_awsize;
            m.awburst = t->m_axi_awburst;
        }
        m.wvalid = t->m_axi_wvalid;
        if (m.wvalid) {
            get_beat(t->m_axi_wdata, m.wdata);
            m.wstrb = t->m_axi_wstrb;
            m.wlast = t->m_axi_wlast;
        }
        m.bready = t->m_axi_bready;
    }

    void dump(uint64_t t_ps) {
        if (fst && cycle >= wave_from) fst->dump(t_ps);
    }

    // ---- one clock cycle ----------------------------------------------------------
    void tick() {
        Vdnpu_top* t = top.get();
        sample_master();
        const bool retire = t->retire_valid;
        const bool sram_write = t->sram_write;     // progress inside the NPU (watchdog)
        const uint32_t retire_pc = retire ? static_cast<uint32_t>(t->retire_pc) : 0;
        if (retire && trace_cap) {
            rt.word = t->retire_word;
            rt.x_we = t->retire_x_we;
            rt.x_idx = t->retire_x_idx;
            rt.x_data = t->retire_x_data;
            rt.f_we = t->retire_f_we;
            rt.f_idx = t->retire_f_idx;
            rt.f_data = t->retire_f_data;
        }
        const bool al_aw = al.aw && t->s_axil_awready;
        const bool al_w = al.w && t->s_axil_wready;
        const bool al_b = t->s_axil_bvalid;
        const uint32_t al_bresp = t->s_axil_bresp;
        const bool al_ar = al.ar && t->s_axil_arready;
        const bool al_r = t->s_axil_rvalid;
        const uint32_t al_rdata = t->s_axil_rdata;
        const uint32_t al_rresp = t->s_axil_rresp;

        t->clk = 1;
        t->eval();
        ++cycle;
        ctx->time(cycle * period);
        dump(cycle * period);

        const bool hs = dram.edge(cycle, m);
        if (retire) {
            ++retired;
            last_retire_pc = retire_pc;
            if (trace_cap) record_retire(retire_pc);
        }
        if (hs || retire || sram_write) last_progress = cycle;
        if (al_aw) al.aw = false;
        if (al_w) al.w = false;
        if (al_b && al.b && !al.aw && !al.w) {
            al.b = false;
            al.bresp = al_bresp;
        }
        if (al_ar) {
            al.ar = false;
            al.r = true;
        }
        if (al_r && al.r && !al_ar) {
            al.r = false;
            al.r_done = true;
            al.rdata = al_rdata;
            al.rresp = al_rresp;
        }
        if (al.ar_next) {
            al.ar = true;
            al.ar_next = false;
        }

        drive_axil();
        drive_dram();
        t->clk = 0;
        t->eval();
        dump(cycle * period + period / 2);
    }

    // One trace entry from the retire port as sampled before this cycle's edge (rt).
    void record_retire(uint32_t pc) {
        if (trace.size() >= trace_cap) {
            ++trace_dropped;
            return;
        }
        dnpu_cosim_retire e{};
        e.cycle = cycle;
        e.pc = pc;
        e.word = rt.word;
        e.x_we = rt.x_we;
        e.x_idx = rt.x_idx;
        e.x_data = rt.x_data;
        e.f_we = rt.f_we;
        e.f_idx = rt.f_idx;
        e.f_data = rt.f_data;
        trace.push_back(e);
    }

    struct {
        uint32_t word = 0, x_data = 0, f_data = 0;
        uint8_t x_we = 0, x_idx = 0, f_we = 0, f_idx = 0;
    } rt;   // the retire port sampled before the edge (only while capturing)

    // Start a transaction between cycles: the new VALIDs reach the model's inputs now.
    void start_write(uint32_t off, uint32_t v) {
        al.aw = al.w = al.b = true;
        al.waddr = off;
        al.wdata = v;
        drive_axil();
        top->eval();
    }

    void start_read(uint32_t off) {
        al.ar = true;
        al.r_done = false;
        al.raddr = off;
        drive_axil();
        top->eval();
    }

    bool settle_axil() {   // finish a transaction left open by an interrupted run
        for (int64_t i = 0; al.busy(); ++i) {
            if (i > axil_timeout) return fail("AXI4-Lite: a transaction left open did not complete");
            tick();
        }
        return true;
    }

    bool fail(const std::string& msg) {
        error = msg;
        return false;
    }

    int csr_write(uint32_t off, uint32_t v) {
        if (!settle_axil()) return -1;
        start_write(off, v);
        for (int64_t i = 0; al.busy(); ++i) {
            if (i > axil_timeout) {
                fail("AXI4-Lite write of " + hex(off, 3) + " not answered within " +
                     std::to_string(axil_timeout) + " cycles (AWVALID/WVALID still " +
                     std::to_string(al.aw) + "/" + std::to_string(al.w) + ", B awaited " +
                     std::to_string(al.b) + ")");
                return -1;
            }
            tick();
        }
        return static_cast<int>(al.bresp);
    }

    int csr_read(uint32_t off, uint32_t* v) {
        if (!settle_axil()) return -1;
        start_read(off);
        for (int64_t i = 0; al.busy(); ++i) {
            if (i > axil_timeout) {
                fail("AXI4-Lite read of " + hex(off, 3) + " not answered within " +
                     std::to_string(axil_timeout) + " cycles");
                return -1;
            }
            tick();
        }
        al.r_done = false;
        *v = al.rdata;
        return static_cast<int>(al.rresp);
    }

    void reset(uint32_t n) {
        dram.flush();
        al = {};
        top->rst_n = 0;
        drive_axil();
        drive_dram();
        top->eval();
        for (uint32_t i = 0; i < (n ? n : 1); ++i) tick();
        dram.flush();
        drive_dram();
        top->rst_n = 1;
        top->eval();
        tick();
        tick();
        last_progress = cycle;
    }

    int run(uint32_t ctrl, uint64_t budget, uint64_t watchdog, dnpu_cosim_run_result* res) {
        const uint64_t c0 = cycle, retired0 = retired, r0 = dram.n_r, w0 = dram.n_w;
        *res = dnpu_cosim_run_result{};
        uint32_t reason = DNPU_RUN_IDLE, status = 0;
        last_progress = cycle;
        if (ctrl) {
            const int r = csr_write(DNPU_COSIM_CSR_CTRL, ctrl);
            if (r < 0) reason = DNPU_RUN_AXIL_TIMEOUT;
        }
        if (reason == DNPU_RUN_IDLE) {
            // Poll STATUS back to back. The first poll starts a few cycles after the START
            // write so that it cannot see the previous run's DONE.
            int guard = 4;
            bool polling = false;
            while (true) {
                if (ctx->gotError() || ctx->gotFinish()) {
                    reason = DNPU_RUN_SIM_ERROR;
                    break;
                }
                if (polling && al.r_done) {
                    al.r_done = false;
                    polling = false;
                    status = al.rdata;
                    if (!(status & DNPU_COSIM_STATUS_BUSY) &&
                        (status & (DNPU_COSIM_STATUS_DONE | DNPU_COSIM_STATUS_ERROR)))
                        break;
                }
                if (!polling && guard == 0 && !al.busy()) {
                    // Raised with the next cycle's inputs: no extra evaluation of the model.
                    al.ar_next = true;
                    al.r_done = false;
                    al.raddr = DNPU_COSIM_CSR_STATUS;
                    polling = true;
                }
                tick();
                if (guard) --guard;
                if (cycle - c0 >= budget) {
                    reason = DNPU_RUN_BUDGET;
                    break;
                }
                if (watchdog && cycle - last_progress >= watchdog) {
                    reason = DNPU_RUN_WATCHDOG;
                    break;
                }
            }
            if (reason == DNPU_RUN_IDLE) {   // the last retire's counter strobes are registered
                tick();
                tick();
            }
        }
        res->cycles = cycle - c0;
        res->end_cycle = cycle;
        res->retired = retired - retired0;
        res->last_progress = last_progress;
        res->r_beats = dram.n_r - r0;
        res->w_beats = dram.n_w - w0;
        res->reason = reason;
        res->status = status;
        res->last_retire_pc = last_retire_pc;
        return 0;
    }

    bool wave_open(const char* path, uint64_t from) {
        wave_close();
        fst.reset(new VerilatedFstC);
        top->trace(fst.get(), 99);
        fst->open(path);
        if (!fst->isOpen()) {
            fst.reset();
            return fail(std::string("cannot open FST waveform ") + path);
        }
        wave_from = from;
        return true;
    }

    void wave_close() {
        if (fst) {
            fst->close();
            fst.reset();
        }
    }

    std::string describe() {
        std::string s = dram.describe(cycle, m);
        s += "\nretired " + std::to_string(retired) + " instruction(s) since create; last retire PC " +
             hex(last_retire_pc) + "; last progress at cycle " + std::to_string(last_progress);
        s += "\nAXI4-Lite master: " + std::string(al.busy() ? "a transaction is open" : "idle");
        if (ctx->gotError()) s += "\nthe model reported an error ($stop/$fatal)";
        return s;
    }
};

// ------------------------------------------------------------------------------------
// Verilator's $stop/$fatal report to the calling thread's context (Verilated::threadContextp,
// thread-local, else the context created last): point it at this model's on every entry, so
// that a model driven from another thread than the one that created it, or beside other
// models, flags its own context.
#define GUARD_BEGIN(h)                                \
    Verilated::threadContextp((h)->ctx.get());        \
    try {
#define GUARD_END(h)                                  \
    }                                                 \
    catch (const std::exception& e) {                 \
        (h)->error = std::string("exception: ") + e.what(); \
        return -1;                                    \
    }

extern "C" {

int dnpu_cosim_abi_version(void) { return DNPU_COSIM_ABI_VERSION; }

const char* dnpu_cosim_build_info(void) {
    return "profile=" DNPU_STR(DNPU_COSIM_PROFILE_NAME) " data_width=" DNPU_STR(DNPU_COSIM_DATA_W) " addr_width=" DNPU_STR(
        DNPU_COSIM_ADDR_W) " id_width=" DNPU_STR(DNPU_COSIM_ID_W) " max_burst=" DNPU_STR(DNPU_COSIM_MAX_BURST) " abi=" DNPU_STR(DNPU_COSIM_ABI_VERSION);
}

dnpu_cosim* dnpu_cosim_create(uint64_t clock_period_ps) {
    try {
        auto* h = new dnpu_cosim(clock_period_ps);
        h->reset(4);
        return h;
    } catch (const std::exception& e) {
        g_error = std::string("dnpu_cosim_create: ") + e.what();
        return nullptr;
    }
}

void dnpu_cosim_destroy(dnpu_cosim* h) {
    if (!h) return;
    Verilated::threadContextp(h->ctx.get());   // final() runs the model's final blocks
    delete h;
    Verilated::threadContextp(nullptr);        // never leave a dangling context behind
}

const char* dnpu_cosim_error(const dnpu_cosim* h) { return h ? h->error.c_str() : g_error.c_str(); }

int dnpu_cosim_set(dnpu_cosim* h, const char* name, int64_t v) {
    const std::string n(name ? name : "");
    if (n == "axil_timeout") {
        if (v < 1) return h->fail(n + " = " + std::to_string(v) + ": must be >= 1"), -1;
        h->axil_timeout = v;
        return 0;
    }
    std::string why;
    switch (h->dram.set(n, v, why)) {
    case Dram::KNOB_SET: return 0;
    case Dram::KNOB_BAD: return h->fail(why), -1;
    default:
        return h->fail("unknown knob '" + n + "' (knobs: " + Dram::KNOB_NAMES + ", axil_timeout)"), -1;
    }
}

int dnpu_cosim_get(dnpu_cosim* h, const char* name, int64_t* v) {
    const std::string n(name ? name : "");
    if (h->dram.get(n, *v)) return 0;
    if (n == "cycle") *v = static_cast<int64_t>(h->cycle);
    else if (n == "beat_bytes") *v = BB;
    else if (n == "data_width") *v = DNPU_COSIM_DATA_W;
    else if (n == "addr_width") *v = DNPU_COSIM_ADDR_W;
    else if (n == "id_width") *v = DNPU_COSIM_ID_W;
    else if (n == "max_burst") *v = DNPU_COSIM_MAX_BURST;
    else if (n == "axil_timeout") *v = h->axil_timeout;
    else if (n == "retired") *v = static_cast<int64_t>(h->retired);
    else if (n == "wave_open") *v = h->fst ? 1 : 0;
    else if (n == "trace_count") *v = static_cast<int64_t>(h->trace.size());
    else if (n == "trace_dropped") *v = static_cast<int64_t>(h->trace_dropped);
    else if (n == "trace_capacity") *v = static_cast<int64_t>(h->trace_cap);
    else return h->fail("unknown statistic '" + n + "'"), -1;
    return 0;
}

int dnpu_cosim_reset(dnpu_cosim* h, uint32_t cycles) {
    GUARD_BEGIN(h)
    h->reset(cycles);
    return 0;
    GUARD_END(h)
}

int dnpu_cosim_step(dnpu_cosim* h, uint64_t cycles) {
    GUARD_BEGIN(h)
    for (uint64_t i = 0; i < cycles; ++i) h->tick();
    return 0;
    GUARD_END(h)
}

int dnpu_cosim_csr_write(dnpu_cosim* h, uint32_t offset, uint32_t value) {
    GUARD_BEGIN(h)
    return h->csr_write(offset, value);
    GUARD_END(h)
}

int dnpu_cosim_csr_read(dnpu_cosim* h, uint32_t offset, uint32_t* value) {
    GUARD_BEGIN(h)
    return h->csr_read(offset, value);
    GUARD_END(h)
}

int dnpu_cosim_map(dnpu_cosim* h, uint64_t addr, uint64_t n) {
    GUARD_BEGIN(h)
    const uint64_t top = DNPU_COSIM_ADDR_W >= 64 ? ~uint64_t(0) : (uint64_t(1) << DNPU_COSIM_ADDR_W);
    if (addr % BB || n % BB)
        return h->fail("map(" + hex(addr) + ", " + std::to_string(n) + "): regions must start and end on " +
                       std::to_string(BB) + "-byte AXI4 beats"),
               -1;
    if (addr > top || n > top - addr)
        return h->fail("map(" + hex(addr) + ", " + std::to_string(n) + "): outside the " +
                       std::to_string(DNPU_COSIM_ADDR_W) + "-bit address space"),
               -1;
    h->dram.mem.map(addr, n);
    return 0;
    GUARD_END(h)
}

int dnpu_cosim_mem_write(dnpu_cosim* h, uint64_t addr, const void* data, uint64_t n) {
    GUARD_BEGIN(h)
    Memory& mem = h->dram.mem;
    if (!mem.mapped(addr, n))
        return h->fail("write(" + hex(addr) + ", " + std::to_string(n) + " bytes): " +
                       hex(mem.first_unmapped(addr, n)) + " is not mapped (regions: " + mem.regions_text() +
                       ")"),
               -1;
    mem.write(addr, static_cast<const uint8_t*>(data), n);
    return 0;
    GUARD_END(h)
}

int dnpu_cosim_mem_read(dnpu_cosim* h, uint64_t addr, void* data, uint64_t n) {
    GUARD_BEGIN(h)
    Memory& mem = h->dram.mem;
    if (!mem.mapped(addr, n))
        return h->fail("read(" + hex(addr) + ", " + std::to_string(n) + "): " +
                       hex(mem.first_unmapped(addr, n)) + " is not mapped (regions: " + mem.regions_text() +
                       ")"),
               -1;
    mem.read(addr, static_cast<uint8_t*>(data), n);
    return 0;
    GUARD_END(h)
}

int dnpu_cosim_run(dnpu_cosim* h, uint32_t ctrl, uint64_t budget, uint64_t watchdog,
                   dnpu_cosim_run_result* res) {
    GUARD_BEGIN(h)
    return h->run(ctrl, budget, watchdog, res);
    GUARD_END(h)
}

int dnpu_cosim_trace_start(dnpu_cosim* h, uint64_t capacity) {
    GUARD_BEGIN(h)
    if (capacity > DNPU_COSIM_TRACE_MAX)
        return h->fail("trace_start(" + std::to_string(capacity) + "): at most " +
                       std::to_string(DNPU_COSIM_TRACE_MAX) + " entries"),
               -1;
    if (capacity) {
        h->trace.clear();
        h->trace.reserve(std::min<uint64_t>(capacity, 1u << 16));
        h->trace_dropped = 0;
    }
    h->trace_cap = capacity;
    return 0;
    GUARD_END(h)
}

int64_t dnpu_cosim_trace_read(dnpu_cosim* h, uint64_t first, dnpu_cosim_retire* out, uint64_t n) {
    GUARD_BEGIN(h)
    const uint64_t have = h->trace.size();
    if (first > have) return 0;
    const uint64_t k = std::min<uint64_t>(n, have - first);
    if (k) std::memcpy(out, h->trace.data() + first, k * sizeof(dnpu_cosim_retire));
    return static_cast<int64_t>(k);
    GUARD_END(h)
}

int dnpu_cosim_wave_open(dnpu_cosim* h, const char* path, uint64_t from_cycle) {
    GUARD_BEGIN(h)
    return h->wave_open(path, from_cycle) ? 0 : -1;
    GUARD_END(h)
}

int dnpu_cosim_wave_close(dnpu_cosim* h) {
    GUARD_BEGIN(h)
    h->wave_close();
    return 0;
    GUARD_END(h)
}

int dnpu_cosim_describe(dnpu_cosim* h, char* buf, uint64_t n) {
    GUARD_BEGIN(h)
    const std::string s = h->describe();
    if (buf && n) {
        const size_t k = std::min<uint64_t>(s.size(), n - 1);
        std::memcpy(buf, s.data(), k);
        buf[k] = 0;
    }
    return static_cast<int>(s.size());
    GUARD_END(h)
}

}  // extern "C"
