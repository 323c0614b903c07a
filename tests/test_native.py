"""The C side of the event-segment contract (native/) against its Python mirror
(focuslake/events.py), byte for byte, in both directions.

Builds native/ once per session with `make -C native`; fails (does not skip) without `cc`.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from focuslake import events as ev
from focuslake.events import EVENT_DTYPE, FOOTER_DTYPE, HEADER_DTYPE, EventType, SegmentError
from focuslake.segments import EventSegmentWriter

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "native"
BUILD = NATIVE / "build"
FOCUS_SEG = BUILD / "focus-seg"
FOCUS_BENCH = BUILD / "focus-bench"
CONSENT = ev.FLAG_KEY_IDENTITY_CONSENT
T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z; 40 s left in its 60 s window

pytestmark = pytest.mark.timeout(60)


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="session")
def native_build() -> Path:
    for tool in ("cc", "make"):
        if shutil.which(tool) is None:
            pytest.fail(f"`{tool}` not found on PATH: the native tests need a C toolchain "
                        "(e.g. apt-get install gcc make)", pytrace=False)
    r = subprocess.run(["make", "-C", str(NATIVE)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.fail(f"`make -C native` failed ({r.returncode}):\n{r.stdout}\n{r.stderr}",
                    pytrace=False)
    for exe in (FOCUS_SEG, FOCUS_BENCH, BUILD / "libfocussegment.a"):
        assert exe.is_file(), f"make -C native did not produce {exe}"
    return BUILD


def compile_c(tmp_path: Path, name: str, source: str, *, link_lib: bool = False) -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    exe = tmp_path / name
    cmd = ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-pthread",
           f"-I{NATIVE / 'include'}", "-o", str(exe), str(src)]
    if link_lib:
        cmd.append(str(BUILD / "libfocussegment.a"))
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, f"compiling {name}.c failed:\n{r.stderr}"
    return exe


# ------------------------------------------------------------------------------ records

NAME_31 = b"com.example.VeryLongAppName.31c"
assert len(NAME_31) == 31

# (event_type, app_name bytes, d0, d1, d2); d0/d1 may be negative (two's complement words)
SAMPLES = [
    (EventType.UNKNOWN, b"", 0, 0, 0),
    (EventType.KEY_PRESS, b"gnome-terminal", 65, 30, 1),
    (EventType.KEY_RELEASE, b"gnome-terminal", 65, 30, 0),
    (EventType.MOUSE_MOVE, b"firefox", -1920, -1080, 1234),
    (EventType.MOUSE_CLICK, "Café".encode(), -5, 7, 1),
    (EventType.MOUSE_WHEEL, "日本語エディタ".encode(), 0, -120, 0),
    (EventType.WINDOW_FOCUS_CHANGE, NAME_31, 0x4000001, 0x4000002, 3),
    (EventType.WINDOW_TITLE_CHANGE, "🎧Spotify".encode(), 0x4000002, 0x4000002, 0),
    (EventType.WINDOW_MINIMIZE, b"code", 0, 0, 0),
    (EventType.WINDOW_MAXIMIZE, b"code", 0, 0, 0),
    (EventType.IDLE_START, b"-", 300_000, 0, 0),           # a name that *is* a dash
    (EventType.IDLE_END, b"My App\\v2", 300_000, 0, 0),     # space and backslash: escaped
    (EventType.SCREEN_LOCK, b"", 0, 0, 0),
    (EventType.SCREEN_UNLOCK, b"", 0, 0, 0),
    (EventType.RESERVED_14, b"x", -(2**31), 2**31 - 1, 2**32 - 1),
    (EventType.RESERVED_15, "Ωmega".encode(), -1, 2**32 - 1, 123),  # d1 given unsigned
]


def make_records(samples=SAMPLES, t0: int = T0) -> np.ndarray:
    recs = np.zeros(len(samples), dtype=EVENT_DTYPE)
    for i, (etype, name, d0, d1, d2) in enumerate(samples):
        recs[i]["timestamp_us"] = t0 + i * 1_000
        recs[i]["event_type"] = int(etype)
        recs[i]["process_id"] = 4242 + i
        recs[i]["app_name"] = name
        recs[i]["window_handle"] = 0x4000000 + i
        recs[i]["data"] = [d0 & 0xFFFFFFFF, d1 & 0xFFFFFFFF, d2]
    return recs


def zero_key_codes(recs: np.ndarray) -> np.ndarray:
    out = recs.copy()
    keys = np.isin(out["event_type"], ev.KEY_TYPES)
    out["data"][keys, 0] = 0
    out["data"][keys, 1] = 0
    return out


def test_sample_records_cover_the_contract():
    recs = make_records()
    assert set(recs["event_type"].tolist()) == {t.value for t in EventType}
    signed = recs["data"][:, :2].astype(np.uint32).view(np.int32)
    assert (signed < 0).any(), "need negative mouse coordinates"
    names = [bytes(n) for n in recs["app_name"]]
    assert NAME_31 in names
    assert any(any(b >= 0x80 for b in n) for n in names), "need UTF-8 app names"


# ------------------------------------------------------------------------------ text format

def esc_name(name: bytes) -> bytes:
    if not name:
        return b"-"
    if name == b"-":
        return b"\\x2d"
    return b"".join(b"\\x%02x" % c if c <= 0x20 or c in (0x5C, 0x7F) else bytes([c]) for c in name)


def unesc_name(tok: bytes) -> bytes:
    if tok == b"-":
        return b""
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), tok)


def to_lines(recs: np.ndarray, *, signed_words: bool = True) -> bytes:
    out = []
    for r in recs:
        d0, d1, d2 = (int(x) for x in r["data"])
        if signed_words:
            d0, d1 = as_int32(d0), as_int32(d1)
        out.append(b"%d %d %d %s %d %d %d %d" % (
            int(r["timestamp_us"]), int(r["event_type"]), int(r["process_id"]),
            esc_name(bytes(r["app_name"])), int(r["window_handle"]), d0, d1, d2))
    return b"\n".join(out) + b"\n"


def parse_dump(out: bytes):
    lines = out.split(b"\n")
    assert lines[-1] == b"", "dump output must end with a newline"
    lines = lines[:-1]
    m = re.fullmatch(rb"header version=(\d+) record_size=(\d+) flags=(\d+) created_us=(\d+) "
                     rb"user_id=(\S+) device_id=(\S+)", lines[0])
    assert m, lines[0]
    header = (int(m[1]), int(m[2]), int(m[3]), int(m[4]), unesc_name(m[5]), unesc_name(m[6]))
    f = re.fullmatch(rb"footer count=(\d+) crc32=0x([0-9a-f]{8})", lines[-1])
    assert f, lines[-1]
    rows = []
    for line in lines[1:-1]:
        t = line.split(b" ")
        assert len(t) == 8, line
        rows.append((int(t[0]), int(t[1]), int(t[2]), unesc_name(t[3]), int(t[4]),
                     int(t[5]), int(t[6]), int(t[7])))
    return header, rows, int(f[1]), int(f[2], 16)


def as_int32(word: int) -> int:
    return word - (1 << 32) if word >= 1 << 31 else word


def expected_rows(recs: np.ndarray):
    rows = []
    for r in recs:
        d0, d1, d2 = (int(x) for x in r["data"])
        s = as_int32
        rows.append((int(r["timestamp_us"]), int(r["event_type"]), int(r["process_id"]),
                     bytes(r["app_name"]), int(r["window_handle"]), s(d0), s(d1), d2))
    return rows


def run_seg(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(FOCUS_SEG), *map(str, args)], input=stdin, capture_output=True,
                          timeout=30, check=False)


def c_write(out: Path, recs: np.ndarray, *, user="alice", device="laptop-1", flags=0,
            created_us=T0 - 5, signed_words=True) -> subprocess.CompletedProcess:
    return run_seg("write", "--user", user, "--device", device, "--flags", flags,
                   "--created-us", created_us, out, stdin=to_lines(recs, signed_words=signed_words))


def assert_records_equal(got: np.ndarray, want: np.ndarray):
    assert got.dtype == EVENT_DTYPE and len(got) == len(want)
    for name in EVENT_DTYPE.names:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"field {name}")


# ------------------------------------------------------------------------------ layout

def test_c_struct_layout_equals_numpy_dtypes(native_build, tmp_path):
    prog = ['#include <stdio.h>', '#include <stddef.h>', '#include "focus_event.h"',
            'int main(void) {']
    for struct, dtype in (("Event", EVENT_DTYPE), ("SegmentHeader", HEADER_DTYPE),
                          ("SegmentFooter", FOOTER_DTYPE)):
        prog.append(f'  printf("{struct}.sizeof %zu\\n", sizeof({struct}));')
        for field in dtype.names:
            prog.append(f'  printf("{struct}.{field} %zu %zu\\n", offsetof({struct}, {field}), '
                        f'sizeof((({struct} *)0)->{field}));')
    prog += ['  return 0;', '}']
    exe = compile_c(tmp_path, "layout", "\n".join(prog) + "\n")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    got = {}
    for line in out.splitlines():
        key, *nums = line.split()
        got[key] = tuple(int(n) for n in nums)
    for struct, dtype in (("Event", EVENT_DTYPE), ("SegmentHeader", HEADER_DTYPE),
                          ("SegmentFooter", FOOTER_DTYPE)):
        assert got[f"{struct}.sizeof"] == (dtype.itemsize,), struct
        for field in dtype.names:
            fdtype, offset = dtype.fields[field][:2]
            assert got[f"{struct}.{field}"] == (offset, fdtype.itemsize), f"{struct}.{field}"
    assert got["Event.sizeof"] == (64,) and got["SegmentHeader.sizeof"] == (64,)
    assert got["SegmentFooter.sizeof"] == (16,)


def test_c_crc32_equals_zlib(native_build, tmp_path):
    """focus_crc32 is chainable like zlib.crc32 for every length and split (all code paths
    of the 8-byte-at-a-time loop and the byte tail)."""
    exe = compile_c(tmp_path, "crc", r'''
#include <stdio.h>
#include "focus_segment.h"
int main(void) {
    static unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, stdin);
    for (size_t len = 0; len <= n; len++) {
        size_t cut = len / 3;
        uint32_t whole = focus_crc32(0, buf, len);
        uint32_t chained = focus_crc32(focus_crc32(0, buf, cut), buf + cut, len - cut);
        printf("%zu %08x %08x\n", len, (unsigned)whole, (unsigned)chained);
    }
    return 0;
}
''', link_lib=True)
    data = np.random.default_rng(7).integers(0, 256, 300, dtype=np.uint8).tobytes()
    out = subprocess.run([str(exe)], input=data, capture_output=True, check=True).stdout.decode()
    lines = out.splitlines()
    assert len(lines) == len(data) + 1
    for line in lines:
        n, whole, chained = line.split()
        n = int(n)
        want = zlib.crc32(data[:n])
        assert int(whole, 16) == want, f"length {n}"
        assert int(chained, 16) == want, f"length {n} chained"


# ------------------------------------------------------------------------------ C -> Python

@pytest.mark.parametrize("flags", [CONSENT, 0])
@pytest.mark.parametrize("signed_words", [True, False], ids=["signed", "unsigned"])
def test_c_write_python_reads_identical_bytes(native_build, tmp_path, flags, signed_words):
    recs = make_records()
    out = tmp_path / "seg.bin"
    r = c_write(out, recs, flags=flags, signed_words=signed_words)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b"" and r.stderr == b""
    assert sorted(os.listdir(tmp_path)) == ["seg.bin"]

    want = recs if flags & CONSENT else zero_key_codes(recs)
    header, got = ev.read_segment(out)
    assert header == ev.SegmentHeader(1, 64, flags, T0 - 5, "alice", "laptop-1")
    assert_records_equal(got, want)
    assert out.read_bytes() == ev.encode_segment(want, "alice", "laptop-1", T0 - 5, flags)


def test_c_write_empty_segment(native_build, tmp_path):
    out = tmp_path / "empty.bin"
    r = run_seg("write", "--user", "u", "--device", "d", "--created-us", 1, out, stdin=b"")
    assert r.returncode == 0, r.stderr.decode()
    assert out.read_bytes() == ev.encode_segment(ev.make_records(0), "u", "d", 1)


# ------------------------------------------------------------------------------ Python -> C

@pytest.mark.parametrize("flags", [CONSENT, 0])
def test_python_encode_c_dump_identical_values(native_build, tmp_path, flags):
    recs = make_records()  # encode_segment stores exactly what it is given
    data = ev.encode_segment(recs, "bob_2", "desk.top-9", 123456789, flags)
    path = tmp_path / "py.bin"
    path.write_bytes(data)
    r = run_seg("dump", path)
    assert r.returncode == 0, r.stderr.decode()
    header, rows, count, crc = parse_dump(r.stdout)
    assert header == (1, 64, flags, 123456789, b"bob_2", b"desk.top-9")
    assert rows == expected_rows(recs)
    assert count == len(recs)
    assert crc == zlib.crc32(data[64:-16])


def test_event_segment_writer_c_dump_identical_values(native_build, tmp_path):
    recs = make_records()
    w = EventSegmentWriter(tmp_path / "landing", "carol", "pc-01", durable=False)
    w.write_records(recs)
    final = w.seal()
    assert final is not None and len(w.sealed) == 1
    r = run_seg("dump", final)
    assert r.returncode == 0, r.stderr.decode()
    header, rows, count, crc = parse_dump(r.stdout)
    assert header == (1, 64, 0, T0, b"carol", b"pc-01")
    want = zero_key_codes(recs)  # no consent flag: the Python writer zeroes key codes too
    assert rows == expected_rows(want)
    assert any(row[1] == EventType.KEY_PRESS and row[5:7] == (0, 0) for row in rows)
    assert count == len(recs)
    assert crc == zlib.crc32(want.tobytes())


def test_dump_then_write_reproduces_the_file(native_build, tmp_path):
    """The text format is lossless: random records (any app_name bytes, including a full
    32-byte name with no NUL, embedded NULs, control bytes) survive dump -> write byte-exactly."""
    rng = np.random.default_rng(2024)
    n = 300
    raw = rng.integers(0, 256, (n, 64), dtype=np.uint8)
    recs = raw.view(EVENT_DTYPE).reshape(n).copy()
    recs["timestamp_us"] = T0 + np.arange(n) * 997
    names = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    lengths = rng.integers(0, 33, n)
    lengths[:3] = (32, 31, 0)
    names[np.arange(32)[None, :] >= lengths[:, None]] = 0  # NUL-pad after the length
    recs["app_name"] = names.view("S32").reshape(n)
    data = ev.encode_segment(recs, "r", "d", 99, CONSENT)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    dump = run_seg("dump", src)
    assert dump.returncode == 0, dump.stderr.decode()
    body = b"".join(line + b"\n" for line in dump.stdout.split(b"\n")[1:-2])
    out = tmp_path / "again.bin"
    r = run_seg("write", "--user", "r", "--device", "d", "--flags", CONSENT, "--created-us", 99,
                out, stdin=body)
    assert r.returncode == 0, r.stderr.decode()
    assert out.read_bytes() == data


# ------------------------------------------------------------------------------ privacy

def test_key_codes_zeroed_without_consent_kept_with_it(native_build, tmp_path):
    samples = [(EventType.KEY_PRESS, b"term", 65, 30, 1),
               (EventType.KEY_RELEASE, b"term", 0xFFFF, 0x1E, 2),
               (EventType.MOUSE_MOVE, b"term", 65, 30, 1)]  # not a key: data untouched
    recs = make_records(samples)
    for flags, want in ((0, [[0, 0, 1], [0, 0, 2], [65, 30, 1]]),
                        (CONSENT, [[65, 30, 1], [0xFFFF, 0x1E, 2], [65, 30, 1]]),
                        (CONSENT | 0x80, [[65, 30, 1], [0xFFFF, 0x1E, 2], [65, 30, 1]]),
                        (0x80, [[0, 0, 1], [0, 0, 2], [65, 30, 1]])):
        out = tmp_path / f"keys-{flags}.bin"
        r = c_write(out, recs, flags=flags)
        assert r.returncode == 0, r.stderr.decode()
        header, got = ev.read_segment(out)
        assert header.flags == flags
        assert got["data"].tolist() == want, f"flags={flags:#x}"
        raw = out.read_bytes()[64:-16]
        if not flags & CONSENT:  # the codes are not anywhere on disk
            assert (65).to_bytes(4, "little") + (30).to_bytes(4, "little") not in raw[:128]


# ------------------------------------------------------------------------------ invalid files

def _valid_segment() -> bytes:
    return ev.encode_segment(make_records(), "alice", "laptop-1", T0, CONSENT)


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


def _flip(data: bytes, offset: int) -> bytes:
    return _patch(data, offset, bytes([data[offset] ^ 0x01]))


CORRUPTIONS = {
    "truncated_mid_record": (lambda d: d[:-40], "truncated"),
    "truncated_tiny": (lambda d: d[:50], "truncated"),
    "header_only": (lambda d: d[:64], "truncated"),
    "header_and_a_bit": (lambda d: d[:79], "truncated"),
    "empty_file": (lambda d: b"", "truncated"),
    "flipped_record_byte": (lambda d: _flip(d, 64 + 5 * 64 + 17), "bad_checksum"),
    "flipped_crc_byte": (lambda d: _flip(d, len(d) - 12), "bad_checksum"),
    # A writer that died before sealing leaves header + whole records and no footer; the
    # 16 bytes it lacks make the record area a non-multiple of 64, so decode_segment (and
    # the C reader, which mirrors it) reports "truncated" ("... or footer missing").
    "no_footer": (lambda d: d[:-16], "truncated"),
    # A footer-sized tail that is not a footer (zero-filled after a crash, or overwritten).
    "footer_zeroed": (lambda d: d[:-16] + bytes(16), "missing_footer"),
    "footer_magic_corrupt": (lambda d: _patch(d, len(d) - 16, b"FENX"), "missing_footer"),
    "bad_magic": (lambda d: _patch(d, 0, b"FOCUSEVX"), "bad_magic"),
    "count_mismatch": (lambda d: _patch(d, len(d) - 8, (99).to_bytes(8, "little")),
                       "count_mismatch"),
    "bad_record_size": (lambda d: _patch(d, 10, (72).to_bytes(2, "little")), "bad_record_size"),
    "unsupported_version": (lambda d: _patch(d, 8, (2).to_bytes(2, "little")),
                            "unsupported_version"),
    "non_ascii_user_id": (lambda d: _patch(d, 24, "é".encode()), "bad_header"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_invalid_segment_rejected_by_c_and_python_alike(native_build, tmp_path, case):
    corrupt, reason = CORRUPTIONS[case]
    data = corrupt(_valid_segment())
    path = tmp_path / f"{case}.bin"
    path.write_bytes(data)

    with pytest.raises(SegmentError) as exc:
        ev.decode_segment(data)
    assert exc.value.reason == reason

    r = run_seg("dump", path)
    assert r.returncode == 1
    assert r.stdout == b"", "nothing may be printed for an invalid segment"
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert f"{path}: {reason}: " in err, err


def test_valid_segment_is_accepted_by_both(native_build, tmp_path):
    """Control for the corruption cases: the untouched file passes both validators."""
    data = _valid_segment()
    path = tmp_path / "ok.bin"
    path.write_bytes(data)
    ev.decode_segment(data)
    r = run_seg("dump", path)
    assert r.returncode == 0 and r.stderr == b""


def test_dump_missing_file_fails(native_build, tmp_path):
    r = run_seg("dump", tmp_path / "nope.bin")
    assert r.returncode == 1 and b"io_error" in r.stderr and r.stdout == b""


# ------------------------------------------------------------------------------ write errors

@pytest.mark.parametrize("line, message", [
    (b"1 3 1 app 1 2 3", b"expected 8 fields"),
    (b"1 3 1 app 1 2 3 4 5", b"expected 8 fields"),
    (b"x 3 1 app 1 2 3 4", b"timestamp_us"),
    (b"1 3 1 app 1 -2147483649 3 4", b"d0"),
    (b"1 3 1 app 1 2 4294967296 4", b"d1"),
    (b"1 3 1 app 1 2 3 -4", b"d2"),
    (b"1 4294967296 1 app 1 2 3 4", b"event_type"),
    (b"1 3 1 " + b"a" * 33 + b" 1 2 3 4", b"longer than 32 bytes"),
    (b"1 3 1 a\\q 1 2 3 4", b"bad escape"),
])
def test_bad_input_publishes_nothing(native_build, tmp_path, line, message):
    out = tmp_path / "bad.bin"
    good = b"1 3 1 app 1 2 3 4\n"
    r = run_seg("write", "--user", "u", "--device", "d", out, stdin=good + good + line + b"\n")
    assert r.returncode == 1
    assert b"line 3: " in r.stderr and message in r.stderr, r.stderr
    assert os.listdir(tmp_path) == [], "a failed write must leave neither OUT nor OUT.part"


def test_write_accepts_32_byte_name_and_rejects_bad_ids(native_build, tmp_path):
    out = tmp_path / "n.bin"
    name = b"b" * 32
    r = run_seg("write", "--user", "u", "--device", "d", out, stdin=b"1 3 1 " + name + b" 1 2 3 4\n")
    assert r.returncode == 0, r.stderr
    assert bytes(ev.read_segment(out)[1]["app_name"][0]) == name
    for user in ("", "-lead", "has space", "a" * 21, "é"):
        r = run_seg("write", "--user", user, "--device", "d", tmp_path / "x.bin", stdin=b"")
        assert r.returncode == 2 and b"user_id" in r.stderr, (user, r.stderr)
    assert sorted(os.listdir(tmp_path)) == ["n.bin"]


def test_write_refuses_to_replace_a_published_segment(native_build, tmp_path):
    out = tmp_path / "seg.bin"
    out.write_bytes(b"published")
    r = run_seg("write", "--user", "u", "--device", "d", out, stdin=b"1 3 1 a 1 2 3 4\n")
    assert r.returncode == 1 and b"exists" in r.stderr
    assert out.read_bytes() == b"published"
    assert sorted(os.listdir(tmp_path)) == ["seg.bin"]


# ------------------------------------------------------------------------------ .part protocol

def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_part_file_until_sealed_then_only_final(native_build, tmp_path):
    recs = make_records()
    lines = to_lines(recs).splitlines(keepends=True)
    out = tmp_path / "live.bin"
    part = tmp_path / "live.bin.part"
    p = subprocess.Popen([str(FOCUS_SEG), "write", "--user", "u", "--device", "d",
                          "--flags", str(CONSENT), "--created-us", "7", str(out)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for(part.exists), "writer never created OUT.part"
        for i, line in enumerate(lines):
            p.stdin.write(line)
            p.stdin.flush()
            if i in (0, len(lines) // 2, len(lines) - 1):
                time.sleep(0.05)  # the writer is mid-stream, blocked on stdin
                assert p.poll() is None, "writer exited before stdin closed"
                assert sorted(os.listdir(tmp_path)) == ["live.bin.part"]
        p.stdin.close()
        assert p.wait(timeout=10) == 0, p.stderr.read().decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert sorted(os.listdir(tmp_path)) == ["live.bin"]
    assert out.read_bytes() == ev.encode_segment(recs, "u", "d", 7, CONSENT)


def test_killed_writer_publishes_nothing(native_build, tmp_path):
    out = tmp_path / "dead.bin"
    p = subprocess.Popen([str(FOCUS_SEG), "write", "--user", "u", "--device", "d", str(out)],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.stdin.write(to_lines(make_records()))
        p.stdin.flush()
        assert _wait_for(lambda: (tmp_path / "dead.bin.part").exists())
        time.sleep(0.05)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        p.stdin.close()
    assert p.returncode == -signal.SIGKILL
    assert sorted(os.listdir(tmp_path)) == ["dead.bin.part"]
    with pytest.raises(SegmentError) as exc:
        ev.read_segment(tmp_path / "dead.bin.part")
    assert exc.value.reason in ("truncated", "missing_footer")


# ------------------------------------------------------------------------------ benchmark

def test_focus_bench_writes_a_valid_segment(native_build, tmp_path):
    out = tmp_path / "bench.bin"
    r = subprocess.run([str(FOCUS_BENCH), "5000", str(out)], capture_output=True, text=True,
                       timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"events=5000 seconds=(\d+\.\d+) ns_per_event=(\d+\.\d+)\n", r.stdout)
    assert m, r.stdout
    assert float(m[1]) > 0
    header, recs = ev.read_segment(out)
    assert header.user_id == "bench" and header.flags == 0 and len(recs) == 5000
    assert (np.diff(recs["timestamp_us"].astype(np.int64)) == 1000).all()
    keys = np.isin(recs["event_type"], ev.KEY_TYPES)
    assert keys.any() and (recs["data"][keys, :2] == 0).all()
    assert (recs["data"][~keys, 0] != 0).any()


@pytest.mark.parametrize("flags_arg, flags", [("0x81", 0x81), ("010", 10), ("4294967295", 2**32 - 1)])
def test_write_flags_are_decimal_or_0x_hex(native_build, tmp_path, flags_arg, flags):
    out = tmp_path / "f.bin"
    r = run_seg("write", "--user", "u", "--device", "d", "--flags", flags_arg, out, stdin=b"")
    assert r.returncode == 0, r.stderr
    assert ev.read_segment(out)[0].flags == flags


@pytest.mark.parametrize("flags_arg", ["4294967296", "-1", "0x", "1x", ""])
def test_write_rejects_bad_flags(native_build, tmp_path, flags_arg):
    r = run_seg("write", "--user", "u", "--device", "d", "--flags", flags_arg, tmp_path / "f.bin",
                stdin=b"")
    assert r.returncode == 2 and b"--flags" in r.stderr
    assert os.listdir(tmp_path) == []
