//! Statements built from records: the three roles' shares add up, packed and plain, and an
//! error does not.

use super::*;

/// The matrix-product folds of Galois-ring weights equal the element-by-element sums.
#[test]
fn ring_folds_are_the_weighted_sums() {
    let mut prg = Prg::from_seed([21; 16]);
    // Weights from the exceptional set (row sums by bits) and general ones (a matrix
    // product), at sizes around the subset sums' groups of four rows.
    for (m, k, n) in [(5, 7, 3), (1, 1, 1), (4, 9, 8), (13, 300, 6)] {
        let (x, y) = (prg.words(m * k), prg.words(k * n));
        let general = |prg: &mut Prg, count: usize| -> Vec<Gr64> {
            (0..count).map(|_| Gr64(prg.words(EXT_DEGREE).try_into().expect("64 words"))).collect()
        };
        let exceptional = |prg: &mut Prg, count: usize| -> Vec<Gr64> {
            prg.words(count).into_iter().map(Gr64::exceptional).collect()
        };
        for binary_weights in [true, false] {
            let (rho, sigma) = if binary_weights {
                (exceptional(&mut prg, m), exceptional(&mut prg, n))
            } else {
                (general(&mut prg, m), general(&mut prg, n))
            };
            let left: Vec<Gr64> = (0..k)
                .map(|t| (0..m).fold(Gr64::zero(), |acc, i| acc.add(rho[i].mul_base(x[i * k + t]))))
                .collect();
            let right: Vec<Gr64> = (0..k)
                .map(|t| (0..n).fold(Gr64::zero(), |acc, j| acc.add(sigma[j].mul_base(y[t * n + j]))))
                .collect();
            assert_eq!(Gr64::left_fold(&x, m, k, &rho), left, "{m} x {k}, binary {binary_weights}");
            assert_eq!(Gr64::right_fold(&y, k, n, &sigma), right, "{k} x {n}, binary {binary_weights}");
        }
    }
}

/// `a - b` in `E`'s base (wrapping, or XOR for bits).
fn base_sub<E: Lift>(a: u64, b: u64) -> u64 {
    if E::BINARY {
        a ^ b
    } else {
        a.wrapping_sub(b)
    }
}

/// Each party's record of one elementwise resharing of `n` products, as an honest run
/// leaves them: party `i` holds components `i` and `i + 1`, its draws `F(k_i)`, `F(k_(i+1))`,
/// and the next party's message.
fn honest_records<E: Lift>(n: usize, seed: u8) -> Vec<Record> {
    let mut prg = Prg::from_seed([seed; 16]);
    let mut draw = || -> [Vec<u64>; 3] { [0, 1, 2].map(|_| prg.words(n)) };
    let (x, y, f) = (draw(), draw(), draw());
    let mul = |a: u64, b: u64| if E::BINARY { a & b } else { a.wrapping_mul(b) };
    let z: Vec<Vec<u64>> = (0..3)
        .map(|p| {
            let q = (p + 1) % 3;
            (0..n)
                .map(|g| {
                    let cross =
                        E::base_add(mul(x[p][g], E::base_add(y[p][g], y[q][g])), mul(x[q][g], y[p][g]));
                    base_sub::<E>(E::base_add(cross, f[p][g]), f[q][g])
                })
                .collect()
        })
        .collect();
    product_records_by_party(Gate::Elementwise, &x, &y, &z, &f, E::BINARY)
}

/// Each party's record of a resharing from every party's operand components `x`, `y`,
/// messages `z` and zero-share draws `f`, as kept (`binary`: XOR-shared): party `i` holds
/// components `i` and `i + 1`, its draw `F(k_i)`, and the next party's message less
/// `F(k_(i+1))` (`Record::fold_nxt`).
fn product_records_by_party(
    gate: Gate,
    x: &[Vec<u64>],
    y: &[Vec<u64>],
    z: &[Vec<u64>],
    f: &[Vec<u64>],
    binary: bool,
) -> Vec<Record> {
    (0..3)
        .map(|i| {
            let j = (i + 1) % 3;
            let mut rec = Record {
                gate,
                xc: x[i].clone(),
                xn: x[j].clone(),
                yc: y[i].clone(),
                yn: y[j].clone(),
                theirs: z[j].clone(),
                own: f[i].clone(),
                nxt: f[j].clone(),
                own_at: None,
            };
            rec.fold_nxt(binary);
            rec
        })
        .collect()
}

/// Each party's record of one `[m, k] x [k, n]` matrix product as an honest run leaves
/// them (as [`honest_records`], with matrices).
fn honest_matmul_records<E: Lift>(m: usize, k: usize, n: usize, seed: u8) -> Vec<Record> {
    let mut prg = Prg::from_seed([seed; 16]);
    let x: Vec<Vec<u64>> = (0..3).map(|_| prg.words(m * k)).collect();
    let y: Vec<Vec<u64>> = (0..3).map(|_| prg.words(k * n)).collect();
    let f: Vec<Vec<u64>> = (0..3).map(|_| prg.words(m * n)).collect();
    let product = |a: &[u64], b: &[u64]| -> Vec<u64> {
        (0..m * n)
            .map(|o| {
                (0..k)
                    .fold(0u64, |acc, t| E::base_add(acc, E::base_mul(a[(o / n) * k + t], b[t * n + o % n])))
            })
            .collect()
    };
    let z: Vec<Vec<u64>> = (0..3)
        .map(|p| {
            let q = (p + 1) % 3;
            let sum: Vec<u64> = y[p].iter().zip(&y[q]).map(|(a, b)| E::base_add(*a, *b)).collect();
            let (first, second) = (product(&x[p], &sum), product(&x[q], &y[p]));
            (0..m * n)
                .map(|o| base_sub::<E>(E::base_add(E::base_add(first[o], second[o]), f[p][o]), f[q][o]))
                .collect()
        })
        .collect();
    product_records_by_party(Gate::Matmul { m, k, n }, &x, &y, &z, &f, E::BINARY)
}

/// Each party's record of `n` [`Gate::Cross`] gates as an honest run leaves them: prover
/// `P`'s term is `x_P y_P`, its verifier `A` holds `x_P` and `B` holds `y_P`, and their
/// claim shares add up to the term.
fn honest_cross_records<E: Lift>(n: usize, seed: u8) -> Vec<Record> {
    let mut prg = Prg::from_seed([seed; 16]);
    let mut draw = || -> [Vec<u64>; 3] { [0, 1, 2].map(|_| prg.words(n)) };
    let (x, y, share_a) = (draw(), draw(), draw());
    let mul = |a: u64, b: u64| if E::BINARY { a & b } else { a.wrapping_mul(b) };
    let share_b: Vec<Vec<u64>> = (0..3)
        .map(|p| (0..n).map(|g| base_sub::<E>(mul(x[p][g], y[p][g]), share_a[p][g])).collect())
        .collect();
    cross_records_by_party([1; 3], &x, &y, &share_a, &share_b)
}

/// Each party's cross record from every prover's factors (`x`, `y`, `widths[p]` per
/// element) and its verifiers' claim shares (`share_a`, `share_b`): party `i` proves its
/// own, is `A` of the next party's statement and `B` of the previous party's.
fn cross_records_by_party(
    widths: [usize; 3],
    x: &[Vec<u64>],
    y: &[Vec<u64>],
    share_a: &[Vec<u64>],
    share_b: &[Vec<u64>],
) -> Vec<Record> {
    (0..3)
        .map(|i| {
            let (next, prev) = ((i + 1) % 3, (i + 2) % 3);
            Record {
                gate: Gate::Cross { prover: widths[i], a: widths[next], b: widths[prev] },
                xc: x[i].clone(),
                yc: y[i].clone(),
                xn: x[next].clone(),
                theirs: share_a[next].clone(),
                yn: y[prev].clone(),
                own: share_b[prev].clone(),
                nxt: Vec::new(),
                own_at: None,
            }
        })
        .collect()
}

/// Each party's record of `n` cross gates whose prover `p` proves `widths[p]` products
/// per element (truncation's conversion: `[1, 1, 3]`), as an honest run leaves them.
fn honest_wide_cross_records(n: usize, widths: [usize; 3], seed: u8) -> Vec<Record> {
    let mut prg = Prg::from_seed([seed; 16]);
    let x: Vec<Vec<u64>> = widths.iter().map(|w| prg.words(n * w)).collect();
    let y: Vec<Vec<u64>> = widths.iter().map(|w| prg.words(n * w)).collect();
    let share_a: Vec<Vec<u64>> = (0..3).map(|_| prg.words(n)).collect();
    let share_b: Vec<Vec<u64>> = (0..3)
        .map(|p| {
            (0..n)
                .map(|g| {
                    let w = widths[p];
                    let sum = (g * w..(g + 1) * w)
                        .fold(0u64, |acc, i| acc.wrapping_add(x[p][i].wrapping_mul(y[p][i])));
                    sum.wrapping_sub(share_a[p][g])
                })
                .collect()
        })
        .collect();
    cross_records_by_party(widths, &x, &y, &share_a, &share_b)
}

/// Whether `role`'s statement over `records` takes the packed form.
fn packs<E: Lift>(records: &[Record], role: Role) -> bool {
    let len = records.iter().map(|r| r.terms_as(E::BINARY, role)).sum();
    E::packed(records, role, len, &mut Prg::from_seed([9; 16])).is_some()
}

/// `role`'s statement over `records`, written out: packed when `packed` and the batch packs
/// (tests assert where it must, [`packs`]), else plain.
fn written_out<E: Lift>(records: &[Record], role: Role, packed: bool) -> (Vec<E>, Vec<E>, E) {
    let len = records.iter().map(|r| r.terms_as(E::BINARY, role)).sum();
    if packed {
        if let Some((terms, claim)) = E::packed(records, role, len, &mut Prg::from_seed([9; 16])) {
            let (l, r) = terms.expand();
            return (l, r, claim);
        }
    }
    let st = build::<E>(records, role, &mut Prg::from_seed([9; 16]));
    (st.l, st.r, st.claim)
}

/// Every role's statement of every prover over `records` packs.
fn all_pack<E: Lift>(records: &[Vec<Record>]) -> bool {
    (0..3).all(|p| {
        packs::<E>(&records[p], Role::Prover)
            && packs::<E>(&records[(p + 2) % 3], Role::A)
            && packs::<E>(&records[(p + 1) % 3], Role::B)
    })
}

/// For each prover: its verifiers' statements (A = the previous party, B = the next) add
/// up to its own, element by element, and their claims to the inner product, over each
/// party's `records`.
fn verifier_shares_add_up<E: Lift>(records: &[Vec<Record>], packed: bool) {
    for p in 0..3 {
        let (lp, rp, _) = written_out::<E>(&records[p], Role::Prover, packed);
        let (la, ra, ca) = written_out::<E>(&records[(p + 2) % 3], Role::A, packed);
        let (lb, rb, cb) = written_out::<E>(&records[(p + 1) % 3], Role::B, packed);
        assert_eq!((la.len(), lb.len()), (lp.len(), lp.len()));
        for i in 0..lp.len() {
            assert_eq!(la[i].add(lb[i]), lp[i], "l[{i}], prover {p}");
            assert_eq!(ra[i].add(rb[i]), rp[i], "r[{i}], prover {p}");
        }
        assert_eq!(ca.add(cb), E::dot(&lp, &rp), "claim, prover {p}");
    }
}

/// Whether prover `p`'s verifiers' claim shares (A = the previous party, B = the next) add up
/// to its statement's inner product, over each party's `records`.
fn claims_add_up<E: Lift>(records: &[Vec<Record>], p: usize, packed: bool) -> bool {
    let (lp, rp, _) = written_out::<E>(&records[p], Role::Prover, packed);
    let (_, _, ca) = written_out::<E>(&records[(p + 2) % 3], Role::A, packed);
    let (_, _, cb) = written_out::<E>(&records[(p + 1) % 3], Role::B, packed);
    ca.add(cb) == E::dot(&lp, &rp)
}

/// Each party's records: one of each kind given, in the same order at every party.
fn by_party(kinds: Vec<Vec<Record>>) -> Vec<Vec<Record>> {
    let mut out: Vec<Vec<Record>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for kind in kinds {
        for (i, rec) in kind.into_iter().enumerate() {
            out[i].push(rec);
        }
    }
    out
}

#[test]
fn packed_statements_of_honest_records_are_consistent_across_roles() {
    verifier_shares_add_up::<Gf64>(&by_party(vec![honest_records::<Gf64>(5, 3)]), true);
    let records = by_party(vec![honest_records::<Gr64>(PACKED_MIN_PRODUCTS + 37, 3)]);
    assert!(all_pack::<Gr64>(&records));
    verifier_shares_add_up::<Gr64>(&records, true);
}

/// Cross gates with no product in one prover's statement (truncation's wrap, `[1, 1, 0]`):
/// that statement has only the other records' terms, and still every claim of those gates
/// is checked there: one changed claim share does not add up.
#[test]
fn cross_gates_without_products_in_a_statement_keep_their_claims_checked() {
    let n = PACKED_MIN_PRODUCTS + 37;
    let widths = [1, 1, 0];
    let records =
        by_party(vec![honest_records::<Gr64>(n, 3), honest_wide_cross_records(n / 2 + 5, widths, 8)]);
    assert!(all_pack::<Gr64>(&records));
    verifier_shares_add_up::<Gr64>(&records, true);
    // Alone: party 2's statement has no terms at all, only claims, and still packs.
    let alone = by_party(vec![honest_wide_cross_records(n, widths, 9)]);
    assert!(all_pack::<Gr64>(&alone));
    verifier_shares_add_up::<Gr64>(&alone, true);
    let mut bad = by_party(vec![honest_wide_cross_records(n, widths, 9)]);
    bad[0][0].own[n - 1] = bad[0][0].own[n - 1].wrapping_add(1 << 63);
    assert!(!claims_add_up::<Gr64>(&bad, 2, true));
    for packed in [true, false] {
        for error in [1u64, 1 << 63] {
            let mut records =
                by_party(vec![honest_records::<Gr64>(n, 3), honest_wide_cross_records(n / 2 + 5, widths, 8)]);
            assert!(all_pack::<Gr64>(&records));
            // Party 2's (no products) claim share as its verifier A (party 1) holds it.
            records[1][1].theirs[n / 4] = records[1][1].theirs[n / 4].wrapping_add(error);
            assert!(!claims_add_up::<Gr64>(&records, 2, packed), "error {error}, packed {packed}");
            assert!(claims_add_up::<Gr64>(&records, 0, packed) && claims_add_up::<Gr64>(&records, 1, packed));
        }
    }
}

#[test]
fn matrix_product_statements_are_one_term_per_inner_index_and_add_up() {
    let (m, k, n) = (5, 7, 3);
    verifier_shares_add_up::<Gr64>(&by_party(vec![honest_matmul_records::<Gr64>(m, k, n, 15)]), false);
    verifier_shares_add_up::<Gf64>(&by_party(vec![honest_matmul_records::<Gf64>(m, k, n, 16)]), false);
    assert_eq!(honest_matmul_records::<Gr64>(m, k, n, 15)[0].terms_as(false, Role::Prover), k);
    // A product output off by one (party 1's message as party 0 received it) does not add up.
    for error in [1u64, 1 << 63] {
        let mut records = by_party(vec![honest_matmul_records::<Gr64>(m, k, n, 17)]);
        records[0][0].theirs[m * n - 1] = records[0][0].theirs[m * n - 1].wrapping_add(error);
        assert!(!claims_add_up::<Gr64>(&records, 1, false), "error {error}");
    }
}

#[test]
fn one_prover_records_give_only_that_provers_statement_terms() {
    // Party 2's AND words as a one-prover record (truncation's carries check): its
    // statement is the whole product, the other two are empty; packed and plain.
    let n = 9;
    // `trimmed`: each party keeps only what its role reads, as `keep_helper_products` does
    // (the prover its factors' sums in `xc`, `yc`; A `xn`, `yn`, `theirs`; B `xc`, `yc`,
    // `own`).
    let one_prover = |seed: u8, trimmed: bool| -> Vec<Vec<Record>> {
        let mut records = honest_records::<Gf64>(n, seed);
        for (party, role) in [(0, Role::B), (1, Role::A), (2, Role::Prover)] {
            let rec = &mut records[party];
            rec.gate = Gate::OneProver { role };
            if trimmed {
                let xor = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(a, b)| a ^ b).collect::<Vec<u64>>();
                match role {
                    Role::Prover => {
                        (rec.xc, rec.yc) = (xor(&rec.xc, &rec.xn), xor(&rec.yc, &rec.yn));
                        (rec.xn, rec.yn, rec.theirs, rec.own) = Default::default();
                    }
                    Role::A => (rec.xc, rec.yc, rec.own) = Default::default(),
                    Role::B => (rec.xn, rec.yn, rec.theirs) = Default::default(),
                }
            }
        }
        by_party(vec![records])
    };
    for (packed, trimmed) in [(true, false), (false, false), (true, true), (false, true)] {
        verifier_shares_add_up::<Gf64>(&one_prover(20, trimmed), packed);
        let records = one_prover(20, trimmed);
        assert_eq!(records[2][0].terms_as(true, Role::Prover), 64 * n);
        assert_eq!(records[0][0].terms_as(true, Role::Prover), 0);
        for party in 0..3 {
            assert_eq!(records[party][0].terms(true), 64 * n);
            if trimmed {
                assert_eq!(records[party][0].words(), 3 * n, "the same count at every party");
            }
        }
        // One flipped bit of the claim (what party 1, its A, holds of the result), or of
        // one of the prover's factors.
        let mut records = one_prover(21, trimmed);
        records[1][0].theirs[n - 1] ^= 1 << 40;
        assert!(!claims_add_up::<Gf64>(&records, 2, packed), "packed {packed}, trimmed {trimmed}");
        let mut records = one_prover(22, trimmed);
        records[2][0].yc[0] ^= 1 << 3;
        assert!(!claims_add_up::<Gf64>(&records, 2, packed), "packed {packed}, trimmed {trimmed}");
    }
}

#[test]
fn an_elementwise_product_off_by_one_does_not_add_up() {
    for packed in [true, false] {
        for error in [1u64, 1 << 63] {
            let n = PACKED_MIN_PRODUCTS + 37;
            let mut records = by_party(vec![honest_records::<Gr64>(n, 18)]);
            records[2][0].theirs[n / 3] = records[2][0].theirs[n / 3].wrapping_add(error);
            assert!(!claims_add_up::<Gr64>(&records, 0, packed), "error {error}, packed {packed}");
            // Binary: one flipped bit of an AND word.
            let mut records = by_party(vec![honest_records::<Gf64>(9, 19)]);
            records[2][0].theirs[4] ^= error;
            assert!(!claims_add_up::<Gf64>(&records, 0, packed), "binary error {error}, packed {packed}");
        }
    }
}

#[test]
fn cross_gates_are_consistent_across_roles_alone_and_after_products() {
    let n = PACKED_MIN_PRODUCTS + 37;
    // Products first then cross gates (blocks of each kind), and cross gates alone.
    let mixed = by_party(vec![honest_records::<Gr64>(n, 3), honest_cross_records::<Gr64>(n / 2 + 5, 4)]);
    let alone = by_party(vec![honest_cross_records::<Gr64>(n, 5)]);
    for records in [&mixed, &alone] {
        assert!(all_pack::<Gr64>(records));
        verifier_shares_add_up::<Gr64>(records, true);
        verifier_shares_add_up::<Gr64>(records, false);
    }
    // Small batches prove in plain form, binary ones too.
    verifier_shares_add_up::<Gr64>(&by_party(vec![honest_cross_records::<Gr64>(7, 6)]), false);
    verifier_shares_add_up::<Gf64>(&by_party(vec![honest_cross_records::<Gf64>(7, 6)]), false);
}

#[test]
fn cross_gates_of_different_widths_per_prover_are_consistent_across_roles() {
    let n = PACKED_MIN_PRODUCTS + 37;
    let widths = [1, 1, 3];
    // Alone, after products, and beside one-product cross gates before or after them, packed
    // where a batch packs and plain; small batches plain. A statement with two or more
    // products per element of a cross gate proves in plain form (the packed weights are
    // fixed by position, and an element's products would need one weight): the wide prover's
    // statement, in every role, while the others pack.
    let batches = [
        by_party(vec![honest_wide_cross_records(n, widths, 7)]),
        by_party(vec![honest_records::<Gr64>(n, 3), honest_wide_cross_records(n / 2 + 5, widths, 8)]),
        by_party(vec![
            honest_cross_records::<Gr64>(n / 2 + 5, 4),
            honest_wide_cross_records(n / 2, widths, 9),
        ]),
        by_party(vec![
            honest_wide_cross_records(n / 2, widths, 12),
            honest_records::<Gr64>(n / 3, 13),
            honest_cross_records::<Gr64>(n / 2 + 5, 14),
        ]),
    ];
    for records in &batches {
        assert!(!packs::<Gr64>(&records[2], Role::Prover));
        assert!(!packs::<Gr64>(&records[1], Role::A) && !packs::<Gr64>(&records[0], Role::B));
        assert!(packs::<Gr64>(&records[0], Role::Prover) && packs::<Gr64>(&records[1], Role::Prover));
        verifier_shares_add_up::<Gr64>(records, true);
        verifier_shares_add_up::<Gr64>(records, false);
    }
    verifier_shares_add_up::<Gr64>(&by_party(vec![honest_wide_cross_records(7, widths, 10)]), false);
    // The statements' lengths follow their provers' widths.
    let records = &batches[0];
    for (p, w) in widths.iter().enumerate() {
        assert_eq!(records[p][0].terms_as(false, Role::Prover), n * w);
        assert_eq!(records[(p + 2) % 3][0].terms_as(false, Role::A), n * w);
        assert_eq!(records[(p + 1) % 3][0].terms_as(false, Role::B), n * w);
        assert_eq!(records[p][0].terms(false), n * 3);
    }
    // An error in the wide prover's message does not add up, in either form.
    for packed in [true, false] {
        for error in [1u64, 1 << 63] {
            let mut records = by_party(vec![honest_wide_cross_records(n, widths, 11)]);
            // Party 2's message as its verifier A (party 1) received it.
            records[1][0].theirs[n / 2] = records[1][0].theirs[n / 2].wrapping_add(error);
            assert!(!claims_add_up::<Gr64>(&records, 2, packed), "error {error}, packed {packed}");
        }
    }
}

#[test]
fn a_cross_claim_off_by_one_does_not_add_up() {
    let n = PACKED_MIN_PRODUCTS + 37;
    for packed in [true, false] {
        for error in [1u64, 1 << 63] {
            let mut records =
                by_party(vec![honest_records::<Gr64>(n, 3), honest_cross_records::<Gr64>(n, 4)]);
            assert!(all_pack::<Gr64>(&records));
            // Party 1's message as prover, as its verifier A (party 0) received it.
            records[0][1].theirs[n - 1] = records[0][1].theirs[n - 1].wrapping_add(error);
            assert!(!claims_add_up::<Gr64>(&records, 1, packed), "error {error}, packed {packed}");
        }
    }
}
