"""toolkit.policy: good files load; each bad one is a one-line ConfigurationError naming the key."""

from __future__ import annotations

import pytest

import toolkit.policy as policy_module
from toolkit.errors import ConfigurationError
from toolkit.policy import Policy, load_policy, policy_tag_warnings, save_policy

GOOD = """\
version: 1
contact_level:
  - Python
  - Do not contact
  - "2024"
never_touch: [Full-time, "Austin, TX"]
include_archived: false
skip_anonymized: true
"""


def write(tmp_path, text: str, name: str = "policy.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file(tmp_path):
    policy = load_policy(write(tmp_path, GOOD))
    assert policy.contact_level == ("Python", "Do not contact", "2024")
    assert policy.never_touch == ("Full-time", "Austin, TX")
    assert policy.include_archived is False
    assert policy.skip_anonymized is True
    assert policy.version == 1
    assert policy.source.endswith("policy.yaml")
    assert policy.decision("Python") == "contact_level"
    assert policy.decision("Full-time") == "never_touch"
    assert policy.decision("python") is None


def test_defaults_and_empty_lists(tmp_path):
    policy = load_policy(write(tmp_path, "version: 1\ncontact_level:\n"))
    assert policy == Policy()
    assert policy.include_archived is True and policy.skip_anonymized is True
    assert Policy.from_dict({}) == Policy()


def test_duplicates_in_a_list_are_kept_once():
    assert Policy.from_dict({"contact_level": ["a", "b", "a"]}).contact_level == ("a", "b")


def test_round_trip(tmp_path):
    original = load_policy(write(tmp_path, GOOD))
    path = save_policy(original, tmp_path / "sub" / "out.yaml")
    again = load_policy(path)
    assert again == original
    assert again.source == str(path)
    assert path.read_text(encoding="utf-8").startswith("# lever-tag-toolkit policy")
    unicode_policy = Policy(contact_level=("Café", "  spaced  "), never_touch=("100",))
    assert load_policy(save_policy(unicode_policy, tmp_path / "u.yaml")) == unicode_policy


def test_frozen():
    with pytest.raises(AttributeError):
        Policy().include_archived = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "key_in_message"),
    [
        ("- Python\n- Go\n", "top level"),
        ("just a string\n", "top level"),
        ("version: 1\ncontact_levels: [Python]\n", "contact_levels"),
        ("version: 1\nfoo: 1\n", "foo"),
        ("version: 2\n", "version"),
        ("version: '1'\n", "version"),
        ("version: true\n", "version"),
        ("contact_level: Python\n", "contact_level"),
        ("contact_level: {a: 1}\n", "contact_level"),
        ("contact_level: [Python, 2024]\n", "contact_level"),
        ("contact_level: [Python, null]\n", "contact_level"),
        ("never_touch: [['nested']]\n", "never_touch"),
        ("never_touch: ['']\n", "never_touch"),
        ("never_touch: ['   ']\n", "never_touch"),
        ("include_archived: 'yes please'\n", "include_archived"),
        ("include_archived: 1\n", "include_archived"),
        ("skip_anonymized: null\n", "skip_anonymized"),
        ("contact_level: [Python]\nnever_touch: [Python]\n", "never_touch"),
    ],
)
def test_bad_content(tmp_path, text, key_in_message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        load_policy(path)
    message = str(info.value)
    assert key_in_message in message
    assert str(path) in message
    assert "\n" not in message


def test_unknown_key_lists_allowed_keys_and_suggests(tmp_path):
    path = write(tmp_path, "contact_levels: [Python]\n")
    with pytest.raises(ConfigurationError, match="did you mean 'contact_level'") as info:
        load_policy(path)
    for key in policy_module.ALLOWED_KEYS:
        assert key in str(info.value)


def test_tag_in_both_lists_is_named(tmp_path):
    path = write(tmp_path, "contact_level: [Python, Go]\nnever_touch: [Go]\n")
    with pytest.raises(ConfigurationError, match=r"'Go'.*contact_level.*never_touch"):
        load_policy(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        load_policy(path)
    assert str(path) in str(info.value)
    with pytest.raises(ConfigurationError, match="directory"):
        load_policy(tmp_path)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "version: 1\ncontact_level: [Python\nnever_touch: []\n")
    with pytest.raises(ConfigurationError, match=r"YAML syntax error at line \d+") as info:
        load_policy(path)
    assert "\n" not in str(info.value)
    path = write(tmp_path, "version: 1\n  contact_level: x\n bad: [\n", "b.yaml")
    with pytest.raises(ConfigurationError, match="line"):
        load_policy(path)


def test_empty_file(tmp_path):
    with pytest.raises(ConfigurationError, match="empty"):
        load_policy(write(tmp_path, "# only a comment\n"))


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("contact_level: [Café]\n".encode("latin-1"))
    with pytest.raises(ConfigurationError, match="UTF-8"):
        load_policy(path)


def test_from_dict_uses_given_source():
    with pytest.raises(ConfigurationError, match=r"^batch\.yaml: .*include_archived"):
        Policy.from_dict({"include_archived": "no"}, source="batch.yaml")


def test_policy_tag_warnings():
    policy = Policy(
        contact_level=("python", "Boomerang", "Do not contact "),
        never_touch=("Ful-time", "Zzz"),
    )
    known = ["Python", "PYTHON", "Boomerang", "Do not contact", "Full-time", "Go"]
    warnings = policy_tag_warnings(policy, known)
    assert len(warnings) == 4
    assert warnings[0].startswith("policy tag 'python' (contact_level)")
    assert "'PYTHON'" in warnings[0] and "'Python'" in warnings[0]
    assert "'Do not contact'" in warnings[1]
    assert "(never_touch)" in warnings[2] and "'Full-time'" in warnings[2]
    assert warnings[3].endswith("no close match")
    assert policy_tag_warnings(Policy(contact_level=("Go",)), known) == []
