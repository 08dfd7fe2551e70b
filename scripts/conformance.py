#!/usr/bin/env python3
"""Runs the ONNX package's own backend node tests on Musket, as a conformance suite.

Each test case that `onnx.backend.test.case.node` generates (a model, its inputs and expected
outputs) whose ops are all common inference ops is run through `musket infer` on the chosen
back ends: the first input is the data owner's private input, the other inputs become model
weights (initializers), and Musket's output is compared with the first expected output
(|got - want| <= 1e-2 + 1e-2 |want|, as the fixed-point encoding allows). Each run ends as:

  pass     the output matches;
  refused  musket exits 1 with an error (an unsupported op or attribute, a value outside the
           fixed-point range, ...): the reason is recorded;
  wrong    musket exits 0 with an output that does not match: the defect we must never ship;
  crash    anything else (a signal, a panic, a hang past the time limit).

Requirements (PyPI): onnx, numpy. Build musket first (cargo build --release).
Usage:  python3 scripts/conformance.py [--protocols 2pc,3pc] [--markdown] [--only OP,...]
        [--json results.json] [--musket target/release/musket] [--min-pass N]
Exits 1 on any wrong answer or crash, and with --min-pass when fewer than N runs pass
(`.ci/run` runs it so, with onnx 1.23.2).
Prints per-op counts; --markdown prints the summary table that README.md carries.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
from onnx import numpy_helper

warnings.filterwarnings("ignore")

# The ops of inference models (what CrypTen, CrypTFlow and the exporters produce); tests whose
# models use anything else (sequences, strings, training ops, quantisation, random numbers,
# signal processing, control flow, ...) are out of scope.
INFERENCE_OPS = set("""
Abs Add And ArgMax ArgMin AveragePool BatchNormalization Cast Ceil Celu Clip Concat Constant
ConstantOfShape Conv ConvTranspose CumSum DepthToSpace Div Dropout Einsum Elu Equal Erf Exp Expand
Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalMaxPool Greater
GreaterOrEqual HardSigmoid HardSwish Identity InstanceNormalization IsInf IsNaN LayerNormalization
LeakyRelu Less LessOrEqual Log LogSoftmax MatMul Max MaxPool Mean Min Mod Mul Neg Not Or Pad Pow
PRelu Range Reciprocal ReduceL1 ReduceL2 ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd
ReduceSum ReduceSumSquare Relu Reshape Resize Round ScatterElements ScatterND Selu Shape Sigmoid
Sign Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tanh Tile
Transpose Trilu Unsqueeze Where Xor
""".split())


def in_scope(model):
    return all(n.op_type in INFERENCE_OPS and n.domain in ("", "ai.onnx") for n in model.graph.node)


def prepare(case, workdir):
    """The test's model with every input but the first made an initializer; the first input and
    the first expected output, or None when the case cannot be posed (no inputs)."""
    inputs, outputs = case.data_sets[0]
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    g = model.graph
    if len(g.input) == 0 or len(inputs) == 0:
        return None
    if not all(isinstance(v, np.ndarray) and v.dtype != object for v in list(inputs) + list(outputs[:1])):
        return None  # sequences, optionals, strings
    names = [i.name for i in g.input]
    for name, value in list(zip(names, inputs))[1:]:
        g.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    keep = g.input[0]
    del g.input[:]
    g.input.append(keep)
    first_out = g.output[0]
    del g.output[:]
    g.output.append(first_out)
    path = os.path.join(workdir, case.name + ".onnx")
    onnx.save(model, path)
    x = np.asarray(inputs[0])
    np.save(os.path.join(workdir, case.name + "-input.npy"), x)
    return path, os.path.join(workdir, case.name + "-input.npy"), np.asarray(outputs[0])


def reason(stderr):
    """The error, without the paths and node names that differ per test."""
    line = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
    line = line.replace("error: ", "")
    for sep in ("): ", "\": "):
        if sep in line:
            line = line.split(sep, 1)[1]
    if "on the integer input" in line:
        line = line.split("; on the integer input")[0] + " on an integer input (only token ids feeding embedding lookups are)"
    return line[:140]


def run_case(musket, model, x, want, protocol, workdir):
    out = os.path.join(workdir, "out.npy")
    if os.path.exists(out):
        os.remove(out)
    try:
        r = subprocess.run([musket, "infer", "--model", model, "--input", x, "--protocol", protocol, "--output", out],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "crash", "timed out after 60 s"
    if r.returncode == 1:
        return "refused", reason(r.stderr)
    if r.returncode != 0 or "panicked" in r.stderr:
        return "crash", f"exit status {r.returncode}: {reason(r.stderr)}"
    got = np.load(out)
    want = want.astype(np.float64) if want.dtype != np.bool_ else want.astype(np.float64)
    if got.shape != want.shape:
        return "wrong", f"shape {list(got.shape)}, expected {list(want.shape)}"
    if not np.all(np.isfinite(want)):
        return "wrong", "an output of Musket where the expected output is not finite"
    err = np.abs(got - want)
    if np.all(err <= 1e-2 + 1e-2 * np.abs(want)):
        return "pass", ""
    return "wrong", f"max difference {err.max():.3g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocols", default="2pc,3pc")
    ap.add_argument("--musket", default="target/release/musket")
    ap.add_argument("--only", default="", help="comma-separated op types")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", default="")
    ap.add_argument("--min-pass", type=int, default=0,
                    help="also fail when fewer runs pass (CI: the count README's table records)")
    args = ap.parse_args()
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = np.seterr(all="ignore")
        cases = node_cases.collect_testcases(None)
        np.seterr(**old)
    only = set(filter(None, args.only.split(",")))
    protocols = args.protocols.split(",")
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for case in sorted(cases, key=lambda c: c.name):
            if not in_scope(case.model):
                continue
            op = case.model.graph.node[-1].op_type if len(case.model.graph.node) == 1 else \
                collections.Counter(n.op_type for n in case.model.graph.node).most_common(1)[0][0]
            # The op under test is named in the test's name; the expanded function tests use
            # several ops, so the name decides.
            named = [n.op_type for n in case.model.graph.node if n.op_type.lower() in case.name.replace("_", "").lower()]
            op = max(named, key=len) if named else op
            if only and op not in only:
                continue
            posed = prepare(case, workdir)
            if posed is None:
                continue
            model, x, want = posed
            for protocol in protocols:
                outcome, why = run_case(args.musket, model, x, want, protocol, workdir)
                results.append({"test": case.name, "op": op, "protocol": protocol, "outcome": outcome, "why": why})
                if outcome in ("wrong", "crash"):
                    print(f"{outcome.upper()}: {case.name} {protocol}: {why}", file=sys.stderr)
    by_op = collections.defaultdict(collections.Counter)
    totals = collections.Counter()
    for r in results:
        by_op[r["op"]][r["outcome"]] += 1
        totals[r["outcome"]] += 1
    n_tests = len({r["test"] for r in results})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    kinds = ["pass", "refused", "wrong", "crash"]
    if args.markdown:
        print(f"{n_tests} node tests in scope, run on {', '.join(protocols)} ({len(results)} runs): "
              + ", ".join(f"{totals[k]} {k}" for k in kinds) + ".\n")
        print("| op | " + " | ".join(kinds) + " |")
        print("|---|" + "---|" * len(kinds))
        for op in sorted(by_op):
            print(f"| {op} | " + " | ".join(str(by_op[op][k]) for k in kinds) + " |")
    else:
        for op in sorted(by_op):
            print(f"{op:24} " + "  ".join(f"{k} {by_op[op][k]:3}" for k in kinds))
        print(f"\n{n_tests} tests, {len(results)} runs: " + ", ".join(f"{totals[k]} {k}" for k in kinds))
    reasons = collections.Counter(r["why"] for r in results if r["outcome"] == "refused")
    print("\nMost common refusals:" if not args.markdown else "\nMost common refusals:\n")
    for why, count in reasons.most_common(25):
        print(f"- {count} × {why}")
    if totals["pass"] < args.min_pass:
        print(f"FAIL: {totals['pass']} runs pass, fewer than the {args.min_pass} expected", file=sys.stderr)
        sys.exit(1)
    sys.exit(1 if totals["wrong"] or totals["crash"] else 0)


if __name__ == "__main__":
    main()
