"""STAND-IN for WeTextProcessing's `tn` package, for tests only (never imported by jaspeech itself).

Why: the upstream CosyVoice pinned by jaspeech[cosyvoice] imports `tn.chinese.normalizer` and
`tn.english.normalizer` at module import when the closed `ttsfrd` is absent, and builds both normalisers
in CosyVoiceFrontEnd.__init__. jaspeech never uses them: it calls inference_zero_shot with
text_frontend=False, which returns the text untouched. The real package (installed on GPU nodes by
jaspeech[cosyvoice]) needs pynini: 722 MB installed and a ~40 s FST rebuild per model load here, too
heavy for CI. These classes accept the constructor arguments and FAIL if asked to normalise, so a test
that passes also proves our backend never routes text through upstream's zh/en normaliser.
"""
