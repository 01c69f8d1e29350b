#!/usr/bin/env python3
"""Summarize the verbose output of libiscsi's iscsi-test-cu (CUnit "basic" mode, -v).

  summarize_conformance.py LOG [--tests] [--require SUITE,SUITE,...]
  summarize_conformance.py --compare LABEL1=LOG1 LABEL2=LOG2 [--require ...]

Every test gets exactly one outcome:
  PASS  CUnit's verdict was "passed" and the test printed no [SKIPPED] line
  SKIP  CUnit's verdict was "passed" but the test printed [SKIPPED] (CUnit itself
        counts these as passed; we do not)
  FAIL  CUnit's verdict was "FAILED", or the run ended before the test got a verdict
        (suite killed by a timeout, or the tool crashed)

How the log looks, and how it is read: each test starts with "  Test: NAME ..." and its
verdict is the first bare word "passed" or "FAILED" (not "[FAILED]", which is a message the
test printed) that stands either right after the "..." or at the start of a line. Text after
the verdict on the same line (seen after LUNReset: "...passed    [FAILED] PRIN ...") is
cleanup output and does not change the verdict. Suites are reported by name; a name run more
than once (the ALL, SCSI and LINUX families repeat the same suites) is added up in one row.

Prints a per-suite table and then 'N passed, N failed, N skipped'. With --compare the tables
of two runs are printed side by side and the closing line is that of the first run.
Exit status: 0, or 1 when --require names a suite that has a failed test or never ran, or
when the number of failures disagrees with CUnit's own "Run Summary" (the log was misread).
"""
import re
import sys
from collections import OrderedDict

VERDICT_AT_START = re.compile(r"^(passed|FAILED)\b")
VERDICT_LINE = re.compile(r"^(passed|FAILED)\b")
TEST_START = re.compile(r"^\s+Test: (\S+) \.\.\.(.*)$")
SUITE_START = re.compile(r"^Suite: (\S+)")
SUMMARY_TESTS = re.compile(r"^\s+tests\s+(\d+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(\d+)")


class Result:
    def __init__(self):
        self.tests = []            # (suite, test, outcome, first message)
        self.cunit_failed = None   # from "Run Summary", None when the run never got there
        self.cunit_ran = None


def parse(text):
    res = Result()
    suite = "?"
    cur = None   # dict(suite, test, msgs)

    def close(verdict):
        nonlocal cur
        msgs = cur["msgs"]
        if verdict == "FAILED":
            outcome = "FAIL"
        elif verdict is None:
            outcome = "FAIL"
            msgs = ["no verdict: the run ended inside this test"] + msgs
        elif any("[SKIPPED]" in m for m in msgs):
            outcome = "SKIP"
        else:
            outcome = "PASS"
        note = ""
        for m in msgs:
            if "[FAILED]" in m or "[SKIPPED]" in m or m.startswith("no verdict"):
                note = m.strip()
                break
        res.tests.append((cur["suite"], cur["test"], outcome, note))
        cur = None

    for line in text.splitlines():
        m = SUMMARY_TESTS.match(line)
        if m:
            res.cunit_ran = int(m.group(2))
            res.cunit_failed = int(m.group(4))
            continue
        m = SUITE_START.match(line)
        if m:
            if cur is not None:
                close(None)
            suite = m.group(1)
            continue
        m = TEST_START.match(line)
        if m:
            if cur is not None:
                close(None)
            cur = {"suite": suite, "test": m.group(1), "msgs": []}
            rest = m.group(2)
            v = VERDICT_AT_START.match(rest)
            if v:
                close(v.group(1))      # whatever follows on the line is cleanup output
            elif rest.strip():
                cur["msgs"].append(rest)
            continue
        if cur is None:
            continue
        v = VERDICT_LINE.match(line)
        if v:
            close(v.group(1))
        else:
            cur["msgs"].append(line)
    if cur is not None:
        close(None)
    return res


def per_suite(res):
    suites = OrderedDict()
    for s, _t, o, _n in res.tests:
        suites.setdefault(s, {"PASS": 0, "SKIP": 0, "FAIL": 0})[o] += 1
    return suites


def totals(suites):
    return {k: sum(c[k] for c in suites.values()) for k in ("PASS", "SKIP", "FAIL")}


def consistency_errors(label, res):
    errs = []
    if res.cunit_failed is None:
        errs.append(f"{label}: no CUnit 'Run Summary' in the log (the run was cut short)")
    else:
        ours = sum(1 for t in res.tests if t[2] == "FAIL")
        if ours != res.cunit_failed:
            errs.append(f"{label}: counted {ours} failed tests but CUnit reports {res.cunit_failed}")
        if res.cunit_ran is not None and res.cunit_ran != len(res.tests):
            errs.append(f"{label}: counted {len(res.tests)} tests but CUnit ran {res.cunit_ran}")
    return errs


def check_required(label, suites, required):
    errs = []
    for s in required:
        if s not in suites:
            errs.append(f"{label}: required suite {s} did not run")
        elif suites[s]["FAIL"]:
            errs.append(f"{label}: required suite {s} has {suites[s]['FAIL']} failed test(s)")
    return errs


def main(argv):
    args = list(argv)
    show_tests = "--tests" in args
    if show_tests:
        args.remove("--tests")
    required = []
    if "--require" in args:
        i = args.index("--require")
        required = [s for s in args[i + 1].split(",") if s]
        del args[i:i + 2]
    compare = "--compare" in args
    if compare:
        args.remove("--compare")
    if not args or (compare and len(args) != 2):
        print(__doc__)
        return 2

    runs = []   # (label, Result, suites)
    for a in args:
        label, path = (a.split("=", 1) if compare and "=" in a else ("run", a))
        with open(path, errors="replace") as f:
            res = parse(f.read())
        runs.append((label, res, per_suite(res)))

    names = []
    for _l, _r, suites in runs:
        for s in suites:
            if s not in names:
                names.append(s)
    req_mark = lambda s: "*" if s in required else " "
    head = f"{'suite':28}  " + "  ".join(f"{l[:17]:>17}" for l, _r, _s in runs)
    sub = f"{'':28}  " + "  ".join(f"{'pass skip fail':>17}" for _ in runs)
    print(head)
    print(sub)
    for s in names:
        cells = []
        for _l, _r, suites in runs:
            c = suites.get(s)
            cells.append(f"{c['PASS']:6}{c['SKIP']:5}{c['FAIL']:5} " if c else f"{'-':>17}")
        print(f"{req_mark(s)}{s:27}  " + "  ".join(cells))
    if required:
        print("(* = suite that must have no failed test)")
    for label, res, suites in runs:
        t = totals(suites)
        print(f"{label}: {t['PASS']} passed, {t['FAIL']} failed, {t['SKIP']} skipped")
    if show_tests:
        for label, res, _s in runs:
            for s, t, o, note in res.tests:
                print(f"{label} {o} {s}.{t}" + (f"  {note}" if note else ""))

    errs = []
    for label, res, suites in runs:
        errs += consistency_errors(label, res)
        if label == runs[0][0]:
            errs += check_required(label, suites, required)
    for label, res, _s in runs[:1]:
        for s, t, o, note in res.tests:
            if o == "FAIL" and s in required:
                print(f"FAILED {s}.{t}  {note}")
    for e in errs:
        print("ERROR: " + e)
    t = totals(runs[0][2])
    print(f"{t['PASS']} passed, {t['FAIL']} failed, {t['SKIP']} skipped")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
