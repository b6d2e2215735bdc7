"""Generate planted.txt: an interview transcript with planted personal data (deterministic).

Markup: ``[[KIND:value]]`` marks a planted item (KIND in PERSON, EMAIL, PHONE, NINO, NHS,
POSTCODE) and ``[[NOT:value]]`` a look-alike that must not be redacted. The tests strip the
markup, keep the gold spans and read the plain text with the project's reader. All values are
invented: example.org/.com addresses, Ofcom drama phone ranges, NHS numbers with the unissued
999 prefix, HMRC's specimen-style NI numbers.

Run: python tests/data/redact/make_planted.py > tests/data/redact/planted.txt
"""
import itertools
import random

rnd = random.Random(7)


def nhs(prefix9):
    total = sum(int(d) * w for d, w in zip(prefix9, range(10, 1, -1)))
    c = 11 - total % 11
    c = 0 if c == 11 else c
    return None if c == 10 else prefix9 + str(c)


nhs_numbers = []
while len(nhs_numbers) < 40:
    n = nhs("999" + "".join(rnd.choice("0123456789") for _ in range(6)))
    if n:
        nhs_numbers.append(n)
nhs_fmt = [f"{n[:3]} {n[3:6]} {n[6:]}" if i % 3 else (n if i % 2 else f"{n[:3]}-{n[3:6]}-{n[6:]}")
           for i, n in enumerate(nhs_numbers)]

first = "ABCEGHJKLMNOPRSTWXYZ"
second = "ABCEGHJKLMNPRSTWXYZ"
ninos = []
while len(ninos) < 40:
    p = rnd.choice(first) + rnd.choice(second)
    if p in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        continue
    d = "".join(rnd.choice("0123456789") for _ in range(6))
    s = rnd.choice("ABCD")
    ninos.append(f"{p} {d[:2]} {d[2:4]} {d[4:]} {s}" if len(ninos) % 2 else f"{p}{d}{s}")

areas = ["SW", "M", "B", "LS", "EH", "CF", "BT", "NE", "BS", "CR", "G", "L", "NG", "OX", "CB",
         "PL", "SA", "YO", "DN", "EC"]
units = "ABDEFGHJLNPQRSTUWXYZ"
postcodes = []
for i in range(40):
    a = areas[i % len(areas)]
    dist = str(rnd.randint(1, 29)) if a not in ("EC", "SW") else rnd.choice(["1A", "1V", "2", "3"])
    postcodes.append(f"{a}{dist} {rnd.randint(0, 9)}{rnd.choice(units)}{rnd.choice(units)}")

phones = []
for i in range(40):
    k = i % 8
    m = f"{rnd.randint(0, 999):03d}"
    if k == 0:
        phones.append(f"07700 900{m}")
    elif k == 1:
        phones.append(f"07700900{m}")
    elif k == 2:
        phones.append(f"+44 7700 900 {m}")
    elif k == 3:
        phones.append(f"0117 496 0{m}")
    elif k == 4:
        phones.append(f"020 7946 0{m}")
    elif k == 5:
        phones.append(f"+44 (0)113 496 0{m}")
    elif k == 6:
        phones.append(f"(0161) 496 0{m}")
    else:
        phones.append(f"0300 {rnd.randint(100, 999)} {rnd.randint(1000, 9999)}")

users = ["tom.brennan", "f.gallagher", "data.sharing", "priya.shah", "igteam", "m.webb",
         "research-office", "helen_okonkwo", "dpo", "access.requests"]
domains = ["example.org", "example.com", "dept.example.gov.uk", "trust.example.nhs.uk",
           "example.ac.uk"]
emails = [f"{users[i % len(users)]}{'' if i < 10 else i}@{domains[i % len(domains)]}"
          for i in range(40)]

# People: (mention, how it can be found)
people_mentions = itertools.cycle([
    "Dr Smith", "Professor Jane Doe", "Ms Carey", "Mr Keith", "Tom Brennan", "Brennan",
    "Fiona Gallagher", "Dr Aisha Rahman", "Marcus Webb", "Helen Okonkwo", "Priya",
    "Gareth Llewellyn", "Professor Doe", "Cllr Boateng", "Daniel Price", "Mrs Evans",
    "Rachel Lin", "Siobhan Kelly", "Webb", "Alex",
])

looks = itertools.cycle([
    "2019-2021", "Section 251", "DS-2023-0417", "4010232138", "1998 to 2003",
    "Article 6(1)(e)", "ISO 27001", "version 3.2.1", "NHS England", "Data Protection Act 2018",
    "8 per cent", "ONS", "Interviewer", "Digital Economy Act", "SQL Server 2016",
])

templates = {
    "EMAIL": ["You can send it to {} and it gets picked up the same day.",
              "Honestly the quickest route is just to email {} directly.",
              "The form says to write to {}, um, which nobody reads."],
    "PHONE": ["If it's urgent you ring {} and ask for the duty analyst.",
              "Her number's {}, I think, or it was last year.",
              "We put {} on the consent leaflet, which in hindsight was a mistake."],
    "NINO": ["One applicant actually put their National Insurance number, {}, in the free text.",
             "We found {} sitting in a spreadsheet that had been emailed round.",
             "The matching used NI numbers like {} where we had them."],
    "NHS": ["The test record had NHS number {}, and it still didn't link.",
            "Someone pasted {} into the ticket, which is exactly what you don't want.",
            "So the patient with {} appears twice, you see, with different dates of birth."],
    "POSTCODE": ["The office is at {}, next to the station.",
                 "We had a pilot in {} and it went really well.",
                 "Her return address was {}, so we knew which authority it was."],
    "PERSON": ["I spoke to {} about it last week.",
               "{} was brilliant on the governance side.",
               "And then {} said, well, why don't we just publish the register?",
               "You'd want to talk to {}, really, not me."],
    "NOT": ["That was the {} period, roughly.", "We rely on {} for a lot of it.",
            "The dataset is {} in the catalogue.", "It's referenced under {}."],
}

streams = {"EMAIL": iter(emails), "PHONE": iter(phones), "NINO": iter(ninos),
           "NHS": iter(nhs_fmt), "POSTCODE": iter(postcodes), "PERSON": people_mentions,
           "NOT": looks}
counts = {"EMAIL": 40, "PHONE": 40, "NINO": 40, "NHS": 40, "POSTCODE": 40, "PERSON": 28,
          "NOT": 24}
queue = []
for kind, n in counts.items():
    for i in range(n):
        tpl = templates[kind][i % len(templates[kind])]
        queue.append(tpl.format(f"[[{kind}:{next(streams[kind])}]]"))
rnd.shuffle(queue)

questions = [
    "Can you tell me a bit more about how that works in practice?",
    "And who else is involved in that?",
    "How do people usually get hold of you?",
    "What happens to the data after that?",
    "Is that written down anywhere?",
    "Right. And where does that leave the public side of it?",
]
print("[[PERSON:Alex Morgan]]: Thanks for making the time, [[PERSON:Priya]]. "
      "Is it all right if I record this?\n")
print("[[PERSON:Priya Shah]]: Yes, of course. Hello, [[PERSON:Alex]].\n")
i = 0
q = 0
while i < len(queue):
    chunk = queue[i:i + 4]
    i += 4
    print(f"[[PERSON:Alex Morgan]]: {questions[q % len(questions)]}\n")
    q += 1
    print("[[PERSON:Priya Shah]]: " + " ".join(chunk) + "\n")
print("[[PERSON:Alex Morgan]]: That's really helpful. Thank you, [[PERSON:Ms Shah]].\n")
print("[[PERSON:Priya Shah]]: No problem at all.")
