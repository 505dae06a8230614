"""The Prompt Engineer: stage separation, tag order, dedupe, conflicts, guards and non-identity."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.measure.analysis_types import ReferenceReport
from agents.planning.animation_director import plan
from agents.planning.prompt_engineer import PromptContractError, StagePrompts, build_prompts, check_separation, tag_key
from agents.policy import default_policy
from host.records import make_analysis, make_reference

POL = default_policy()
KS2_ONLY = [tag_key(p) for p in POL.prompts["ks2_only"]]
CARD_NEGATIVE = ("nsfw, lowres, (bad), text, error, fewer, extra, missing, worst quality, jpeg artifacts, low quality, "
                 "watermark, unfinished, displeasing, oldest, early, chromatic aberration, signature, extra digits, "
                 "artistic error, username, scan, [abstract]")


analysis = make_analysis
reference = make_reference


def tags_of(prompt: str) -> list[str]:
    return [t.strip() for t in prompt.split(",")]


def prompts_for(a=None, r=None, tags=None) -> StagePrompts:
    a = a or analysis()
    return build_prompts(plan(a, r or reference()), a, tags)


def test_order_count_character_series_general_quality_last():
    sp = prompts_for(tags=["smile", "series:vocaloid", "character:hatsune miku", "1girl", "twintails"])
    for prompt in (sp.ks1_positive, sp.ks2_positive):
        t = tags_of(prompt)
        assert t[:5] == ["1girl", "hatsune miku", "vocaloid", "smile", "twintails"]
        assert t[-4:] == ["masterpiece", "best quality", "very aesthetic", "absurdres"]


def test_negatives_start_with_the_model_cards_negative():
    sp = prompts_for()
    assert sp.ks1_negative.startswith(CARD_NEGATIVE) and sp.ks2_negative.startswith(CARD_NEGATIVE)


def test_dedupe_ignores_case_whitespace_underscores_and_weights():
    sp = prompts_for(tags=["Long_Hair", "long  hair", "LONG HAIR", "(long hair:1.2)", "smile", "Smile"])
    keys = [tag_key(t) for t in tags_of(sp.ks1_positive)]
    assert keys.count("long hair") == 1 and keys.count("smile") == 1
    assert "(long hair:1.2)" in tags_of(sp.ks1_positive)  # the stronger duplicate's weight is kept
    assert len(keys) == len(set(keys))


def test_conflicting_and_forbidden_tags_leave_the_positive():
    sp = prompts_for(tags=["1girl", "colored", "messy lines", "dark background"])
    for prompt in (sp.ks1_positive, sp.ks2_positive):
        t = tags_of(prompt)
        assert "monochrome" in t and "colored" not in t and "messy lines" not in t
        assert "white background" in tags_of(sp.ks1_positive) and "dark background" not in tags_of(sp.ks1_positive)
    assert any("colored" in n for n in sp.notes)


def test_ks2_only_language_in_user_tags_is_routed_to_ks2():
    sp = prompts_for(tags=["1girl", "stroke matching the reference", "clean lines"])
    assert "stroke matching the reference" in tags_of(sp.ks2_positive)
    assert "stroke matching the reference" not in sp.ks1_positive and "clean lines" not in sp.ks1_positive


def test_style_directives_only_in_ks2_and_only_when_safe():
    safe = prompts_for(r=reference(similarity=0.7, conflict_penalty=0.1))
    risky = prompts_for(r=reference(similarity=0.9, conflict_penalty=0.6))
    colored = prompts_for(r=reference(colored=True))
    none = prompts_for(r=ReferenceReport.absent())
    style = POL.prompts["ks2_style"][0]
    assert style in tags_of(safe.ks2_positive) and style not in safe.ks1_positive
    for sp in (risky, colored, none):
        assert style not in sp.ks2_positive and style not in sp.ks1_positive


def test_director_guards_are_injected_per_stage():
    high_p = prompts_for(a=analysis(anatomy_risk_score=0.95))
    low_p = prompts_for(a=analysis(anatomy_risk_score=0.1))
    guard = POL.prompts["ks1_pose_guard"][0]
    assert guard in tags_of(high_p.ks1_positive) and guard not in tags_of(low_p.ks1_positive)
    assert guard not in tags_of(high_p.ks2_positive)
    colored = prompts_for(r=reference(colored=True))
    assert "color bleeding" in tags_of(colored.ks2_negative) and "color bleeding" not in colored.ks1_negative
    multi = prompts_for(a=analysis(object_count=3))
    assert "duplicate" in tags_of(multi.ks1_negative)


def test_high_h_strengthens_ks2_negatives():
    a = analysis()
    p = plan(a, reference())
    calm = build_prompts(dataclasses.replace(p, signals=dict(p.signals, H=0.1)), a)
    risky = build_prompts(dataclasses.replace(p, signals=dict(p.signals, H=0.9)), a)
    strong = POL.prompts["ks2_strong_negative"][0]
    assert strong in tags_of(risky.ks2_negative) and strong not in tags_of(calm.ks2_negative)
    assert strong not in risky.ks1_negative


def test_contract_check_refuses_contaminated_or_identical_stages():
    sp = prompts_for()
    with pytest.raises(PromptContractError, match="ks1_positive"):
        check_separation(dataclasses.replace(sp, ks1_positive=sp.ks1_positive + ", reference stroke style"))
    with pytest.raises(PromptContractError, match="identical"):
        check_separation(dataclasses.replace(sp, ks2_positive=sp.ks1_positive))
    with pytest.raises(PromptContractError, match="identical"):
        check_separation(dataclasses.replace(sp, ks2_negative=sp.ks1_negative))


def test_bad_tags_are_refused_with_the_input_name():
    with pytest.raises(ValueError, match="subject_tags"):
        prompts_for(tags=["x" * 200])


vocab = st.sampled_from(["1girl", "2boys", "solo", "smile", "long hair", "Long_Hair", "colored", "monochrome",
                         "messy lines", "clean lines", "stroke matching lines", "reference stroke style",
                         "character:rem", "series:re:zero", "(smile:1.3)", "style transfer", "sketch", "final polish"])


@settings(max_examples=300, deadline=None)
@given(st.lists(vocab, max_size=12), st.floats(0, 1), st.floats(0, 1), st.booleans(), st.integers(1, 4))
def test_separation_contract_holds_for_any_tags(tags, risk, conflict, colored, count):
    a = analysis(anatomy_risk_score=risk, object_count=count)
    sp = build_prompts(plan(a, reference(conflict_penalty=conflict, colored=colored)), a, tags)
    for name in ("ks1_positive", "ks1_negative"):
        for tag in tags_of(getattr(sp, name)):
            assert not any(p in tag_key(tag) for p in KS2_ONLY), (name, tag)
    assert sp.ks1_positive != sp.ks2_positive and sp.ks1_negative != sp.ks2_negative
    for prompt in sp.prompts().values():
        keys = [tag_key(t) for t in tags_of(prompt)]
        assert len(keys) == len(set(keys))
