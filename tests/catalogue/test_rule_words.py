"""A rule and its reasons read as words: features by their labels, never by their codes."""

from obligations.catalogue.rules import Profile, describe_rule, evaluate

NAMES = {"direct_messaging": "Direct messaging", "file_sharing": "File storage or file sharing"}


def test_a_nested_rule_is_described_with_the_features_labels():
    rule = {
        "kinds_any": ["user_to_user"],
        "any": [{"features_any": ["direct_messaging", "file_sharing"]}, {"users_over": 7000000}],
        "features_none": ["file_sharing"],
    }
    assert describe_rule(rule, NAMES) == (
        "user-to-user service, has none of \u2018File storage or file sharing\u2019, "
        "(has \u2018Direct messaging\u2019 or \u2018File storage or file sharing\u2019 "
        "or more than 7,000,000 monthly UK users)"
    )


def test_the_reason_a_rule_holds_names_the_features_it_found():
    profile = Profile(name="Chat", user_to_user=True)
    ok, reasons = evaluate(
        {"features_all": ["direct_messaging"]}, profile, frozenset({"direct_messaging"}), {}, NAMES
    )
    assert (ok, reasons) == (True, ["has \u2018Direct messaging\u2019"])
