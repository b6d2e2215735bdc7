"""Check that every row of key.csv points at exactly its text in the transcript.

Run from anywhere: python bench/data/redact_blind/verify_key.py
"""
import csv
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = {"phone", "email", "nino", "nhs", "postcode", "person_speaker", "person_selfintro",
         "person_titled", "person_passing", "person_part", "decoy"}


def nhs_ok(digits):
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def main():
    cache, bad = {}, 0
    with open(os.path.join(HERE, "key.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        path = os.path.join(HERE, r["file"])
        if path not in cache:
            with open(path, encoding="utf-8", newline="") as g:
                cache[path] = g.read()
            assert "\r" not in cache[path], path
        s, a, b = cache[path], int(r["start"]), int(r["end"])
        problems = []
        if s[a:b] != r["text"]:
            problems.append("offset text %r" % s[a:b])
        if r["kind"] not in KINDS:
            problems.append("kind")
        if r["must_redact"] != ("0" if r["kind"] == "decoy" else "1"):
            problems.append("must_redact")
        if r["kind"] == "nhs":
            d = re.sub(r"\D", "", r["text"])
            if len(d) != 10 or not nhs_ok(d):
                problems.append("nhs check digit")
        if problems:
            bad += 1
            print("BAD", r, problems)
    print("%d rows, %d bad" % (len(rows), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
