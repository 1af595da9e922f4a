`default_nettype none
// dnpu_fp_cmp: gt = (a > b), eq = (a == b) in the total order of
// docs/NUMERICS.md section 5 ("Comparisons, max and argmax"): DAZ read (section
// 2), -0 == +0, NaN greater than every number and equal to every NaN.
// Combinational. The other relations follow: lt(a, b) = gt(b, a),
// ge = gt | eq; S_MAX_FP picks b iff gt(b, a).
//
// One unsigned compare of the raw magnitudes serves every sign combination; DAZ
// is folded in afterwards (a zero exponent field is magnitude 0, below any
// normal), and a zero counts as non-negative, which makes -0 == +0.

module dnpu_fp_cmp (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output wire        gt,
    output wire        eq
);
    wire a_nan = (&a[30:23]) & (|a[22:0]);
    wire b_nan = (&b[30:23]) & (|b[22:0]);
    wire a_z   = ~(|a[30:23]);
    wire b_z   = ~(|b[30:23]);
    wire m_gt  = ~a_z & (b_z | (a[30:0] > b[30:0]));     // |a| > |b| after DAZ
    wire m_eq  = a_z ? b_z : (~b_z & (a[30:0] == b[30:0]));
    wire a_pos = ~a[31] | a_z;
    wire b_pos = ~b[31] | b_z;
    wire n_gt  = a_pos ? (~b_pos | m_gt) : (~b_pos & ~m_gt & ~m_eq);
    wire n_eq  = m_eq & (a_pos == b_pos);

    assign gt = a_nan ? ~b_nan : (~b_nan & n_gt);
    assign eq = a_nan ? b_nan  : (~b_nan & n_eq);
endmodule

`default_nettype wire
