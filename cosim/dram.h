// DRAM model behind dnpu_top's AXI4 master (no Verilator dependency).
//
// Memory: sparse, byte-addressed, little-endian. The host maps regions (beat-aligned;
// adjacent or overlapping regions merge); mapped bytes read as zero until written; pages of
// 64 KiB are allocated on first write. A beat (read) or a strobed byte (write) outside every
// region answers DECERR and the errored write beat writes nothing.
//
// Bus: one rising edge at a time. `edge(cycle, m)` takes the master's outputs as sampled
// just before the edge and the slave outputs (`out`) that were driven during the cycle,
// performs the handshakes that happen at that edge, and computes the outputs for the next
// cycle. Every output is registered (no combinational path from the master), so the caller
// drives `out` after the edge and evaluates the model once.
//
// Timing: an accepted AR's first R beat is handshaken no earlier than read_latency cycles
// after the AR handshake (at least 1); beats then follow back to back, at most one per
// cycle and limited by a bytes-per-cycle credit (bytes_per_cycle added each cycle, capped at
// one beat), and only while RREADY allows. Bursts are answered in acceptance order (legal
// for any ID mix; RID/BID echo the request's ID). W beats are accepted only for an accepted
// AW, with the same bandwidth credit; B comes write_latency cycles after WLAST. At most
// max_reads read bursts and max_writes write bursts are outstanding (AR/AW back-pressure).
//
// Test knobs: stall_reads_after = n stops presenting R beats after n more beats (-1 = never),
// stall_writes_after the same for B responses; stress_seed != 0 draws random gaps on all five
// channels (ARREADY, RVALID, AWREADY, WREADY, BVALID) and random extra latency per burst
// (deterministic per seed; stress_* statistics count the cycles each channel was held back).
// Fault injection: fail_read_at = n answers every beat of the n-th read burst accepted from
// now with fail_resp (SLVERR or DECERR), fail_write_at the n-th write burst's B response (the
// burst writes nothing); fail_addr / fail_bytes: every read beat and every strobed write beat
// touching that window fails the same way until fail_bytes is set back to 0.
//
// Protocol checks on the master (counted, the first few described): INCR bursts, full-width
// size, beat-aligned addresses, at most max_burst beats, no 4 KiB crossing, no address wrap,
// VALID held with a stable payload until READY, WLAST on exactly the last beat.

#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dnpu_sim {

enum : uint32_t { RESP_OKAY = 0, RESP_EXOKAY = 1, RESP_SLVERR = 2, RESP_DECERR = 3 };
constexpr unsigned MAX_BEAT_BYTES = 128;   // up to 1024-bit data

inline std::string hex(uint64_t v, int digits = 8) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%0*llX", digits, static_cast<unsigned long long>(v));
    return b;
}

// ------------------------------------------------------------------------------------
class Memory {
public:
    static constexpr unsigned PAGE_BITS = 16;
    static constexpr uint64_t PAGE = uint64_t(1) << PAGE_BITS;

    void map(uint64_t start, uint64_t n) {
        if (n == 0) return;
        uint64_t end = start + n;
        auto it = regions_.upper_bound(start);
        if (it != regions_.begin()) {
            auto p = std::prev(it);
            if (p->second >= start) {
                start = p->first;
                end = std::max(end, p->second);
                it = regions_.erase(p);
            }
        }
        while (it != regions_.end() && it->first <= end) {
            end = std::max(end, it->second);
            it = regions_.erase(it);
        }
        regions_[start] = end;
        hit_start_ = 1;
        hit_end_ = 0;
    }

    bool mapped(uint64_t a, uint64_t n) const {
        if (n == 0) return true;
        if (a + n < a) return false;
        if (a >= hit_start_ && a + n <= hit_end_) return true;
        auto it = regions_.upper_bound(a);
        if (it == regions_.begin()) return false;
        --it;
        if (a >= it->first && a + n <= it->second) {
            hit_start_ = it->first;
            hit_end_ = it->second;
            return true;
        }
        return false;
    }

    // First unmapped byte in [a, a + n) (assumes one exists).
    uint64_t first_unmapped(uint64_t a, uint64_t n) const {
        for (uint64_t i = 0; i < n; ++i)
            if (!mapped(a + i, 1)) return a + i;
        return a + n;
    }

    void read(uint64_t a, uint8_t* out, uint64_t n) {
        while (n) {
            const uint64_t off = a & (PAGE - 1);
            const uint64_t k = std::min(n, PAGE - off);
            const uint8_t* p = page(a >> PAGE_BITS, false);
            if (p) std::memcpy(out, p + off, k);
            else std::memset(out, 0, k);
            a += k; out += k; n -= k;
        }
    }

    void write(uint64_t a, const uint8_t* in, uint64_t n) {
        while (n) {
            const uint64_t off = a & (PAGE - 1);
            const uint64_t k = std::min(n, PAGE - off);
            std::memcpy(page(a >> PAGE_BITS, true) + off, in, k);
            a += k; in += k; n -= k;
        }
    }

    void write_byte(uint64_t a, uint8_t v) { page(a >> PAGE_BITS, true)[a & (PAGE - 1)] = v; }

    size_t region_count() const { return regions_.size(); }
    size_t page_count() const { return pages_.size(); }

    std::string regions_text(size_t max = 6) const {
        std::ostringstream s;
        size_t k = 0;
        for (const auto& r : regions_) {
            if (k++ == max) { s << " ..."; break; }
            s << (k > 1 ? ", " : "") << "[" << hex(r.first) << ", " << hex(r.second) << ")";
        }
        if (regions_.empty()) s << "none";
        return s.str();
    }

private:
    uint8_t* page(uint64_t pn, bool create) {
        if (pn == last_pn_) return last_page_;
        auto it = pages_.find(pn);
        uint8_t* p = nullptr;
        if (it != pages_.end()) {
            p = it->second.get();
        } else if (create) {
            auto fresh = std::make_unique<uint8_t[]>(PAGE);   // value-initialized: zeros
            p = fresh.get();
            pages_.emplace(pn, std::move(fresh));
        }
        if (p) { last_pn_ = pn; last_page_ = p; }   // never cache a missing page
        return p;
    }

    std::map<uint64_t, uint64_t> regions_;   // start -> end (exclusive): disjoint, merged
    std::unordered_map<uint64_t, std::unique_ptr<uint8_t[]>> pages_;
    mutable uint64_t hit_start_ = 1, hit_end_ = 0;
    uint64_t last_pn_ = ~uint64_t(0);
    uint8_t* last_page_ = nullptr;
};

// ------------------------------------------------------------------------------------
struct MasterOut {              // the NPU's AXI4 master outputs, sampled before an edge
    bool arvalid = false, rready = false, awvalid = false, wvalid = false, bready = false;
    uint32_t arid = 0, arlen = 0, arsize = 0, arburst = 0;
    uint32_t awid = 0, awlen = 0, awsize = 0, awburst = 0;
    uint64_t araddr = 0, awaddr = 0;
    uint64_t wstrb = 0;
    bool wlast = false;
    uint8_t wdata[MAX_BEAT_BYTES];
};

struct SlaveOut {               // what the DRAM model drives during the next cycle
    bool arready = false, rvalid = false, rlast = false, awready = false, wready = false, bvalid = false;
    uint32_t rid = 0, rresp = 0, bid = 0, bresp = 0;
    bool r_changed = false;     // a new R beat: rdata/rid/rresp/rlast must be driven again
    uint8_t rdata[MAX_BEAT_BYTES];
};

struct Knobs {
    int64_t read_latency = 20;
    int64_t write_latency = 20;
    int64_t bytes_per_cycle = 16;
    int64_t max_reads = 8;
    int64_t max_writes = 8;
    int64_t stall_reads_after = -1;
    int64_t stall_writes_after = -1;
    int64_t stress_seed = 0;
    int64_t fail_read_at = 0;      // countdown over accepted AR bursts; 0 = off
    int64_t fail_write_at = 0;     // countdown over accepted AW bursts; 0 = off
    int64_t fail_resp = 2;         // RESP_SLVERR or RESP_DECERR
    int64_t fail_addr = 0;         // window [fail_addr, fail_addr + fail_bytes) that always fails
    int64_t fail_bytes = 0;        // 0 = no window
};

class Dram {
public:
    Dram(unsigned beat_bytes, unsigned addr_bits, unsigned max_burst)
        : bb_(beat_bytes), addr_bits_(addr_bits), max_burst_(max_burst) {
        unsigned s = 0;
        while ((1u << s) < bb_) ++s;
        size_code_ = s;
        k.bytes_per_cycle = bb_;
        std::memset(out.rdata, 0, sizeof out.rdata);
    }

    Memory mem;
    Knobs k;
    SlaveOut out;

    // statistics
    uint64_t n_ar = 0, n_r = 0, n_aw = 0, n_w = 0, n_b = 0;
    uint64_t last_ar = 0, last_r = 0, last_aw = 0, last_w = 0, last_b = 0;   // 0 = never
    uint64_t n_protocol = 0;
    std::vector<std::string> protocol;   // the first few violations
    uint64_t injected_r = 0, injected_b = 0;   // R beats / B responses answered by fault injection
    // Cycles the stress draw held back a READY or VALID the model would otherwise have given.
    uint64_t stress_ar = 0, stress_r = 0, stress_aw = 0, stress_w = 0, stress_b = 0;
    uint64_t stress_latency = 0;         // extra latency cycles drawn, all bursts

    unsigned beat_bytes() const { return bb_; }

    // Knobs and statistics by name (dnpu_cosim_set / dnpu_cosim_get).
    enum KnobResult { KNOB_UNKNOWN = 0, KNOB_SET = 1, KNOB_BAD = 2 };
    static constexpr const char* KNOB_NAMES =
        "read_latency, write_latency, bytes_per_cycle, max_reads, max_writes, stall_reads_after, "
        "stall_writes_after, stress_seed, fail_read_at, fail_write_at, fail_resp, fail_addr, fail_bytes";

    KnobResult set(const std::string& n, int64_t v, std::string& why) {
        auto at_least = [&](int64_t lo) {
            if (v >= lo) return true;
            why = n + " = " + std::to_string(v) + ": must be >= " + std::to_string(lo);
            return false;
        };
        if (n == "read_latency" || n == "write_latency") {
            if (!at_least(0)) return KNOB_BAD;
            (n == "read_latency" ? k.read_latency : k.write_latency) = v;
        } else if (n == "bytes_per_cycle" || n == "max_reads" || n == "max_writes") {
            if (!at_least(1)) return KNOB_BAD;
            (n == "bytes_per_cycle" ? k.bytes_per_cycle : n == "max_reads" ? k.max_reads : k.max_writes) = v;
        } else if (n == "stall_reads_after" || n == "stall_writes_after") {
            (n == "stall_reads_after" ? k.stall_reads_after : k.stall_writes_after) = v < 0 ? -1 : v;
        } else if (n == "stress_seed") {
            set_stress(v);
        } else if (n == "fail_read_at" || n == "fail_write_at") {
            (n == "fail_read_at" ? k.fail_read_at : k.fail_write_at) = v < 0 ? 0 : v;
        } else if (n == "fail_resp") {
            if (v != RESP_SLVERR && v != RESP_DECERR) {
                why = n + " = " + std::to_string(v) + ": must be 2 (SLVERR) or 3 (DECERR)";
                return KNOB_BAD;
            }
            k.fail_resp = v;
        } else if (n == "fail_addr" || n == "fail_bytes") {
            if (!at_least(0)) return KNOB_BAD;
            (n == "fail_addr" ? k.fail_addr : k.fail_bytes) = v;
        } else {
            return KNOB_UNKNOWN;
        }
        return KNOB_SET;
    }

    bool get(const std::string& n, int64_t& v) const {
        static const std::pair<const char*, int64_t Knobs::*> knobs[] = {
            {"read_latency", &Knobs::read_latency}, {"write_latency", &Knobs::write_latency},
            {"bytes_per_cycle", &Knobs::bytes_per_cycle}, {"max_reads", &Knobs::max_reads},
            {"max_writes", &Knobs::max_writes}, {"stall_reads_after", &Knobs::stall_reads_after},
            {"stall_writes_after", &Knobs::stall_writes_after}, {"stress_seed", &Knobs::stress_seed},
            {"fail_read_at", &Knobs::fail_read_at}, {"fail_write_at", &Knobs::fail_write_at},
            {"fail_resp", &Knobs::fail_resp}, {"fail_addr", &Knobs::fail_addr}, {"fail_bytes", &Knobs::fail_bytes}};
        for (const auto& e : knobs)
            if (n == e.first) return v = k.*e.second, true;
        const std::pair<const char*, uint64_t> stats[] = {
            {"ar", n_ar}, {"r", n_r}, {"aw", n_aw}, {"w", n_w}, {"b", n_b}, {"protocol_errors", n_protocol},
            {"regions", mem.region_count()}, {"pages", mem.page_count()}, {"injected_r", injected_r},
            {"injected_b", injected_b}, {"stress_ar", stress_ar}, {"stress_r", stress_r}, {"stress_aw", stress_aw},
            {"stress_w", stress_w}, {"stress_b", stress_b}, {"stress_latency", stress_latency}};
        for (const auto& e : stats)
            if (n == e.first) return v = static_cast<int64_t>(e.second), true;
        return false;
    }

    void set_stress(int64_t seed) {
        k.stress_seed = seed;
        rng_.seed(static_cast<uint64_t>(seed));
    }

    // Drop everything in flight (hard reset); memory and regions stay.
    void flush() {
        rq_.clear();
        awq_.clear();
        bq_.clear();
        out.arready = out.rvalid = out.rlast = out.awready = out.wready = out.bvalid = false;
        out.r_changed = true;
        hold_ar_ = hold_aw_ = hold_w_ = false;
        credit_r_ = credit_w_ = 0;
    }

    // One rising edge; returns true if any AXI4 handshake happened at it.
    bool edge(uint64_t cycle, const MasterOut& m) {
        const bool ar_fire = m.arvalid && out.arready;
        const bool r_fire = out.rvalid && m.rready;
        const bool aw_fire = m.awvalid && out.awready;
        const bool w_fire = m.wvalid && out.wready;
        const bool b_fire = out.bvalid && m.bready;
        out.r_changed = false;

        check_stable(cycle, m);

        if (ar_fire) {
            const uint32_t beats = m.arlen + 1;
            check_burst(cycle, "AR", m.araddr, beats, m.arsize, m.arburst);
            rq_.push_back({m.arid, m.araddr & ~uint64_t(bb_ - 1), beats, 0,
                           cycle + latency(k.read_latency), countdown(k.fail_read_at)});
            ++n_ar;
            last_ar = cycle;
        }
        if (r_fire) {
            out.rvalid = false;
            Read& f = rq_.front();
            if (++f.sent == f.beats) rq_.pop_front();
            ++n_r;
            last_r = cycle;
            if (k.stall_reads_after > 0) --k.stall_reads_after;
        }
        if (aw_fire) {
            const uint32_t beats = m.awlen + 1;
            check_burst(cycle, "AW", m.awaddr, beats, m.awsize, m.awburst);
            awq_.push_back({m.awid, m.awaddr & ~uint64_t(bb_ - 1), beats, 0, RESP_OKAY,
                            countdown(k.fail_write_at), false});
            ++n_aw;
            last_aw = cycle;
        }
        if (w_fire) {
            write_beat(cycle, m);
            ++n_w;
            last_w = cycle;
        }
        if (b_fire) {
            out.bvalid = false;
            ++n_b;
            last_b = cycle;
            if (k.stall_writes_after > 0) --k.stall_writes_after;
        }

        // ---- outputs for the next cycle
        // Bandwidth credit: bytes_per_cycle a cycle, at most one beat banked. A W beat
        // pays when it is taken (WREADY promised it), an R beat when it is presented.
        const int64_t cap = std::max<int64_t>(bb_, k.bytes_per_cycle);
        if (w_fire) credit_w_ -= bb_;
        credit_r_ = std::min(credit_r_ + k.bytes_per_cycle, cap);
        credit_w_ = std::min(credit_w_ + k.bytes_per_cycle, cap);

        out.arready = static_cast<int64_t>(rq_.size()) < k.max_reads && coin(0.7, stress_ar);
        if (!out.rvalid && !rq_.empty() && k.stall_reads_after != 0) {
            const Read& f = rq_.front();
            if (f.due <= cycle + 1 && credit_r_ >= static_cast<int64_t>(bb_) && coin(0.75, stress_r)) {
                const uint64_t a = f.addr + uint64_t(f.sent) * bb_;
                if (f.fail || in_window(a, bb_)) {
                    std::memset(out.rdata, 0, bb_);
                    out.rresp = static_cast<uint32_t>(k.fail_resp);
                    ++injected_r;
                } else if (mem.mapped(a, bb_)) {
                    mem.read(a, out.rdata, bb_);
                    out.rresp = RESP_OKAY;
                } else {
                    std::memset(out.rdata, 0, bb_);
                    out.rresp = RESP_DECERR;
                }
                out.rid = f.id;
                out.rlast = f.sent + 1 == f.beats;
                out.rvalid = true;
                out.r_changed = true;
                credit_r_ -= bb_;
            }
        }
        const size_t writes = awq_.size() + bq_.size() + (out.bvalid ? 1 : 0);
        out.awready = static_cast<int64_t>(writes) < k.max_writes && coin(0.7, stress_aw);
        out.wready = !awq_.empty() && credit_w_ >= static_cast<int64_t>(bb_) && coin(0.7, stress_w);
        if (!out.bvalid && !bq_.empty() && k.stall_writes_after != 0 && bq_.front().due <= cycle + 1 &&
            coin(0.75, stress_b)) {
            out.bid = bq_.front().id;
            out.bresp = bq_.front().resp;
            out.bvalid = true;
            if (bq_.front().injected) ++injected_b;
            bq_.pop_front();
        }
        return ar_fire || r_fire || aw_fire || w_fire || b_fire;
    }

    std::string describe(uint64_t cycle, const MasterOut& m) const {
        std::ostringstream s;
        auto when = [&](uint64_t c, uint64_t n) {
            return n ? "cycle " + std::to_string(c) + " (" + std::to_string(cycle - c) + " ago)"
                     : std::string("never");
        };
        s << "AXI4 at cycle " << cycle << ": NPU drives ARVALID=" << m.arvalid << " RREADY=" << m.rready
          << " AWVALID=" << m.awvalid << " WVALID=" << m.wvalid << " BREADY=" << m.bready
          << "; DRAM drives ARREADY=" << out.arready << " RVALID=" << out.rvalid << " AWREADY="
          << out.awready << " WREADY=" << out.wready << " BVALID=" << out.bvalid << "\n";
        s << "reads: " << rq_.size() << " burst(s) accepted and not fully answered";
        for (size_t i = 0; i < rq_.size() && i < 4; ++i) {
            const Read& r = rq_[i];
            s << (i ? "; " : ": ") << "id " << r.id << " " << hex(r.addr) << " x" << r.beats << " beats, "
              << r.sent << " sent, first beat due cycle " << r.due;
        }
        s << "\n";
        if (k.stall_reads_after == 0)
            s << "reads are stalled: stall_reads_after ran out, no R beat is presented\n";
        s << "writes: " << awq_.size() << " burst(s) taking data";
        for (size_t i = 0; i < awq_.size() && i < 4; ++i) {
            const Write& w = awq_[i];
            s << (i ? "; " : ": ") << "id " << w.id << " " << hex(w.addr) << " x" << w.beats << " beats, "
              << w.got << " received";
        }
        s << ", " << bq_.size() + (out.bvalid ? 1 : 0) << " B response(s) pending\n";
        if (k.stall_writes_after == 0)
            s << "writes are stalled: stall_writes_after ran out, no B response is presented\n";
        if (k.fail_read_at || k.fail_write_at || k.fail_bytes || injected_r || injected_b)
            s << "fault injection: fail_read_at " << k.fail_read_at << ", fail_write_at " << k.fail_write_at
              << ", window [" << hex(static_cast<uint64_t>(k.fail_addr)) << ", +" << k.fail_bytes << "), resp "
              << (k.fail_resp == RESP_DECERR ? "DECERR" : "SLVERR") << "; injected so far: " << injected_r
              << " R beat(s), " << injected_b << " B response(s)\n";
        s << "handshakes: AR " << n_ar << " (last " << when(last_ar, n_ar) << "), R " << n_r << " (last "
          << when(last_r, n_r) << "), AW " << n_aw << " (last " << when(last_aw, n_aw) << "), W " << n_w
          << " (last " << when(last_w, n_w) << "), B " << n_b << " (last " << when(last_b, n_b) << ")\n";
        s << "DRAM: read_latency " << k.read_latency << ", write_latency " << k.write_latency
          << ", bytes_per_cycle " << k.bytes_per_cycle << ", regions " << mem.regions_text() << "\n";
        s << "protocol errors: " << n_protocol;
        for (const auto& p : protocol) s << "\n  " << p;
        return s.str();
    }

private:
    struct Read { uint32_t id; uint64_t addr; uint32_t beats, sent; uint64_t due; bool fail; };
    struct Write { uint32_t id; uint64_t addr; uint32_t beats, got, resp; bool fail, injected; };
    struct Resp { uint32_t id, resp; uint64_t due; bool injected; };

    uint64_t latency(int64_t base) {
        int64_t l = std::max<int64_t>(base, 1);
        if (k.stress_seed) {
            const int64_t extra = static_cast<int64_t>(rng_() % 17);
            stress_latency += static_cast<uint64_t>(extra);
            l += extra;
        }
        return static_cast<uint64_t>(l);
    }

    // A READY/VALID the model would give now: under stress it is held back with
    // probability 1 - p, and `held` counts the cycles that happened.
    bool coin(double p, uint64_t& held) {
        if (!k.stress_seed) return true;
        const bool go = std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
        if (!go) ++held;
        return go;
    }

    // One step of a fail_*_at countdown: true for the burst that brings it to zero.
    static bool countdown(int64_t& left) { return left > 0 && --left == 0; }

    bool in_window(uint64_t a, uint64_t n) const {
        if (k.fail_bytes <= 0) return false;
        const uint64_t lo = static_cast<uint64_t>(k.fail_addr), hi = lo + static_cast<uint64_t>(k.fail_bytes);
        return a < hi && lo < a + n;
    }

    void violation(uint64_t cycle, const std::string& what) {
        ++n_protocol;
        if (protocol.size() < 8) protocol.push_back("cycle " + std::to_string(cycle) + ": " + what);
    }

    void check_burst(uint64_t cycle, const char* ch, uint64_t addr, uint32_t beats, uint32_t size,
                     uint32_t burst) {
        if (burst != 1) violation(cycle, std::string(ch) + ": burst type " + std::to_string(burst) + ", not INCR");
        if (size != size_code_)
            violation(cycle, std::string(ch) + ": size " + std::to_string(size) + ", not the full width (" +
                                 std::to_string(size_code_) + ")");
        if (addr % bb_) violation(cycle, std::string(ch) + ": address " + hex(addr) + " is not beat-aligned");
        if (beats > max_burst_)
            violation(cycle, std::string(ch) + ": " + std::to_string(beats) + " beats > max_burst " +
                                 std::to_string(max_burst_));
        if ((addr & 4095) + uint64_t(beats) * bb_ > 4096)
            violation(cycle, std::string(ch) + ": burst at " + hex(addr) + " x" + std::to_string(beats) +
                                 " crosses a 4 KiB boundary");
        if (addr_bits_ < 64 && addr + uint64_t(beats) * bb_ > (uint64_t(1) << addr_bits_))
            violation(cycle, std::string(ch) + ": burst at " + hex(addr) + " wraps the address space");
    }

    void check_stable(uint64_t cycle, const MasterOut& m) {
        // A VALID seen without READY must stay up, with the same payload, until READY.
        if (hold_ar_ && (!m.arvalid || m.arid != h_ar_.arid || m.araddr != h_ar_.araddr || m.arlen != h_ar_.arlen))
            violation(cycle, "AR: ARVALID or its payload changed before ARREADY");
        if (hold_aw_ && (!m.awvalid || m.awid != h_aw_.awid || m.awaddr != h_aw_.awaddr || m.awlen != h_aw_.awlen))
            violation(cycle, "AW: AWVALID or its payload changed before AWREADY");
        if (hold_w_ && (!m.wvalid || m.wstrb != h_w_.wstrb || m.wlast != h_w_.wlast ||
                        std::memcmp(m.wdata, h_w_.wdata, bb_) != 0))
            violation(cycle, "W: WVALID or its payload changed before WREADY");
        hold_ar_ = m.arvalid && !out.arready;
        hold_aw_ = m.awvalid && !out.awready;
        hold_w_ = m.wvalid && !out.wready;
        if (hold_ar_) { h_ar_.arid = m.arid; h_ar_.araddr = m.araddr; h_ar_.arlen = m.arlen; }
        if (hold_aw_) { h_aw_.awid = m.awid; h_aw_.awaddr = m.awaddr; h_aw_.awlen = m.awlen; }
        if (hold_w_) { h_w_.wstrb = m.wstrb; h_w_.wlast = m.wlast; std::memcpy(h_w_.wdata, m.wdata, bb_); }
    }

    void write_beat(uint64_t cycle, const MasterOut& m) {
        Write& f = awq_.front();
        const uint64_t a = f.addr + uint64_t(f.got) * bb_;
        const uint64_t full = bb_ >= 64 ? ~uint64_t(0) : ((uint64_t(1) << bb_) - 1);
        const uint64_t strb = m.wstrb & full;
        bool injected = f.fail;
        if (strb && !injected) {
            for (unsigned i = 0; i < bb_ && !injected; ++i)
                if ((strb >> i & 1) && in_window(a + i, 1)) injected = true;
        }
        if (injected) {
            if (f.resp == RESP_OKAY) f.resp = static_cast<uint32_t>(k.fail_resp);
            f.injected = true;
        } else if (strb) {
            bool ok = mem.mapped(a, bb_);
            if (!ok) {
                ok = true;
                for (unsigned i = 0; i < bb_ && ok; ++i)
                    if ((strb >> i & 1) && !mem.mapped(a + i, 1)) ok = false;
            }
            if (!ok) {
                f.resp = RESP_DECERR;
            } else if (strb == full) {
                mem.write(a, m.wdata, bb_);
            } else {
                for (unsigned i = 0; i < bb_; ++i)
                    if (strb >> i & 1) mem.write_byte(a + i, m.wdata[i]);
            }
        }
        ++f.got;
        const bool last = f.got == f.beats;
        if (m.wlast != last)
            violation(cycle, "W: WLAST=" + std::to_string(m.wlast) + " on beat " + std::to_string(f.got) + " of " +
                                 std::to_string(f.beats) + " (burst at " + hex(f.addr) + ")");
        if (last) {
            bq_.push_back({f.id, f.resp, cycle + latency(k.write_latency), f.injected});
            awq_.pop_front();
        }
    }

    unsigned bb_, addr_bits_, max_burst_, size_code_;
    std::deque<Read> rq_;
    std::deque<Write> awq_;
    std::deque<Resp> bq_;
    int64_t credit_r_ = 0, credit_w_ = 0;
    bool hold_ar_ = false, hold_aw_ = false, hold_w_ = false;
    MasterOut h_ar_, h_aw_, h_w_;
    std::mt19937_64 rng_{1};
};

}  // namespace dnpu_sim
