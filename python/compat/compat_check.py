"""Compare a run of Python execnet's own tests on execnet_rs with
python/COMPAT.md (and, if given, with a run on Python execnet itself).

    python compat_check.py COMPAT.md OURS.xml [THEIRS.xml] [--unlisted FILE]

OURS.xml and THEIRS.xml are pytest --junitxml reports. COMPAT.md lists the
tests that may fail on execnet_rs, one per line as
``- `FILE::[CLASS::]TEST` ...``, parameters left out (a listed test covers
all its parametrizations). Prints the counts of each run and exits 1 when a
test fails on execnet_rs that COMPAT.md does not list, or when a listed
test no longer fails (the list must stay true), or when no test ran.
With ``--unlisted FILE``, the ids of failing tests not listed are written
there too (one per line, for a second try: some of execnet's tests race).
"""

import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter


def outcomes(path):
    """{test id: outcome} with outcome passed/failed/skipped (xfail and
    xpass count as skipped and passed, as pytest's summary does not)."""
    result = {}
    for case in ET.parse(path).iter("testcase"):
        classname = case.get("classname", "")
        parts = classname.split(".")
        # classname is the module path with dots, then the class, if any
        module_parts = [p for p in parts if p]
        cls = None
        if module_parts and module_parts[-1][:1].isupper():
            cls = module_parts.pop()
        if module_parts[:1] == ["testing"]:  # the sdist's root is pytest's rootdir
            module_parts = module_parts[1:]
        test_file = "/".join(module_parts) + ".py"
        test_id = "%s::%s%s" % (test_file, cls + "::" if cls else "", case.get("name"))
        kinds = {child.tag for child in case}
        if "failure" in kinds or "error" in kinds:
            outcome = "failed"
        elif "skipped" in kinds:
            outcome = "skipped"
        else:
            outcome = "passed"
        result[test_id] = outcome
    return result


def base(test_id):
    """The test id without its parameters."""
    return re.sub(r"\[.*\]$", "", test_id)


def listed(compat_md):
    with open(compat_md, encoding="utf-8") as f:
        return {m.group(1) for m in re.finditer(r"^- `([^`]+::[^`]+)`", f.read(), re.M)}


def summary(name, results):
    counts = Counter(results.values())
    return "%s: %d tests, %d passed, %d failed, %d skipped" % (
        name, len(results), counts["passed"], counts["failed"], counts["skipped"])


def main():
    args = sys.argv[1:]
    unlisted_out = None
    if "--unlisted" in args:
        i = args.index("--unlisted")
        unlisted_out = args[i + 1]
        del args[i:i + 2]
    compat_md, ours_xml = args[:2]
    theirs_xml = args[2] if len(args) > 2 else None
    ours = outcomes(ours_xml)
    allowed = listed(compat_md)
    failed = {t for t, o in ours.items() if o == "failed"}
    failed_bases = Counter(base(t) for t in failed)
    print(summary("execnet's tests on execnet_rs", ours))
    listed_failures = sum(n for b, n in failed_bases.items() if b in allowed)
    print("  of the failures, %d (in %d tests) are listed in python/COMPAT.md"
          % (listed_failures, len(set(failed_bases) & allowed)))
    if theirs_xml:
        theirs = outcomes(theirs_xml)
        print(summary("execnet's tests on Python execnet", theirs))
        only_theirs = sorted(t for t, o in theirs.items() if o == "failed")
        for t in only_theirs:
            print("  fails on Python execnet too: %s" % t)
    bad = False
    unlisted = sorted(t for t in failed if base(t) not in allowed)
    for t in unlisted:
        print("FAILS and is not in COMPAT.md: %s" % t)
        bad = True
    if unlisted_out:
        with open(unlisted_out, "w") as f:
            f.write("".join(t + "\n" for t in unlisted))
    ran_bases = {base(t) for t, o in ours.items() if o != "skipped"}
    stale = sorted(b for b in allowed if b in ran_bases and b not in failed_bases)
    for b in stale:
        print("listed in COMPAT.md but passes now: %s" % b)
        bad = True
    if not ours:
        print("no test ran")
        bad = True
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
