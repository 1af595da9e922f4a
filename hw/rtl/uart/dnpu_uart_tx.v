`default_nettype none
// dnpu_uart_tx: UART transmitter, 8 data bits, no parity, 1 stop bit, LSB first.
//
// A byte is taken when valid && ready; ready is low from then until the end of
// its stop bit, so back-to-back bytes leave no idle time between frames.

module dnpu_uart_tx #(
    parameter integer CLKS_PER_BIT = 868
) (
    input  wire       clk,
    input  wire       rst_n,                   // synchronous, active low
    input  wire [7:0] data,
    input  wire       valid,
    output wire       ready,
    output reg        tx                       // the line, idle high
);
    localparam integer CW = $clog2(CLKS_PER_BIT + 1);
    localparam [CW-1:0] FULL = CLKS_PER_BIT[CW-1:0] - 1'b1;

    reg [8:0]    shift;       // data bits then the stop bit, sent from bit 0
    reg [3:0]    left;        // bits still to send after the current one (0: idle when cnt done)
    reg [CW-1:0] cnt;
    reg          active;

    assign ready = !active;

    always @(posedge clk) begin
        if (!rst_n) begin
            tx     <= 1'b1;
            shift  <= 9'h1FF;
            left   <= 4'd0;
            cnt    <= {CW{1'b0}};
            active <= 1'b0;
        end else if (!active) begin
            if (valid) begin
                tx     <= 1'b0;                 // start bit
                shift  <= {1'b1, data};
                left   <= 4'd9;
                cnt    <= FULL;
                active <= 1'b1;
            end
        end else if (cnt != 0) begin
            cnt <= cnt - 1'b1;
        end else if (left != 0) begin
            tx    <= shift[0];
            shift <= {1'b1, shift[8:1]};
            left  <= left - 1'b1;
            cnt   <= FULL;
        end else begin
            active <= 1'b0;                     // the stop bit has had its full time
        end
    end
endmodule
`default_nettype wire
