`default_nettype none
// dnpu_uart_rx: UART receiver, 8 data bits, no parity, 1 stop bit, LSB first.
//
// The line is brought into the clock domain by two flip-flops (it comes from
// another chip, so it is asynchronous here). A falling edge starts a byte; the
// start bit is checked again half a bit later, so a low glitch shorter than
// half a bit time is not taken for a byte. Each data bit and the stop bit are
// sampled once, in the middle of their bit time. A low stop bit raises
// frame_err instead of valid, and the receiver then waits for the line to go
// high again, so a held-low line (a break, a pulled cable) is not read as a
// stream of 0x00 bytes.
//
// The receiver is ready for the next start bit from the middle of a stop bit
// on, which tolerates a sender up to about half a bit per byte faster.

module dnpu_uart_rx #(
    parameter integer CLKS_PER_BIT = 868       // >= 4
) (
    input  wire       clk,
    input  wire       rst_n,                   // synchronous, active low
    input  wire       rx,                      // the line, idle high, asynchronous
    output reg  [7:0] data,                    // the byte, valid with valid
    output reg        valid,                   // one cycle per byte received
    output reg        frame_err,               // one cycle per byte whose stop bit was low
    output wire       line,                    // the synchronized line level
    output wire       idle                     // no byte in progress
);
    localparam integer CW = $clog2(CLKS_PER_BIT + 1);
    localparam [CW-1:0] FULL = CLKS_PER_BIT[CW-1:0] - 1'b1;
    localparam [CW-1:0] HALF = CLKS_PER_BIT[CW:1] - 1'b1;   // CLKS_PER_BIT / 2 - 1

    localparam [2:0] S_IDLE = 3'd0, S_START = 3'd1, S_DATA = 3'd2, S_STOP = 3'd3, S_HOLD = 3'd4;

    (* ASYNC_REG = "TRUE" *) reg [1:0] sync;
    reg [2:0]    state;
    reg [CW-1:0] cnt;         // clocks left in the current (half) bit
    reg [2:0]    nbit;        // data bits received so far
    reg [7:0]    shift;

    assign line = sync[1];
    assign idle = state == S_IDLE;

    always @(posedge clk) begin
        valid     <= 1'b0;
        frame_err <= 1'b0;
        if (!rst_n) begin
            sync  <= 2'b11;
            state <= S_IDLE;
            cnt   <= {CW{1'b0}};
            nbit  <= 3'd0;
            shift <= 8'd0;
            data  <= 8'd0;
        end else begin
            sync <= {sync[0], rx};
            case (state)
            S_IDLE: if (!line) begin
                state <= S_START;
                cnt   <= HALF;
            end
            S_START: if (cnt != 0) cnt <= cnt - 1'b1;
                     else if (line) state <= S_IDLE;        // a glitch, not a start bit
                     else begin
                         state <= S_DATA;
                         cnt   <= FULL;
                         nbit  <= 3'd0;
                     end
            S_DATA: if (cnt != 0) cnt <= cnt - 1'b1;
                    else begin
                        shift <= {line, shift[7:1]};
                        cnt   <= FULL;
                        nbit  <= nbit + 1'b1;
                        if (nbit == 3'd7) state <= S_STOP;
                    end
            S_STOP: if (cnt != 0) cnt <= cnt - 1'b1;
                    else if (line) begin
                        data  <= shift;
                        valid <= 1'b1;
                        state <= S_IDLE;
                    end else begin
                        frame_err <= 1'b1;
                        state     <= S_HOLD;
                    end
            default: if (line) state <= S_IDLE;            // S_HOLD: wait out a low line
            endcase
        end
    end
endmodule
`default_nettype wire
