#!/usr/bin/env python3
"""Replays the hostile and careless inputs of issue 11 against the musket binary.

Every case prints one line, `ok   <case>: <what happened>` or `FAIL <case>: <what happened>`,
and the script exits non-zero if any case failed. No case may exit 0 with a wrong answer.

Requirements: Python 3.8+ (standard library only: the small ONNX models and .npy files are
encoded here by hand) and a built binary. Run from the repository root:

    cargo build --release
    python3 scripts/hostile.py                      # about a minute
    python3 scripts/hostile.py --slow               # also ResNet-18 on 360 images (memory)
    MUSKET=/path/to/other/musket python3 scripts/hostile.py   # another build

Cases: reciprocal of negative values and division by computed values; the digits CNN with its sample times 1e5 (locally and
across processes); the transformer block times 3, 4 and 1e4; 1000 idle and garbage TCP
connections held on the parties' ports during set-up; /dev/zero and oversized files as model
or input; a NaN weight; every numpy integer dtype; an empty batch; invalid and mismatched
cluster files; colour codes in logs written to a file; with --slow, the peak memory of
ResNet-18 on the 360-image test split in 3PC (target: under 3 GB).
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

MUSKET = os.environ.get("MUSKET", "target/release/musket")
EXAMPLES = "examples"
RESULTS = []


def report(case, ok, detail):
    RESULTS.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {case}: {detail}", flush=True)


# ---- minimal protobuf and .npy encoders -------------------------------------------------------

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    tag = varint((num << 3) | wire)
    if wire == 0:
        return tag + varint(payload)
    return tag + varint(len(payload)) + payload


def s(num, text):
    return field(num, 2, text.encode() if isinstance(text, str) else text)


def value_info(name, dims):
    shape = b"".join(field(1, 2, field(1, 0, d)) for d in dims)
    tensor_type = field(1, 0, 1) + field(2, 2, shape)  # elem_type FLOAT
    return s(1, name) + field(2, 2, field(1, 2, tensor_type))


def tensor(name, dims, values):
    body = b"".join(field(1, 0, d) for d in dims) + field(2, 0, 1)
    body += s(8, name) + s(9, struct.pack(f"<{len(values)}f", *values))
    return body


def model(nodes, inputs, outputs, initializers=()):
    graph = b"".join(field(1, 2, n) for n in nodes) + s(2, "hostile")
    graph += b"".join(field(5, 2, t) for t in initializers)
    graph += b"".join(field(11, 2, v) for v in inputs) + b"".join(field(12, 2, v) for v in outputs)
    opset = s(1, "") + field(2, 0, 17)
    return field(1, 0, 8) + field(8, 2, opset) + field(7, 2, graph)


def node(op, inputs, outputs, name):
    return b"".join(s(1, i) for i in inputs) + b"".join(s(2, o) for o in outputs) + s(3, name) + s(4, op)


def npy(path, descr, shape, values, fmt):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join(f"{d}, " for d in shape) if len(shape) == 1 else ", ".join(map(str, shape)))
    header = header.encode()
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * (pad % 64) + b"\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
        f.write(struct.pack(f"<{len(values)}{fmt}", *values) if values else b"")


def read_npy_f32(path):
    with open(path, "rb") as f:
        data = f.read()
    hlen = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + hlen].decode()
    body = data[10 + hlen:]
    fmt = "f" if "<f4" in header else "d"
    return list(struct.unpack(f"<{len(body) // struct.calcsize(fmt)}{fmt}", body))


# ---- running the binary ------------------------------------------------------------------------

def run(args, timeout=120, env=None):
    """Runs musket; returns (exit status, stdout, stderr, seconds, peak RSS in MiB)."""
    start = time.time()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([MUSKET] + args, stdout=out, stderr=err, env=env)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                p.kill()
                pid, status, usage = os.wait4(p.pid, 0)
                break
            time.sleep(0.01)
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        return code, out.read().decode(errors="replace"), err.read().decode(errors="replace"), \
            time.time() - start, usage.ru_maxrss / 1024


def first_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[0][:160] if lines else "(nothing)"


def free_base_port():
    for _ in range(200):
        with socket.socket() as s0:
            s0.bind(("127.0.0.1", 0))
            base = s0.getsockname()[1]
        if base > 64000:
            continue
        try:
            socks = []
            for k in range(3):
                t = socket.socket()
                t.bind(("127.0.0.1", base + k))
                socks.append(t)
            for t in socks:
                t.close()
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


def cluster(tmp, name, protocol="3pc", timeout=30):
    d = os.path.join(tmp, name)
    code, _, err, _, _ = run(["cluster", "init", "--dir", d, "--protocol", protocol,
                              "--base-port", str(free_base_port())])
    if code != 0:
        raise RuntimeError(err)
    cfg = os.path.join(d, "cluster.toml")
    text = open(cfg).read().replace("timeout_secs = 60", f"timeout_secs = {timeout}")
    open(cfg, "w").write(text)
    return cfg


def parties(cfgs, jobs, timeout=90):
    procs = []
    for i in range(3):
        procs.append(subprocess.Popen([MUSKET, "party", "--config", cfgs[i], "--id", str(i), "--json"] + jobs[i],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outs = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            o, e = p.communicate()
        outs.append((p.returncode, o.decode(errors="replace"), e.decode(errors="replace")))
    return outs


def all_fail(outs):
    return all(code != 0 and not out.strip() for code, out, _ in outs)


# ---- the cases ---------------------------------------------------------------------------------

def case_reciprocal(tmp):
    m = os.path.join(tmp, "reciprocal.onnx")
    open(m, "wb").write(model([node("Reciprocal", ["x"], ["y"], "reciprocal")],
                              [value_info("x", [1, 2])], [value_info("y", [1, 2])]))
    x = os.path.join(tmp, "x.npy")
    npy(x, "<f4", [1, 2], [-4.0, 2.0], "f")
    for protocol in ["2pc", "3pc"]:
        code, out, err, _, _ = run(["infer", "--model", m, "--input", x, "--protocol", protocol, "--json"])
        got = json.loads(out)["output"] if code == 0 else None
        ok = got is not None and abs(got[0] + 0.25) < 1e-3 and abs(got[1] - 0.5) < 1e-3
        report(f"reciprocal-of-negative-{protocol}", ok, f"[-4, 2] -> {got}" if got else first_line(err))
    # Div by a computed value: a negative one, and a large one (a rounded reciprocal gave 0).
    m = os.path.join(tmp, "div.onnx")
    open(m, "wb").write(model([node("Div", ["w", "x"], ["y"], "div")],
                              [value_info("x", [1, 2])], [value_info("y", [1, 2])],
                              [tensor("w", [1, 2], [100000.0, 3.0])]))
    npy(x, "<f4", [1, 2], [20000.0, -4.0], "f")
    for protocol in ["2pc", "3pc"]:
        code, out, err, _, _ = run(["infer", "--model", m, "--input", x, "--protocol", protocol, "--json"])
        got = json.loads(out)["output"] if code == 0 else None
        ok = got is not None and abs(got[0] - 5.0) < 1e-3 and abs(got[1] + 0.75) < 1e-3
        report(f"div-by-computed-values-{protocol}", ok, f"[100000, 3] / [20000, -4] -> {got}" if got else first_line(err))


def scaled(tmp, name, shape, factor):
    x = read_npy_f32(os.path.join(EXAMPLES, name))
    path = os.path.join(tmp, f"{factor}-{name}")
    npy(path, "<f8", shape, [v * factor for v in x], "d")
    return path


def case_overflow(tmp):
    cnn = os.path.join(EXAMPLES, "digits-cnn-opset17.onnx")
    big = scaled(tmp, "digits-cnn-sample.npy", [1, 1, 8, 8], 1e5)
    code, out, err, _, _ = run(["infer", "--model", cnn, "--input", big])
    report("cnn-x1e5-local", code != 0 and not out and "AveragePool" in err,
           f"exit {code}: {first_line(err)}")
    cfg = cluster(tmp, "cnn-big")
    outs = parties([cfg] * 3, [["infer", "--model", cnn], ["infer", "--input", big], ["infer"]])
    report("cnn-x1e5-processes", all_fail(outs), f"exits {[o[0] for o in outs]}: party 1 says {first_line(outs[1][2])}")
    tr = os.path.join(EXAMPLES, "digits-transformer-opset17.onnx")
    for factor in [3, 4]:
        x = scaled(tmp, "digits-transformer-sample.npy", [1, 8, 8], factor)
        code, out, err, _, _ = run(["infer", "--model", tr, "--input", x, "--check", "--json"])
        d = json.loads(out)["check_max_abs_diff_float"] if code == 0 else None
        report(f"transformer-x{factor}", d is not None and d < 0.01,
               f"max |secure - f64| = {d:.2e}" if d is not None else first_line(err))
    hot = scaled(tmp, "digits-transformer-sample.npy", [1, 8, 8], 1e4)
    code, out, err, _, _ = run(["infer", "--model", tr, "--input", hot])
    report("transformer-x1e4-local", code != 0 and not out and "/MatMul" in err, f"exit {code}: {first_line(err)}")
    cfg = cluster(tmp, "tr-hot")
    outs = parties([cfg] * 3, [["infer", "--model", tr], ["infer", "--input", hot], ["infer"]])
    report("transformer-x1e4-processes", all_fail(outs) and "range check" in outs[1][2],
           f"exits {[o[0] for o in outs]}: party 1 says {first_line(outs[1][2])}")


def case_flood(tmp, count=1000):
    """Parties 2 and 0 start (and wait for party 1); `count` idle or garbage connections are
    opened and held on their two ports; then party 1 starts and set-up must still complete."""
    cfg = cluster(tmp, "flood", timeout=30)
    text = open(cfg).read()
    ports = [int(line.split(":")[-1].strip('"')) for line in text.splitlines() if line.startswith("address")]

    def start(i, amount=None):
        args = [MUSKET, "party", "--config", cfg, "--id", str(i), "--json", "millionaires"]
        args += ["--amount", amount] if amount else []
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = {2: start(2), 0: start(0, "5")}
    held = []
    deadline = time.time() + 30
    while len(held) < count and time.time() < deadline:
        port = ports[2] if len(held) % 2 == 0 else ports[0]
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=1)
            # Every fifth connection sends a few garbage bytes; all stay open.
            if len(held) % 5 == 4:
                c.sendall(b"\x16\x03\x01garbage")
            held.append(c)
        except OSError:
            time.sleep(0.005)
    procs[1] = start(1, "7")
    outs = []
    for i in range(3):
        try:
            o, e = procs[i].communicate(timeout=60)
        except subprocess.TimeoutExpired:
            procs[i].kill()
            o, e = procs[i].communicate()
        outs.append((procs[i].returncode, o.decode(), e.decode()))
    n = len(held)
    for c in held:
        c.close()
    ok = all(code == 0 for code, _, _ in outs) and '"bob"' in outs[0][1]
    report(f"set-up-under-{count}-connections", ok and n >= count,
           f"{n} connections held on two parties' ports; exits {[o[0] for o in outs]}"
           + ("" if ok else f": {first_line(outs[0][2])}"))


def case_files(tmp):
    mlp = os.path.join(EXAMPLES, "digits-mlp-opset17.onnx")
    sample = os.path.join(EXAMPLES, "digits-mlp-sample.npy")
    for what, args in [("model-dev-zero", ["--model", "/dev/zero", "--input", sample]),
                       ("input-dev-zero", ["--model", mlp, "--input", "/dev/zero"])]:
        code, out, err, secs, rss = run(["infer"] + args, timeout=20)
        report(what, code != 0 and secs < 2 and rss < 200, f"exit {code} in {secs:.2f}s, peak {rss:.0f} MiB: {first_line(err)}")
    big = os.path.join(tmp, "big.onnx")
    with open(big, "wb") as f:
        f.write(b"\x08" * (3 << 20))
    code, out, err, secs, _ = run(["infer", "--model", big, "--input", sample, "--max-file-mb", "2"])
    report("model-over-the-size-limit", code != 0 and "over the limit" in err, first_line(err))
    # A NaN in a weight.
    w = tensor("W", [2, 2], [1.0, float("nan"), 0.0, 1.0])
    m = os.path.join(tmp, "nan.onnx")
    open(m, "wb").write(model([node("MatMul", ["x", "W"], ["y"], "matmul")],
                              [value_info("x", [1, 2])], [value_info("y", [1, 2])], [w]))
    x = os.path.join(tmp, "two.npy")
    npy(x, "<f4", [1, 2], [3.0, 5.0], "f")
    code, out, err, _, _ = run(["infer", "--model", m, "--input", x])
    report("nan-weight", code != 0 and 'weight "W" of the model' in err, first_line(err))
    # Every numpy integer dtype (and bool, float16) through an identity matrix product.
    ident = os.path.join(tmp, "identity.onnx")
    open(ident, "wb").write(model([node("MatMul", ["x", "W"], ["y"], "matmul")],
                                  [value_info("x", [1, 2])], [value_info("y", [1, 2])],
                                  [tensor("W", [2, 2], [1.0, 0.0, 0.0, 1.0])]))
    for descr, fmt in [("|i1", "b"), ("<i2", "h"), ("<u2", "H"), ("<u4", "I"), ("<u8", "Q"), ("<i8", "q"),
                       ("<f2", "e"), ("|b1", "?")]:
        p = os.path.join(tmp, f"x{descr[1:]}.npy")
        values = [True, False] if fmt == "?" else [3, 5]
        npy(p, descr, [1, 2], values, fmt)
        code, out, err, _, _ = run(["infer", "--model", ident, "--input", p, "--json"])
        got = json.loads(out)["output"] if code == 0 else None
        want = [1.0, 0.0] if fmt == "?" else [3.0, 5.0]
        report(f"dtype-{descr[1:]}", got is not None and all(abs(a - b) < 1e-3 for a, b in zip(got, want)),
               f"-> {got}" if got else first_line(err))
    empty = os.path.join(tmp, "empty.npy")
    npy(empty, "<f4", [0, 1, 8, 8], [], "f")
    code, out, err, _, _ = run(["infer", "--model", os.path.join(EXAMPLES, "digits-cnn-opset17.onnx"), "--input", empty])
    report("empty-batch", code != 0 and not out and "no elements" in err, first_line(err))


def case_cluster_files(tmp):
    cfg = cluster(tmp, "files")
    good = open(cfg).read()
    addrs = [line for line in good.splitlines() if line.startswith("address")]
    bad = {
        "duplicate-address": good.replace(addrs[2], addrs[1]),
        "port-0": good.replace(addrs[2], 'address = "127.0.0.1:0"'),
        "port-99999": good.replace(addrs[2], 'address = "127.0.0.1:99999"'),
        "shared-certificate-file": good.replace('"party2.crt"', '"party1.crt"'),
    }
    for name, text in bad.items():
        p = os.path.join(os.path.dirname(cfg), f"{name}.toml")
        open(p, "w").write(text)
        code, _, err, _, _ = run(["party", "--config", p, "--id", "0", "millionaires", "--amount", "1"], timeout=10)
        report(f"cluster-{name}", code != 0 and "invalid cluster file" in err, first_line(err).replace("error: ", ""))
    d = os.path.dirname(cfg)
    shutil.copy(os.path.join(d, "party1.crt"), os.path.join(d, "party2.crt.bak"))
    shared = os.path.join(d, "shared.toml")
    open(shared, "w").write(good.replace('"party2.crt"', '"party2.crt.bak"'))
    code, _, err, _, _ = run(["party", "--config", shared, "--id", "0", "millionaires", "--amount", "1"], timeout=10)
    report("cluster-one-certificate-for-two-parties", code != 0 and "same certificate" in err, first_line(err))
    other = os.path.join(d, "other-protocol.toml")
    open(other, "w").write(good.replace('"3pc"', '"2pc"'))
    start = time.time()
    outs = parties([cfg, cfg, other], [["millionaires", "--amount", "1"], ["millionaires", "--amount", "2"], ["millionaires"]], 30)
    report("cluster-files-differ", all_fail(outs) and "protocol" in outs[0][2] and time.time() - start < 10,
           f"{time.time() - start:.1f}s: {first_line(outs[0][2])}")
    outs = parties([cfg] * 3, [["millionaires", "--amount", "1"], ["millionaires", "--amount", "2"], ["compare-loop"]], 30)
    report("jobs-differ", all_fail(outs) and "same job" in outs[0][2], first_line(outs[0][2]))


def case_colour(tmp):
    log = os.path.join(tmp, "log.txt")
    env = dict(os.environ, MUSKET_LOG="debug")
    env.pop("NO_COLOR", None)
    with open(log, "w") as f:
        subprocess.run([MUSKET, "infer", "--model", os.path.join(EXAMPLES, "digits-cnn-opset17.onnx"),
                        "--input", os.path.join(EXAMPLES, "digits-cnn-sample.npy")],
                       stdout=subprocess.DEVNULL, stderr=f, env=env, timeout=60)
    text = open(log).read()
    import re
    colour = re.search(r"\x1b\[[0-9;]*m", text)
    report("no-colour-in-log-files", "layer done" in text and not colour,
           f"{len(text.splitlines())} log lines, colour codes: {'yes' if colour else 'none'}")


def case_memory(tmp):
    code, out, err, secs, rss = run(["infer", "--model", os.path.join(EXAMPLES, "resnet18-32-opset17.onnx"),
                                     "--input", os.path.join(EXAMPLES, "digits-test-32x32x3.npy"), "--json"],
                                    timeout=600)
    ok = code == 0 and rss < 3 * 1024
    report("resnet18-360-images-memory", ok, f"exit {code}, {secs:.1f}s, peak RSS {rss / 1024:.2f} GiB")


def main():
    if not os.path.exists(MUSKET):
        sys.exit(f"{MUSKET} not found: run `cargo build --release` first (or set MUSKET)")
    tmp = tempfile.mkdtemp(prefix="musket-hostile-")
    try:
        for case in [case_reciprocal, case_overflow, case_flood, case_files, case_cluster_files, case_colour]:
            try:
                case(tmp)
            except Exception as e:  # a crash of the script itself is a failed case too
                report(case.__name__, False, f"script error: {e!r}")
        if "--slow" in sys.argv:
            case_memory(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = RESULTS.count(False)
    print(f"{len(RESULTS) - failed} of {len(RESULTS)} cases ok")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
