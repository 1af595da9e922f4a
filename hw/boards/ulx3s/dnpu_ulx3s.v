`default_nettype none
// dnpu_ulx3s: dnpu_uart_top on a ULX3S (hw/boards/ulx3s/board.toml has the pins).
//
// The NPU runs at the profile's clock, which must be exactly what this wrapper
// makes of the oscillator: the UART's bit time (CLKS_PER_BIT) and the
// performance model both derive from it. USE_PLL = 0 when the two are equal;
// else scripts/ecp5_build.py generates dnpu_board_pll (an EHXPLLL, by ecppll)
// for the profile's clock and checks its ratio is exact.
//
// Reset: the button (RST_ACTIVE_HIGH says its pressed level) and the PLL's
// lock are both asynchronous to the NPU's clock, so the active-low reset is
// asserted at once and released through a short synchronizer; the registers
// start at 0 at configuration, so the NPU also starts in reset. LED_ACTIVE_HIGH
// is the level that lights the LEDs.

module dnpu_ulx3s #(
    parameter integer USE_PLL         = 1,
    parameter integer RST_ACTIVE_HIGH = 1,
    parameter integer LED_ACTIVE_HIGH = 1,
    parameter integer MEM_BYTES       = 1 << 18
) (
    input  wire clk_osc,
    input  wire btn_reset,
    input  wire uart_rx,
    output wire uart_tx,
    output wire led_busy,
    output wire led_link_idle
);
    wire clk, locked;
    generate
        if (USE_PLL != 0) begin : g_pll
            dnpu_board_pll u_pll (.clkin(clk_osc), .clkout0(clk), .locked(locked));
        end else begin : g_osc
            assign clk = clk_osc;
            assign locked = 1'b1;
        end
    endgenerate

    wire pressed = RST_ACTIVE_HIGH != 0 ? btn_reset : !btn_reset;
    wire hold    = pressed || !locked;
    // The initial value is the state configuration leaves, which holds the NPU in
    // reset when the clock runs from the oscillator (no lock to wait for).
    /* verilator lint_off PROCASSINIT */
    reg [3:0] rst_sync = 4'd0;
    /* verilator lint_on PROCASSINIT */
    always @(posedge clk or posedge hold)
        if (hold) rst_sync <= 4'd0;
        else      rst_sync <= {rst_sync[2:0], 1'b1};

    wire busy, link_idle;
    dnpu_uart_top #(.MEM_BYTES(MEM_BYTES)) u_top (
        .clk(clk), .rst_n(rst_sync[3]), .uart_rx(uart_rx), .uart_tx(uart_tx),
        .busy(busy), .link_idle(link_idle));
    assign led_busy      = LED_ACTIVE_HIGH != 0 ? busy : !busy;
    assign led_link_idle = LED_ACTIVE_HIGH != 0 ? link_idle : !link_idle;
endmodule
`default_nettype wire
