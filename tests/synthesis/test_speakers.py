from jaspeech.synthesis.speakers import N_SPEAKERS, PROFILES, assign_speaker


def test_twenty_distinct_profiles():
    assert len(PROFILES) == N_SPEAKERS == 20
    assert len({p.name for p in PROFILES}) == 20
    assert len({(p.kokoro_mix, p.speed) for p in PROFILES}) == 20
    assert len({(p.half_tone, p.speed) for p in PROFILES}) == 20
    for p in PROFILES:
        assert abs(sum(w for _, w in p.kokoro_mix) - 1.0) < 1e-9


def test_assignment_is_deterministic_and_spread():
    a = [assign_speaker("llm-jp/magpie-sft-v1.0", str(i)).name for i in range(400)]
    b = [assign_speaker("llm-jp/magpie-sft-v1.0", str(i)).name for i in range(400)]
    assert a == b
    assert len(set(a)) == 20
    assert assign_speaker("x", "1") == assign_speaker("x", "1")
